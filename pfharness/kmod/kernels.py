"""Find the kernels this machine can build modules for and boot: images in
/boot, headers (kbuild directories) under /lib/modules/<release>/build."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import HeadersMissing, KernelNotFound


@dataclass(frozen=True)
class KernelInfo:
    """One kernel release found on this machine."""

    release: str  # e.g. "6.1.0-56-amd64"
    image: Path | None  # the bootable image (/boot/vmlinuz-<release>), if present
    headers: Path | None  # the kbuild directory (/lib/modules/<release>/build), if present
    modules_dir: Path | None  # /lib/modules/<release>, if present (9p modules for the VM come from here)

    @property
    def usable(self) -> bool:
        """Both an image to boot and headers to build against."""
        return self.image is not None and self.headers is not None

    def require_headers(self) -> Path:
        """The kbuild directory, or an error naming the package to install."""
        if self.headers is None:
            raise HeadersMissing(headers_missing_message(self.release))
        return self.headers

    def require_image(self) -> Path:
        """The kernel image, or an error naming the package to install."""
        if self.image is None:
            raise KernelNotFound(
                f"no kernel image /boot/vmlinuz-{self.release} to boot in the VM: "
                f"install it with `apt-get install linux-image-{self.release}`"
            )
        return self.image


def headers_missing_message(release: str, where: Path | None = None) -> str:
    place = f" at {where}" if where else ""
    return (
        f"no kernel headers for {release}{place}: install them with "
        f"`apt-get install linux-headers-{release}` (or pass --kdir DIR of a built kernel tree)"
    )


def release_sort_key(release: str) -> tuple:
    """Sort releases by their numbers: 6.12.0 > 6.1.99 > 6.1.0-56 > 6.1.0-9."""
    return tuple(int(n) for n in re.findall(r"\d+", release))


def discover(root: Path = Path("/")) -> list[KernelInfo]:
    """All releases with an image or a modules directory under `root`, newest first."""
    boot = root / "boot"
    modules = root / "lib" / "modules"
    releases: set[str] = set()
    if boot.is_dir():
        releases.update(p.name[len("vmlinuz-") :] for p in boot.glob("vmlinuz-*"))
    if modules.is_dir():
        releases.update(p.name for p in modules.iterdir() if p.is_dir())
    found = []
    for release in releases:
        image = boot / f"vmlinuz-{release}"
        mod_dir = modules / release
        build = mod_dir / "build"
        found.append(
            KernelInfo(
                release=release,
                image=image if image.is_file() else None,
                headers=build if (build / "Makefile").is_file() else None,
                modules_dir=mod_dir if mod_dir.is_dir() else None,
            )
        )
    return sorted(found, key=lambda k: release_sort_key(k.release), reverse=True)


def default_kernel(kernels: list[KernelInfo]) -> KernelInfo | None:
    """The newest release that has both an image and headers."""
    return next((k for k in kernels if k.usable), None)


def select(release: str | None, root: Path = Path("/")) -> KernelInfo:
    """The kernel named by `release`, or the default one; a clear error when there is none."""
    kernels = discover(root)
    if release is None:
        chosen = default_kernel(kernels)
        if chosen is None:
            listed = ", ".join(k.release for k in kernels) or "none"
            raise KernelNotFound(
                f"no kernel with both an image and headers (found: {listed}): "
                "install them with `apt-get install linux-image-amd64 linux-headers-amd64` (or run `make demo`)"
            )
        return chosen
    for k in kernels:
        if k.release == release:
            return k
    return KernelInfo(release=release, image=None, headers=None, modules_dir=None)
