"""Where pfharness's data files are (templates, guest scripts, hand-in files) and its cache.

Installed from a wheel, they are package data under pfharness/data/ (pyproject.toml maps the
top-level kmod_templates/, vm/, handin/, study/ and Makefile.j2 there) and are found with
importlib.resources. In a source checkout (the editable install of `make setup`) they are
read where they stand, at the top of the checkout.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from .errors import SetupError

_CHECKOUT = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """The directory holding Makefile.j2, kmod_templates/, vm/, handin/ and study/."""
    installed = resources.files("pfharness").joinpath("data")
    if isinstance(installed, Path) and (installed / "Makefile.j2").is_file():
        return installed
    if (_CHECKOUT / "Makefile.j2").is_file() and (_CHECKOUT / "kmod_templates").is_dir():
        return _CHECKOUT
    raise SetupError(
        "pfharness's data files (module templates, guest scripts) are missing: "
        "reinstall it with `pip install --force-reinstall pfharness` or `make setup`"
    )


def kmod_templates() -> Path:
    return data_root() / "kmod_templates"


def makefile_template() -> Path:
    return data_root() / "Makefile.j2"


def vm_file(name: str) -> Path:
    """A file of the guest side: init.sh, run_step.sh, walk.py."""
    return data_root() / "vm" / name


def handin_file(name: str) -> Path:
    return data_root() / "handin" / name


def study_file(name: str) -> Path:
    """The committed example study: report.txt, figures.json, the PNGs."""
    return data_root() / "study" / name


def cache_dir() -> Path:
    """Per-user cache for extracted kernels, initramfs images and verdicts."""
    base = os.environ.get("PFHARNESS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pfharness"
    )
    path = Path(base)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(
            f"cannot create the cache directory {path} ({exc.strerror or exc}): "
            "set PFHARNESS_CACHE to a writable directory"
        ) from exc
    return path
