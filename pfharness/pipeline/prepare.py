"""The kernel a run needs and the modules built for it: resolved and built once, here only.

This is the one place the pipeline asks kmod/ for a kernel and a build (kernels.select, kbuild.build);
every target spec goes through prepare()."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import assets
from ..errors import UsageError
from ..kernel import Kernel
from ..kmod import bring, kbuild, kernels


@dataclass(frozen=True)
class Prepared:
    """A kernel, resolved once, and the modules built for it."""

    release: str  # the kernel the steps run on
    modules: Mapping[str, Path]  # module letter -> its built .ko
    kdir: Path  # the kbuild directory the modules were built against
    build_seconds: float = 0.0
    build_skipped: bool = False  # nothing had changed since the last build in that directory
    kernel: Kernel | None = None  # what a VM boots (None: nothing to boot)
    # For building inside the target (the study's kbuild workload): the make variables of the
    # kernel's toolchain, and whether its kbuild tools run on this machine at all.
    make_vars: tuple[str, ...] = field(default=())
    tools_run_here: bool = True


def prepare(release: str | None, build_dir: Path, *, boot: bool, running: str | None = None) -> Prepared:
    """Select the kernel `release` names (default: see `pfharness kernels`) and build the three
    modules for it into build_dir/<release>. `boot`: it must have an image to boot; `running`: it
    must be this release (the host's own kernel)."""
    kernel = kernels.select(release)
    if running is not None and kernel.release != running:
        raise UsageError(
            f"--target host runs on this machine's kernel {running}, "
            f"not {kernel.release}: leave out --kernel-release, or use --target vm"
        )
    if boot:
        kernel.require_image()
    build = kbuild.build(kbuild.BuildRequest(build_dir / kernel.release, kernel))
    return Prepared(
        release=build.kernel_release,
        modules=dict(build.modules),
        kdir=build.kdir,
        build_seconds=build.seconds,
        build_skipped=build.skipped,
        kernel=kernel if boot else None,
        make_vars=kernel.toolchain.make_vars,
        tools_run_here=kernel.toolchain.on_host,
    )


def prepare_own(release: str | None, build_dir: Path, source: Sequence[Path], module: str) -> Prepared:
    """Select the kernel `release` names and build the user's own module source (`run --source`: a
    directory with its Makefile, or .c files) for it into build_dir/foreign/<release>, in the sandbox;
    `module` (pf_probe_X) must be among what it builds. Raises BuildError with the known causes when
    it does not build (kmod/bring.py)."""
    kernel = kernels.select(release)
    kernel.require_image()
    others = kernels.available(cache=assets.cache_dir())
    built = bring.build(source, kernel, build_dir / "foreign" / kernel.release, others)
    ko = built.modules.get(module)
    if ko is None:
        names = ", ".join(sorted(built.modules))
        raise UsageError(f"--source built {names}, not {module}: pick one with --module, or name it {module} (obj-m)")
    return Prepared(
        release=built.kernel_release,
        modules={module[-1]: ko},
        kdir=kernel.require_headers(),
        build_seconds=built.seconds,
        kernel=kernel,
    )
