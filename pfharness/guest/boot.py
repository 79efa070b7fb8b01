"""What the VM boots from, prepared (and cached) on the host: the PVH vmlinux and the initramfs."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import assets
from ..errors import SetupError
from ..kernel import Kernel
from . import initramfs, kernel_image

QBOOT = Path("/usr/share/qemu/qboot.rom")  # minimal firmware shipped with Debian's qemu-system-x86


@dataclass(frozen=True)
class BootArtifacts:
    """What the VM boots from, prepared (and cached) on the host."""

    kernel: Path  # PVH vmlinux, or the compressed image as a fall-back
    initrd: Path
    pvh: bool  # True when booting the extracted vmlinux
    append: tuple[str, ...] = ()  # kernel parameters this kernel needs (see kernel_params)
    lpj: int | None = None  # loops per jiffy to preset in the guest (see preset_lpj), None to measure
    tsc_khz: int | None = None  # the host's TSC frequency (host_tsc_khz), given to the guest; None: it measures
    busybox: str = "busybox"  # this host's busybox, which the guest sees at the same path (its root is this host's)


def kernel_params(kernel: Kernel) -> tuple[str, ...]:
    """Parameters a kernel needs in the VM, from its config (``<root>/boot/config-<release>``).

    PREEMPT_RT (6.1-rt): ``noirqdebug``. Its serial interrupt runs in a thread; under TCG on a busy
    host the thread can lag so far behind that the kernel's unhandled-interrupt check sees IRQ 4
    "nobody cared" and disables it at boot, and the console (the harness's channel) goes silent:
    seen once in the matrix's core suite with the host's load at 7 on 2 cores.
    """
    if kernel.config is None:
        return ()
    try:
        text = kernel.config.read_text()
    except OSError:
        return ()
    return ("noirqdebug",) if "\nCONFIG_PREEMPT_RT=y\n" in text else ()


def host_tsc_khz(cpuinfo: Path = Path("/proc/cpuinfo")) -> int | None:
    """The host's TSC frequency in kHz, from its BogoMIPS; None when unknown or implausible.

    On x86 the kernel derives loops_per_jiffy from the TSC (lpj = TSC Hz / HZ), so BogoMIPS,
    lpj * HZ / 500000, is the TSC in MHz times two, whatever the host's HZ.
    """
    try:
        bogomips = next(
            float(line.split(":", 1)[1]) for line in cpuinfo.read_text().splitlines() if line.startswith("bogomips")
        )
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    khz = int(bogomips * 500)
    return khz if 100_000 <= khz <= 10_000_000 else None


def preset_lpj(config: Path | None, cpuinfo: Path = Path("/proc/cpuinfo")) -> int | None:
    """The guest's loops per jiffy, from the host's TSC: None when either is unknown.

    Under TCG and KVM the guest's TSC runs at the host's rate, and on x86 the kernel's delay loop
    counts TSC cycles, so lpj = TSC Hz / guest HZ (CONFIG_HZ in the kernel's ``config``;
    Debian: 250). A preset only changes how udelay() converts microseconds.
    """
    khz = host_tsc_khz(cpuinfo)
    try:
        text = config.read_text() if config is not None else ""
        hz = int(next(line.split("=", 1)[1] for line in text.splitlines() if line.startswith("CONFIG_HZ=")))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    if khz is None or hz <= 0:
        return None
    return khz * 1000 // hz


def prepare_boot(kernel: Kernel) -> BootArtifacts:
    """Extract the PVH vmlinux (cached) and build the initramfs (cached)."""
    image = kernel.require_image()
    if kernel.modules_dir is None:
        raise SetupError(
            f"no modules directory /lib/modules/{kernel.release} (the VM needs its 9p modules): "
            f"install them with `apt-get install linux-image-{kernel.release}`"
        )
    cache = assets.cache_dir()
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).is_file():
        raise SetupError(
            "busybox is not installed: install it with `apt-get install busybox-static` (or run `make demo`)"
        )
    try:
        vmlinux = kernel_image.cached_vmlinux(image, cache)
    except kernel_image.KernelImageError:
        vmlinux = None  # QEMU boots the compressed image itself, only slower
    init_script = assets.vm_file("init.sh").read_text()
    initrd = initramfs.build_initramfs(
        kernel.release,
        cache / f"initramfs-{kernel.release}.cpio",
        modules_root=kernel.modules_dir.parent,
        busybox=Path(busybox),
        init_script=init_script,
    )
    return BootArtifacts(
        kernel=vmlinux or image,
        initrd=initrd,
        pvh=vmlinux is not None,
        append=kernel_params(kernel),
        lpj=preset_lpj(kernel.config),
        tsc_khz=host_tsc_khz(),
        busybox=busybox,
    )
