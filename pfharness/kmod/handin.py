"""`pfharness dist`: the course's hand-in tar.gz (the course profile's sources, Makefile, README, report.txt)."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import jinja2

from .. import __version__, assets
from ..errors import PfhError
from . import kernels, render

TOP = "pf_probe"  # the directory inside the archive


def handin_files(report: Path, kernel_release: str) -> dict[str, str]:
    """File name -> content of everything the archive holds."""
    try:
        report_text = report.read_text(errors="replace")
    except OSError as exc:
        raise PfhError(
            f"cannot read the report {report} ({exc.strerror or exc}): run `pfharness study --out DIR` "
            "and pass --report DIR/report.txt"
        ) from exc
    env = render.environment()
    course = render.Profile.course  # the hand-in's modules: only what the assignment asks (docs/modules.md)
    files = {f"{render.module_name(m)}.c": render.render_module(m, env, course) for m in render.MODULES}
    files["Makefile"] = render.render_makefile(render.MODULES, None, env, fallback_release=kernel_release)
    readme = jinja2.Template(
        assets.handin_file("README.j2").read_text(), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    files["README"] = readme.render(version=__version__, kernel_release=kernel_release, **render.template_context())
    files["report.txt"] = report_text
    return files


def make_dist(out: Path, report: Path | None = None, kernel_release: str | None = None) -> Path:
    """Write the hand-in archive to `out` (report: the committed example by default); returns its path."""
    release = kernels.select(kernel_release).release
    files = handin_files(report or assets.study_file("report.txt"), release)
    now = int(time.time())
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_tar(out, files, now)
    except OSError as exc:
        raise PfhError(f"cannot write {out} ({exc.strerror or exc}): pass --out with a writable path") from exc
    return out


def _write_tar(out: Path, files: dict[str, str], now: int) -> None:
    with tarfile.open(out, "w:gz") as tar:
        info = tarfile.TarInfo(TOP)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
        tar.addfile(info)
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{TOP}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, now
            tar.addfile(info, io.BytesIO(data))
