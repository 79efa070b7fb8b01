"""`pfharness dist`: the course's hand-in tar.gz (sources, Makefile, README, report.txt)."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import jinja2

from . import __version__, assets, kernels, render
from .errors import PfhError

HANDIN_README = assets.SOURCE_ROOT / "handin" / "README.j2"
EXAMPLE_REPORT = assets.SOURCE_ROOT / "study" / "report.txt"
TOP = "pf_probe"  # the directory inside the archive


def handin_files(report: Path, kernel_release: str) -> dict[str, str]:
    """File name -> content of everything the archive holds."""
    if not report.is_file():
        raise PfhError(f"no report at {report}: run `pfharness study --out DIR` and pass --report DIR/report.txt")
    env = render.environment()
    files = {f"{render.module_name(m)}.c": render.render_module(m, env) for m in render.MODULES}
    files["Makefile"] = render.render_makefile(render.MODULES, None, env, fallback_release=kernel_release)
    readme = jinja2.Template(HANDIN_README.read_text(), undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    files["README"] = readme.render(version=__version__, kernel_release=kernel_release, **render.template_context())
    files["report.txt"] = report.read_text()
    return files


def make_dist(out: Path, report: Path = EXAMPLE_REPORT, kernel_release: str | None = None) -> Path:
    """Write the hand-in archive to `out`; returns its path."""
    release = kernel_release or kernels.select(None).release
    files = handin_files(report, release)
    out.parent.mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    with tarfile.open(out, "w:gz") as tar:
        info = tarfile.TarInfo(TOP)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
        tar.addfile(info)
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{TOP}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, now
            tar.addfile(info, io.BytesIO(data))
    return out
