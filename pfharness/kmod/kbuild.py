"""Build the rendered modules with kbuild: make -C <kdir> M=<dir> modules.

The kernel comes resolved (:class:`pfharness.kernel.Kernel`, from
:func:`pfharness.kmod.kernels.select`), with the toolchain to build with (``CC=gcc-12`` for
5.10, a bwrap build root for sid's 7.2: :mod:`pfharness.kmod.toolchain`)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .. import assets, proc
from ..errors import BuildError, PfhError
from ..kernel import Kernel
from ..results import output_format
from . import render, toolchain

_STAMP = ".pfharness-build-stamp"
_QUICK_STAMP = ".pfharness-quick-stamp"  # _quick_key() of the last build that succeeded or was skipped
_DIAGNOSTIC = re.compile(r"^(?P<file>[^\s:]+\.c):(?P<line>\d+):(?P<col>\d+): (?P<kind>error|warning): (?P<msg>.*)$")


@dataclass(frozen=True)
class BuildRequest:
    """What to build and where."""

    out_dir: Path  # rendered sources and the built .ko files go here
    kernel: Kernel  # the kernel to build for, from kernels.select() (or kernels.from_kdir())
    modules: tuple[str, ...] = render.MODULES  # module letters
    werror: bool = False  # treat compiler warnings as errors (the tests do)
    template_dir: Path | None = None  # the module templates to render (default: the package's)
    names: tuple[tuple[str, str], ...] = ()  # (letter, name): build that module under another name (the oracle)
    profile: render.Profile = render.Profile.full  # the full modules, or the course's (the hand-in's)


@dataclass(frozen=True)
class BuildResult:
    """What a build produced."""

    kernel_release: str  # the release the modules are for
    kdir: Path  # the kbuild directory used
    modules: dict[str, Path]  # module letter -> .ko path
    skipped: bool  # True when nothing changed since the last build
    seconds: float  # wall time of render + build
    log: str  # kbuild's output ('' when skipped)


#: The oracle a module check loads beside the user's module: pfharness's own pf_probe_B, built under this
#: name so that it can never be taken for a user's pf_probe_B (its .ko, its /proc/<name>/, its "<name>: " lines).
ORACLE_NAME = "pfh_oracle"


def oracle_request(out_dir: Path, kernel: Kernel) -> BuildRequest:
    """The build of the oracle (ORACLE_NAME.ko, from pf_probe_B's source) into `out_dir`; build() gives
    modules["B"] as its path."""
    return BuildRequest(out_dir, kernel, modules=("B",), names=(("B", ORACLE_NAME),))


def _fingerprint(sources: render.RenderedSources, kdir: Path, release: str, werror: bool) -> str:
    h = hashlib.sha256()
    for path in [*sources.sources.values(), sources.makefile]:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(str(kdir).encode())
    h.update(release.encode())
    h.update(b"werror" if werror else b"")
    return h.hexdigest()


def explain_failure(log: str, module_dir: Path) -> str:
    """The compiler's errors and warnings, each with the rendered source line it points at.

    A file named relative to the module directory (7.2's kbuild compiles there: ``pf_probe_A.c:785:``)
    is shown by its whole path, as older kernels' kbuild names it."""
    shown = []
    for line in log.splitlines():
        m = _DIAGNOSTIC.match(line.strip())
        if not m:
            continue
        path = module_dir / m["file"]  # an absolute file name stays as it is
        shown.append(f"{path}{line.strip()[len(m['file']) :]}")
        try:
            src = path.read_text().splitlines()[int(m["line"]) - 1]
            shown.append(f"    {m['line']:>5} | {src.rstrip()}")
        except (OSError, IndexError):
            pass
    return "\n".join(shown)


def build(request: BuildRequest) -> BuildResult:
    """Render the sources into request.out_dir and build them; skip when nothing changed."""
    start = time.monotonic()
    release, kdir = request.kernel.release, request.kernel.require_headers()
    out_dir = request.out_dir.resolve()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PfhError(
            f"cannot create the build directory {out_dir} ({exc.strerror or exc}): pass --out with a writable directory"
        ) from exc
    with _build_lock(out_dir):
        return _build_locked(request, out_dir, release, kdir, start)


@contextlib.contextmanager
def _build_lock(out_dir: Path):
    """One build at a time per build directory: concurrent runs with one --out wait for each other."""
    with open(out_dir / ".pfharness-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_locked(request: BuildRequest, out_dir: Path, release: str, kdir: Path, start: float) -> BuildResult:
    quick = out_dir / _QUICK_STAMP
    key = _quick_key(request, out_dir, release, kdir)
    letters = render.normalize_modules(request.modules)
    modules = {m: out_dir / f"{dict(request.names).get(m, render.module_name(m))}.ko" for m in letters}
    if key is not None and quick.is_file() and quick.read_text() == key:
        return BuildResult(release, kdir, modules, True, time.monotonic() - start, "")
    quick.unlink(missing_ok=True)
    result = _render_and_build(request, out_dir, release, kdir, start)
    key = _quick_key(request, out_dir, release, kdir)
    if key is not None:
        quick.write_text(key)
    return result


def _quick_key(request: BuildRequest, out_dir: Path, release: str, kdir: Path) -> str | None:
    """What the last build's outcome depends on, cheaply: the request, and the size and mtime of the
    templates and the code that renders them and of the rendered files, the .ko files and the build's
    stamp. The same key: the same sources would be rendered and built again, so nothing is (no Jinja,
    about 0.04 s of each run's start). None when a file is missing (render and build to know)."""
    h = hashlib.sha256(
        repr((request.modules, request.names, request.profile, release, str(kdir), request.werror)).encode()
    )
    templates = request.template_dir or assets.kmod_templates()
    paths = sorted(p for p in templates.rglob("*") if p.is_file())
    paths += [assets.makefile_template(), Path(render.__file__), Path(output_format.__file__)]
    names = [dict(request.names).get(m, render.module_name(m)) for m in render.normalize_modules(request.modules)]
    paths += [out_dir / f"{name}{suffix}" for name in names for suffix in (".c", ".ko")]
    paths += [out_dir / "Makefile", out_dir / _STAMP]
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            return None
        h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


def _render_and_build(request: BuildRequest, out_dir: Path, release: str, kdir: Path, start: float) -> BuildResult:
    sources = render.render(
        out_dir,
        request.modules,
        kernel_release=release,
        template_dir=request.template_dir,
        names=dict(request.names),
        profile=request.profile,
    )
    modules = {m: path.with_suffix(".ko") for m, path in sources.sources.items()}
    stamp = out_dir / _STAMP
    fingerprint = _fingerprint(sources, kdir, release, request.werror)
    if stamp.is_file() and stamp.read_text() == fingerprint and all(p.is_file() for p in modules.values()):
        return BuildResult(release, kdir, modules, True, time.monotonic() - start, "")

    stamp.unlink(missing_ok=True)
    args = ["-C", str(kdir), f"M={out_dir}", f"-j{os.cpu_count() or 1}", "modules"]
    if request.werror:
        args.append("KCFLAGS=-Werror")
    result = proc.run(toolchain.make_argv(request.kernel.toolchain, out_dir, args), merge_stderr=True)
    if result.returncode != 0 or not all(p.is_file() for p in modules.values()):
        details = explain_failure(result.stdout, out_dir) or result.stdout[-4000:]
        raise BuildError(
            f"building {', '.join(sources.module_names())} against {kdir} failed "
            f"(make exit status {result.returncode}):\n{details}\n"
            f"the rendered sources are in {out_dir}"
        )
    stamp.write_text(fingerprint)
    return BuildResult(release, kdir, modules, False, time.monotonic() - start, result.stdout)
