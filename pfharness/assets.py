"""Where the harness's non-Python files live (the package is installed editable,
so they are found next to it in the source tree)."""

from __future__ import annotations

import os
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parent.parent
KMOD_TEMPLATES = SOURCE_ROOT / "kmod_templates"
MAKEFILE_TEMPLATE = SOURCE_ROOT / "Makefile.j2"
VM_ASSETS = SOURCE_ROOT / "vm"


def cache_dir() -> Path:
    """Per-user cache for extracted kernels, initramfs images and verdicts."""
    base = os.environ.get("PFHARNESS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pfharness"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path
