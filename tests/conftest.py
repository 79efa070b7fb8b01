"""Shared fixtures. Slow tests are marked `kbuild` (real kbuild) or `vm` (real QEMU)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pfharness.kernel import Kernel
from pfharness.kmod import kernels

DATA = Path(__file__).parent / "data"


def kernel_from_env() -> Kernel | None:
    """$PFHARNESS_KERNEL_RELEASE names the kernel to test with, as `run --kernel-release` does: an
    installed release, or one in the pfharness cache (fetched by `pfharness kernels fetch`, or built
    by scripts/build-debug-kernel.sh), by exact release or series (5.10, 6.1-rt, 6.12, 7.2)."""
    from pfharness.errors import PfhError

    release = os.environ.get("PFHARNESS_KERNEL_RELEASE")
    if not release:
        return None
    try:
        kernel = kernels.select(release)
    except PfhError as e:
        pytest.exit(f"PFHARNESS_KERNEL_RELEASE={release}: {e}", returncode=4)
    if not kernel.usable:
        pytest.exit(
            f"PFHARNESS_KERNEL_RELEASE={release}: no such kernel with image and build tree "
            f"(fetch it with `pfharness kernels fetch {release}`, or run scripts/build-debug-kernel.sh)",
            returncode=4,
        )
    return kernel


def has_kasan(kernel: Kernel) -> bool:
    """Is `kernel` built with KASAN (its config in <root>/boot)?"""
    if kernel.config is None:
        return False
    try:
        return "CONFIG_KASAN=y" in kernel.config.read_text()
    except OSError:
        return False


@pytest.fixture(scope="session")
def default_kernel() -> Kernel:
    """The kernel the real tests build for; they fail (not skip) without one: `make test` installs it."""
    kernel = kernel_from_env() or kernels.default_kernel(kernels.discover())
    assert kernel is not None, (
        "no kernel with image and headers: run `make test` (it installs linux-image-amd64 and linux-headers-amd64)"
    )
    return kernel


@pytest.fixture(scope="session")
def built_modules(tmp_path_factory, default_kernel):
    """All three modules, really built once with warnings as errors."""
    from pfharness.kmod import kbuild

    out = tmp_path_factory.mktemp("modules")
    return kbuild.build(kbuild.BuildRequest(out, default_kernel, werror=True))


@pytest.fixture(scope="session")
def course_modules(tmp_path_factory, default_kernel):
    """The course profile's three modules (the hand-in's, `pfharness dist`), really built with warnings as errors."""
    from pfharness.kmod import kbuild, render

    out = tmp_path_factory.mktemp("course-modules")
    return kbuild.build(kbuild.BuildRequest(out, default_kernel, werror=True, profile=render.Profile.course))


@pytest.fixture(params=["full", "course"])
def profile_modules(request, built_modules, course_modules):
    """The full modules, then the course's: for a test of what both must do alike."""
    return built_modules if request.param == "full" else course_modules


@pytest.fixture(scope="session")
def host_run_out(tmp_path_factory, default_kernel) -> Path:
    """An --out for `pfharness run` (no --werror) with its build done on the host, so that a run
    inside the VM (--target host there) finds it up to date instead of compiling under emulation."""
    from pfharness.kmod import kbuild

    out = tmp_path_factory.mktemp("run-out")
    kbuild.build(kbuild.BuildRequest(out / default_kernel.release, default_kernel))
    return out


def copy_templates(dst: Path) -> Path:
    from pfharness import assets

    shutil.copytree(assets.kmod_templates(), dst)
    return dst


PROGRAMS = Path(__file__).parent / "programs"


@pytest.fixture(scope="session")
def programs(tmp_path_factory) -> dict[str, Path]:
    """The oracle workloads in tests/programs, compiled with the host's gcc (the guest sees them over 9p)."""
    from pfharness import proc

    out = tmp_path_factory.mktemp("programs")
    built = {}
    for source in sorted(PROGRAMS.glob("*.c")):
        binary = out / source.stem
        result = proc.run(["gcc", "-O1", "-Wall", "-Werror", "-pthread", "-o", binary, source], merge_stderr=True)
        assert result.returncode == 0, result.stdout
        built[source.stem] = binary
    # A file for `kinds` to map: 64 pages, on the host's file system (the guest's 9p root), so that its
    # pages are read in from "disk" after they are dropped from the page cache (major faults).
    data = out / "kinds.dat"
    data.write_bytes(bytes(range(256)) * 16 * 64)
    built["kinds.dat"] = data
    return built


@pytest.fixture(scope="session")
def warn_module(tmp_path_factory, default_kernel) -> Path:
    """tests/kmods/pfh_warn.ko, a test-only module whose load prints a kernel WARNING."""
    from pfharness import proc
    from pfharness.kmod import toolchain

    out = tmp_path_factory.mktemp("kmods")
    for source in (Path(__file__).parent / "kmods").iterdir():
        shutil.copy(source, out)
    args = ["-C", str(default_kernel.headers), f"M={out}", "modules"]
    result = proc.run(toolchain.make_argv(default_kernel.toolchain, out, args), merge_stderr=True)
    assert result.returncode == 0, result.stdout
    return out / "pfh_warn.ko"


@pytest.fixture(scope="session")
def vm(tmp_path_factory, default_kernel, built_modules, programs, warn_module):
    """One booted guest (TCG, 2 vCPUs) shared by the VM tests; its transcript is kept for replay. Started
    as `run` starts it: from the cached snapshot of the booted guest unless that is off by default."""
    from pfharness.guest.session import VmOptions, VmSession
    from pfharness.pipeline.targets import SNAPSHOT_DEFAULT

    transcript = tmp_path_factory.mktemp("vm") / "session.log"
    # A KASAN kernel reports only its first bug unless told otherwise; one boot serves every test.
    extra = ("kasan_multi_shot",) if has_kasan(default_kernel) else ()
    options = VmOptions(
        kernel=default_kernel, transcript=transcript, accel="tcg", smp=2, extra_append=extra, snapshot=SNAPSHOT_DEFAULT
    )
    with VmSession(options) as session:
        yield session
    print(f"VM session transcript: {transcript}")


def qemu_pids() -> set[int]:
    """Pids of running QEMU processes."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"qemu-system" in (entry / "cmdline").read_bytes().split(b"\0")[0]:
                    pids.add(int(entry.name))
            except OSError:
                pass
    return pids


def traced(vm, built_modules, module, *command, hold=True, params=(), timeout=120.0):
    """Trace one workload in the shared VM; no splat allowed."""
    from pfharness import step

    request = step.TraceRequest(
        module,
        built_modules.modules[module],
        tuple(str(c) for c in command),
        hold=hold,
        params=tuple(params),
        timeout=timeout,
    )
    result = step.trace(vm, request)
    assert not result.splats, result.splats
    return result
