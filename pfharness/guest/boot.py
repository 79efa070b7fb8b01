"""What the VM boots from, prepared (and cached) on the host: the PVH vmlinux and the initramfs."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import assets
from ..errors import SetupError
from ..kmod.kernels import KernelInfo
from . import initramfs, kernel_image

QBOOT = Path("/usr/share/qemu/qboot.rom")  # minimal firmware shipped with Debian's qemu-system-x86


@dataclass(frozen=True)
class BootArtifacts:
    """What the VM boots from, prepared (and cached) on the host."""

    kernel: Path  # PVH vmlinux, or the compressed image as a fall-back
    initrd: Path
    pvh: bool  # True when booting the extracted vmlinux
    lpj: int | None = None  # loops per jiffy to preset in the guest (see preset_lpj), None to measure


def preset_lpj(image: Path, release: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> int | None:
    """The guest's loops per jiffy, from the host's: None when either is unknown.

    Under TCG and KVM the guest's TSC runs at the host's rate, and on x86 the kernel's delay loop
    counts TSC cycles, so lpj = TSC Hz / guest HZ. The host's BogoMIPS is TSC Hz / 500000 (x86),
    and the guest's HZ is CONFIG_HZ in the config file beside its image (Debian: 250).
    A preset only changes how udelay() converts microseconds; the guest's clock is not affected.
    """
    try:
        bogomips = next(
            float(line.split(":", 1)[1]) for line in cpuinfo.read_text().splitlines() if line.startswith("bogomips")
        )
        config = (image.parent / f"config-{release}").read_text()
        hz = int(next(line.split("=", 1)[1] for line in config.splitlines() if line.startswith("CONFIG_HZ=")))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    lpj = int(bogomips * 500000 / hz)
    return lpj if lpj > 0 else None


def prepare_boot(kernel: KernelInfo) -> BootArtifacts:
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
        kernel=vmlinux or image, initrd=initrd, pvh=vmlinux is not None, lpj=preset_lpj(image, kernel.release)
    )
