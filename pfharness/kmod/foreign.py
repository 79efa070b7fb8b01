"""A module someone brings (a student's source): parsed once at the edge (:func:`parse_source`),
copied into a build directory of its own (the user's directory is never built in), and built
for a kernel in a sandbox (:func:`build_foreign`, :mod:`pfharness.kmod.sandbox`).

With a Makefile, its default target is run with the kernel named in every variable student
Makefiles use for it (``KDIR``, ``KERNELDIR``, ``KERNEL_DIR``, ``KSRC``); when that leaves no
module built for the kernel (a target that builds none, or for ``$(shell uname -r)``), kbuild is
run on the directory itself (``make -C <headers> M=<dir> modules``). Loose ``.c`` files get a
Kbuild file of their own. Modules are built with ``-g`` (a crash resolves to a source line) and
the compiler's warnings are kept as warnings."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import assets
from ..errors import UsageError
from ..kernel import Kernel
from . import diagnose, sandbox, toolchain

MAX_BYTES = 16 << 20  # a module's source is a few files: anything larger is not one
MAX_FILES = 500
MAKEFILES = ("Makefile", "makefile", "GNUmakefile", "Kbuild")
KDIR_VARS = ("KDIR", "KERNELDIR", "KERNEL_DIR", "KSRC")
#: What a previous build left beside the sources: never copied, so every build starts clean.
BUILT_SUFFIXES = (".o", ".ko", ".mod", ".mod.c", ".cmd", ".symvers", ".order", ".a")
SKIPPED_DIRS = (".git", ".tmp_versions", "__pycache__")
MARKER = ".pfharness-foreign-build"  # in a build's output directory: never copied as source


@dataclass(frozen=True)
class ForeignSource:
    """A module source to build: its files (absolute path, name in the build directory)."""

    origin: Path  # the directory or first file the user named
    files: tuple[tuple[Path, str], ...]  # (where it is, its path relative to the build directory)
    has_makefile: bool  # a Makefile or Kbuild at the top: it is driven; otherwise one is written

    @property
    def c_files(self) -> tuple[str, ...]:
        """The top-level .c files (each a module when no Makefile says otherwise)."""
        return tuple(rel for _, rel in self.files if rel.endswith(".c") and "/" not in rel)

    def digest(self) -> str:
        """A digest of every file's name and contents (what a cached build is keyed by)."""
        h = hashlib.sha256()
        for path, rel in self.files:
            h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
        return h.hexdigest()[:16]


def _is_built(name: str) -> bool:
    return name.endswith(BUILT_SUFFIXES)


def _walk(top: Path, exclude: Sequence[Path]) -> list[tuple[Path, str]]:
    """The files under ``top`` to copy (not those under ``exclude``), refusing a symbolic link that leaves it."""
    found: list[tuple[Path, str]] = []
    skip = {p.resolve() for p in exclude}
    for dirpath, dirnames, filenames in os.walk(top):
        kept = (
            d
            for d in dirnames
            if d not in SKIPPED_DIRS
            and (Path(dirpath) / d).resolve() not in skip
            and not (Path(dirpath) / d / MARKER).exists()
        )
        dirnames[:] = sorted(kept)
        for d in dirnames:
            _inside(top, Path(dirpath) / d)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if _is_built(name) or not (path.is_file() or path.is_symlink()):
                continue
            _inside(top, path)
            found.append((path, path.relative_to(top).as_posix()))
            if len(found) > MAX_FILES:
                raise UsageError(f"{top} holds more than {MAX_FILES} files: pass the directory of the module alone")
    return found


def _inside(top: Path, path: Path) -> None:
    real = path.resolve()
    if not real.is_relative_to(top.resolve()):
        raise UsageError(f"{path} is a symbolic link to {real}, outside {top}: copy the file into the module directory")
    if path.is_symlink() and not real.exists():
        raise UsageError(f"{path} is a broken symbolic link: remove it or copy the file it meant")


def parse_source(paths: Sequence[Path], exclude: Sequence[Path] = ()) -> ForeignSource:
    """The module source at ``paths``: one directory (with a Makefile or Kbuild, or .c files), or .c files.

    ``exclude``: directories left out (the build's own output directory, when it lies in the source)."""
    if not paths:
        raise UsageError("no module source given: pass a directory with a Makefile, or .c files")
    for p in paths:
        if not p.exists():
            raise UsageError(f"{p} does not exist: pass the directory of your module (with its Makefile) or .c files")
    if len(paths) == 1 and paths[0].is_dir():
        top = paths[0]
        files = _walk(top, exclude)
        has_makefile = any(rel in MAKEFILES for _, rel in files)
    else:
        bad = [str(p) for p in paths if p.is_dir() or p.suffix != ".c"]
        if bad:
            raise UsageError(f"not a .c file: {', '.join(bad)}: pass one directory, or one or more .c files")
        files = [(p, p.name) for p in paths]
        if len({rel for _, rel in files}) != len(files):
            raise UsageError("two .c files have the same name: pass files with different names")
        has_makefile = False
    source = ForeignSource(paths[0], tuple(files), has_makefile)
    if not any(rel.endswith(".c") for _, rel in files):
        raise UsageError(f"no .c file in {paths[0]}: a kernel module's source is one or more .c files")
    size = sum(p.stat().st_size for p, _ in files)
    if size > MAX_BYTES:
        raise UsageError(f"{paths[0]} holds {size >> 20} MiB: too big for a module's source (limit {MAX_BYTES >> 20})")
    return source


def running_kernel_lines(source: ForeignSource) -> list[str]:
    """The lines of its Makefile or Kbuild that take the kernel from ``uname -r`` (finding makefile-kdir:
    harmless here, where the chosen kernel is passed in, but it builds for the wrong kernel elsewhere)."""
    lines = []
    for path, rel in source.files:
        if rel in MAKEFILES:
            lines += [ln.strip() for ln in path.read_text(errors="replace").splitlines() if "uname -r" in ln]
    return lines


def copy_source(source: ForeignSource, build_dir: Path) -> Path:
    """A fresh copy of the source in ``build_dir`` (emptied first); writes a Kbuild when it has no Makefile."""
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    for path, rel in source.files:
        dest = build_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    if not source.has_makefile:
        objs = " ".join(f"{Path(c).stem}.o" for c in source.c_files)
        (build_dir / "Kbuild").write_text(f"# written by pfharness for {source.origin}\nobj-m := {objs}\n")
    return build_dir


@dataclass(frozen=True)
class ForeignBuild:
    """What building a brought module for one kernel gave."""

    kernel_release: str
    build_dir: Path  # the copy it was built in
    modules: dict[str, Path]  # module name -> .ko built for this kernel ({} when it failed)
    log: str  # every make run's command line and output
    log_path: Path  # where the log is kept
    seconds: float
    driven: tuple[str, ...]  # how make was driven: "makefile" (their default target), "kbuild" (-C M= modules)
    limit_note: str = ""  # the sandbox limit that stopped the build, if one did

    @property
    def ok(self) -> bool:
        return bool(self.modules)

    @property
    def warnings(self) -> list[str]:
        """The compiler's warnings (finding build-warning)."""
        return diagnose.warnings(self.log)


def make_args(kernel: Kernel, build_dir: Path, kbuild: bool) -> list[str]:
    """The make arguments: their Makefile's default target pointed at the kernel, or kbuild on the copy."""
    headers = str(kernel.require_headers())
    flags = ["KCFLAGS=-g", f"-j{os.cpu_count() or 1}", *kernel.toolchain.make_vars]
    if kbuild:
        return ["-C", headers, f"M={build_dir}", *flags, "modules"]
    return [*(f"{v}={headers}" for v in KDIR_VARS), *flags]


def vermagic_release(ko: Path) -> str:
    """The kernel release a .ko was built for (the first word of its vermagic), '' if none."""
    data = ko.read_bytes()
    at = data.find(b"vermagic=")
    if at < 0:
        return ""
    end = data.find(b"\0", at)
    return data[at + len(b"vermagic=") : end].decode(errors="replace").split(" ")[0]


def built_modules(build_dir: Path, release: str) -> dict[str, Path]:
    """The .ko files in the copy built for ``release`` (one for another kernel does not count)."""
    found = {}
    for ko in sorted(build_dir.rglob("*.ko")):
        if vermagic_release(ko) == release:
            found[ko.stem] = ko
    return found


def _sandboxed(kernel: Kernel, build_dir: Path, args: list[str], cache: Path | None) -> sandbox.SandboxRun:
    spec = kernel.toolchain.build_root
    if spec is None:
        return sandbox.run(sandbox.bwrap_argv(["make", *args], build_dir))
    root, _ = toolchain.ensure_buildroot(cache or assets.cache_dir(), spec.dist, spec.compiler)
    return sandbox.run(sandbox.bwrap_argv(["make", *args], build_dir, root=root, readable=[spec.bind]))


def _failed_on(kernel: Kernel, log: str) -> bool:
    """Their Makefile did build for this kernel and the compiler failed: kbuild on the copy would fail alike."""
    headers = kernel.require_headers()
    return (str(headers) in log or str(headers.resolve()) in log) and bool(diagnose.errors(log))


def build_foreign(source: ForeignSource, kernel: Kernel, out_dir: Path, cache: Path | None = None) -> ForeignBuild:
    """Build ``source`` for ``kernel`` in ``out_dir``/src (a copy), sandboxed; the log in ``out_dir``/build.log."""
    start = time.monotonic()
    release = kernel.release
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("a pfharness build of a brought module: not part of any module's source\n")
    build_dir = copy_source(source, out_dir.resolve() / "src")
    log: list[str] = []
    driven: list[str] = []
    note = ""
    for kbuild in (False, True):
        if not kbuild and not source.has_makefile:
            continue
        args = make_args(kernel, build_dir, kbuild)
        ran = _sandboxed(kernel, build_dir, args, cache)
        driven.append("kbuild" if kbuild else "makefile")
        log.append(f"$ make {' '.join(args)}\n{ran.log}")
        note = ran.limit_note
        if note or built_modules(build_dir, release) or _failed_on(kernel, ran.log):
            break
    text = "\n".join(log)
    log_path = out_dir.resolve() / "build.log"
    log_path.write_text(text)
    modules = {} if note else built_modules(build_dir, release)
    return ForeignBuild(release, build_dir, modules, text, log_path, time.monotonic() - start, tuple(driven), note)
