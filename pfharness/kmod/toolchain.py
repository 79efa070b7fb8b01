"""How ``make`` builds modules for a kernel: resolved once with the kernel (:func:`resolve`, a
description only) and run by kbuild (:func:`make_argv`).

An installed kernel builds with this machine's toolchain. So does a fetched one when its kbuild
helper (fixdep) runs here and its compiler, or a newer gcc, is installed (``CC=gcc-12`` for
5.10). Kernels whose kbuild tools or compiler this machine cannot run (sid's 7.2 needs a newer
glibc and gcc-16) are built inside a root of their own suite, made once with ``mmdebstrap``
(``<cache>/buildroots/<dist>``) when first building, and entered with ``bwrap``."""

from __future__ import annotations

import functools
import os
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from .. import assets, proc
from ..errors import SetupError
from ..kernel import FETCHED, HOST_TOOLCHAIN, BuildRoot, Origin, Toolchain
from .apt import Apt, redact, system_archive_uris
from .spec import DISTS, guess_dist


@functools.cache
def host_gcc_major() -> int | None:
    """The major version of this machine's gcc (asked once per process)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    r = proc.run([gcc, "-dumpversion"])
    m = re.match(r"(\d+)", r.stdout.strip())
    return int(m.group(1)) if m else None


def _compiler_major(compiler: str) -> int | None:
    m = re.match(r"gcc-(\d+)", compiler)
    return int(m.group(1)) if m else None


def host_make_vars(headers: Path, compiler: str) -> tuple[str, ...] | None:
    """Extra make variables to build against ``headers`` with this machine's toolchain; None when it cannot.

    Its kbuild helper (scripts/basic/fixdep) must run here (glibc), and the compiler its headers
    name (``compiler``: ``gcc-10`` for 5.10) must be installed; when it is not, a newer host gcc
    is used instead (``CC=gcc-12``: module code does not depend on the compiler the kernel was
    built with, only its vermagic must match, which has no compiler in it). An older host gcc is
    refused (the kernel's flags may be unknown to it): that needs a build root.
    """
    fixdep = headers / "scripts" / "basic" / "fixdep"
    if fixdep.is_file():
        r = proc.run([fixdep], merge_stderr=True)
        if "GLIBC_" in r.stdout or "not found" in r.stdout or r.returncode in (126, 127):
            return None
    major = _compiler_major(compiler)
    if major is None or shutil.which(f"gcc-{major}") or shutil.which(f"x86_64-linux-gnu-gcc-{major}"):
        return ()
    host = host_gcc_major()
    if host is None or host < major:
        return None
    return (f"CC=gcc-{host}" if shutil.which(f"gcc-{host}") else "CC=gcc",)


def resolve(release: str, headers: Path | None, origin: Origin) -> Toolchain:
    """The toolchain for a kernel (a description: a build root is made only when first building)."""
    if origin.kind != FETCHED or headers is None:
        return HOST_TOOLCHAIN
    make_vars = host_make_vars(headers, origin.compiler)
    if make_vars is not None:
        return Toolchain(make_vars)
    return Toolchain(build_root=BuildRoot(origin.dist or guess_dist(release), origin.compiler, origin.root))


def buildroot_dir(cache: Path, dist: str) -> Path:
    return cache / "buildroots" / dist


def ensure_buildroot(cache: Path, dist: str, compiler: str) -> tuple[Path, float]:
    """A root of ``dist`` with make and ``compiler``, made once with mmdebstrap; (its path, seconds spent)."""
    start = time.monotonic()
    root = buildroot_dir(cache, dist)
    stamp = root / ".pfharness-buildroot"
    packages = ["make", "libc6-dev", "libelf-dev", "pahole", "bc", "kmod"]
    if compiler:
        packages.append(compiler)
    want = ",".join(sorted(packages))
    if stamp.is_file() and stamp.read_text().strip() == want:
        return root, time.monotonic() - start
    mmdebstrap = proc.require_program("mmdebstrap", "mmdebstrap")
    uris = system_archive_uris()
    apt = Apt(cache, dist, uris)
    apt.prepare()
    tmp = root.with_name(f".{dist}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    suite = DISTS[dist][0][0]
    argv: list[str | os.PathLike[str]] = [
        mmdebstrap,
        "--variant=apt",
        "--mode=root",
        f"--include={want}",
        '--aptopt=Acquire::Check-Valid-Until "false"',  # signatures are still checked
        suite,
        tmp,
        apt.sources,
    ]
    r = proc.run(argv, merge_stderr=True, timeout=3600)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = "; ".join(ln for ln in r.stdout.splitlines() if ln.startswith(("E:", "W:")))[-500:]
        raise SetupError(redact(f"mmdebstrap of a {suite} build root failed: {tail or r.stdout[-300:]}", uris.values()))
    (tmp / ".pfharness-buildroot").write_text(want + "\n")
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)
    return root, time.monotonic() - start


def make_argv(toolchain: Toolchain, module_dir: Path, args: Sequence[str], cache: Path | None = None) -> list[str]:
    """``make ARGS`` run in ``module_dir`` with ``toolchain``: on the host, or in its build root.

    The build root (made once, see :func:`ensure_buildroot`) is entered with ``bwrap``, with the
    kernel's cache root and the module directory bound at the same paths, so the same ``make``
    command line works inside.
    """
    if toolchain.build_root is None:
        return [proc.require_program("make", "build-essential"), *args, *toolchain.make_vars]
    spec = toolchain.build_root
    bwrap = proc.require_program("bwrap", "bubblewrap")
    root, _ = ensure_buildroot(cache or assets.cache_dir(), spec.dist, spec.compiler)
    kroot = str(spec.bind.resolve())
    mdir = str(module_dir.resolve())
    prefix = [bwrap, "--bind", str(root), "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    prefix += ["--ro-bind", kroot, kroot, "--bind", mdir, mdir, "--chdir", mdir]
    prefix += ["--unshare-pid", "--die-with-parent", "--setenv", "PATH", "/usr/sbin:/usr/bin:/sbin:/bin", "--"]
    return [*prefix, "make", *args, *toolchain.make_vars]
