"""Build the rendered modules with kbuild: make -C <kdir> M=<dir> modules.

For a kernel fetched into the cache (``pfharness kernels fetch``) the same ``make`` runs with
the toolchain that kernel needs (``CC=gcc-12`` for 5.10, a bwrap build root for sid's 7.2:
:func:`pfharness.kmod.fetch.toolchain`)."""

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
from ..errors import BuildError, HeadersMissing, PfhError
from . import fetch, kernels, render

_STAMP = ".pfharness-build-stamp"
_DIAGNOSTIC = re.compile(r"^(?P<file>[^\s:]+\.c):(?P<line>\d+):(?P<col>\d+): (?P<kind>error|warning): (?P<msg>.*)$")


@dataclass(frozen=True)
class BuildTarget:
    """The kernel to build for, resolved once: its release and kbuild directory."""

    release: str  # e.g. "6.1.0-56-amd64"
    kdir: Path  # its kbuild directory (headers)
    fetched: fetch.FetchedKernel | None = None  # set for a kernel fetched into the cache (its toolchain)

    def make_command(self, module_dir: Path, *args: str) -> list[str]:
        """``make ARGS`` in ``module_dir`` with this kernel's toolchain (build root or CC=...) around it."""
        if self.fetched is None:
            return [proc.require_program("make", "build-essential"), *args]
        prefix, variables = fetch.toolchain(self.fetched, assets.cache_dir(), module_dir)
        make = "make" if prefix else proc.require_program("make", "build-essential")
        return [*prefix, make, *args, *variables]


def target_for(kernel: kernels.KernelInfo) -> BuildTarget:
    """The build target of a selected kernel (its headers; its toolchain when it was fetched)."""
    headers = kernel.require_headers()
    return BuildTarget(kernel.release, headers, None if kernel.installed else fetch.fetched_at(kernel.root))


@dataclass(frozen=True)
class BuildRequest:
    """What to build and where."""

    out_dir: Path  # rendered sources and the built .ko files go here
    target: BuildTarget  # the kernel, from resolve_target()
    modules: tuple[str, ...] = render.MODULES  # module letters
    werror: bool = False  # treat compiler warnings as errors (the tests do)
    template_dir: Path | None = None  # the module templates to render (default: the package's)


@dataclass(frozen=True)
class BuildResult:
    """What a build produced."""

    kernel_release: str  # the release the modules are for
    kdir: Path  # the kbuild directory used
    modules: dict[str, Path]  # module letter -> .ko path
    skipped: bool  # True when nothing changed since the last build
    seconds: float  # wall time of render + build
    log: str  # kbuild's output ('' when skipped)


def _kdir_release(kdir: Path) -> str | None:
    """The release a kbuild directory is for, from include/config/kernel.release."""
    f = kdir / "include" / "config" / "kernel.release"
    return f.read_text().strip() if f.is_file() else None


def resolve_target(kernel_release: str | None = None, kdir: Path | None = None) -> BuildTarget:
    """The kernel to build against: an explicit kbuild directory, or the headers of a release
    (the default kernel when None); a clear error when headers are missing."""
    if kdir is not None:
        resolved = kdir.resolve()
        if not (resolved / "Makefile").is_file():
            raise HeadersMissing(
                f"{kdir} is not a kernel build directory (no Makefile there): pass the headers directory, "
                "e.g. --kdir /lib/modules/<release>/build, after `apt-get install linux-headers-<release>`"
            )
        return BuildTarget(_kdir_release(resolved) or kernel_release or "unknown", resolved)
    return target_for(kernels.select(kernel_release))


def _fingerprint(sources: render.RenderedSources, kdir: Path, werror: bool) -> str:
    h = hashlib.sha256()
    for path in [*sources.sources.values(), sources.makefile]:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(str(kdir).encode())
    h.update((_kdir_release(kdir) or "").encode())
    h.update(b"werror" if werror else b"")
    return h.hexdigest()


def explain_failure(log: str) -> str:
    """The compiler's errors and warnings, each with the rendered source line it points at."""
    shown = []
    for line in log.splitlines():
        m = _DIAGNOSTIC.match(line.strip())
        if not m:
            continue
        shown.append(line.strip())
        path = Path(m["file"])
        try:
            src = path.read_text().splitlines()[int(m["line"]) - 1]
            shown.append(f"    {m['line']:>5} | {src.rstrip()}")
        except (OSError, IndexError):
            pass
    return "\n".join(shown)


def build(request: BuildRequest) -> BuildResult:
    """Render the sources into request.out_dir and build them; skip when nothing changed."""
    start = time.monotonic()
    release, kdir = request.target.release, request.target.kdir
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
    sources = render.render(out_dir, request.modules, kernel_release=release, template_dir=request.template_dir)
    modules = {m: out_dir / f"{render.module_name(m)}.ko" for m in sources.sources}
    stamp = out_dir / _STAMP
    fingerprint = _fingerprint(sources, kdir, request.werror)
    if stamp.is_file() and stamp.read_text() == fingerprint and all(p.is_file() for p in modules.values()):
        return BuildResult(release, kdir, modules, True, time.monotonic() - start, "")

    stamp.unlink(missing_ok=True)
    args = ["-C", str(kdir), f"M={out_dir}", f"-j{os.cpu_count() or 1}", "modules"]
    if request.werror:
        args.append("KCFLAGS=-Werror")
    result = proc.run(request.target.make_command(out_dir, *args), merge_stderr=True)
    if result.returncode != 0 or not all(p.is_file() for p in modules.values()):
        details = explain_failure(result.stdout) or result.stdout[-4000:]
        raise BuildError(
            f"building {', '.join(sources.module_names())} against {kdir} failed "
            f"(make exit status {result.returncode}):\n{details}\n"
            f"the rendered sources are in {out_dir}"
        )
    stamp.write_text(fingerprint)
    return BuildResult(release, kdir, modules, False, time.monotonic() - start, result.stdout)
