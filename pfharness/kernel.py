"""A kernel, resolved once at the edge (:func:`pfharness.kmod.kernels.select`) and passed down as is.

Building reads its headers and toolchain, booting its image, modules and config; neither looks
it up again (no marker re-read from disk, no toolchain probed twice). Depends only on
:mod:`pfharness.errors`: every floor may hold one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import HeadersMissing, KernelNotFound

#: Where a kernel came from (Origin.kind).
INSTALLED = "installed"  # the machine's own, under /boot and /lib/modules
FETCHED = "fetched"  # a Debian kernel `pfharness kernels fetch` unpacked in the cache
BUILT = "built"  # one built here: in the cache (scripts/build-debug-kernel.sh), or a --kdir tree


@dataclass(frozen=True)
class Origin:
    """Where a kernel came from; for a fetched one, what its cache marker says."""

    kind: str  # INSTALLED, FETCHED or BUILT
    root: Path = Path("/")  # the root it lives under: / (installed) or <cache>/kernels/<release>
    dist: str = ""  # fetched: the Debian distribution it came from (bookworm, sid, ...)
    compiler: str = ""  # fetched: the compiler package its headers ask for (gcc-12, gcc-16-for-host, ...)


@dataclass(frozen=True)
class BuildRoot:
    """A root of another Debian suite to build in (made once, when first building: kmod/toolchain.py)."""

    dist: str  # the distribution of the root (sid)
    compiler: str  # the compiler package installed in it ("" for the suite's default)
    bind: Path  # the kernel's own root, bound at the same path inside


@dataclass(frozen=True)
class Toolchain:
    """How ``make`` builds modules for a kernel: on the host, with extra make variables, or in a build root."""

    make_vars: tuple[str, ...] = ()  # e.g. ("CC=gcc-12",) when the kernel's own compiler is not installed
    build_root: BuildRoot | None = None  # set when the host cannot run the kernel's kbuild tools

    @property
    def on_host(self) -> bool:
        return self.build_root is None


HOST_TOOLCHAIN = Toolchain()


def headers_missing_message(release: str, where: Path | None = None) -> str:
    place = f" at {where}" if where else ""
    return (
        f"no kernel headers for {release}{place}: install them with "
        f"`apt-get install linux-headers-{release}`, fetch them with `pfharness kernels fetch {release}` "
        "(or pass --kdir DIR of a built kernel tree)"
    )


@dataclass(frozen=True)
class Kernel:
    """One kernel release: what builds for it and what boots it."""

    release: str  # e.g. "6.1.0-56-amd64"
    image: Path | None  # the bootable image (<root>/boot/vmlinuz-<release>), if present
    headers: Path | None  # the kbuild directory (<root>/lib/modules/<release>/build), if present
    modules_dir: Path | None  # <root>/lib/modules/<release>, if present (the VM's initramfs modules)
    config: Path | None = None  # <root>/boot/config-<release>, if present
    origin: Origin = Origin(INSTALLED)
    toolchain: Toolchain = HOST_TOOLCHAIN  # resolved with the kernel, never probed again

    @property
    def installed(self) -> bool:
        """Installed on this machine, rather than in pfharness's cache."""
        return self.origin.kind == INSTALLED

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
                f"install it with `apt-get install linux-image-{self.release}` "
                f"or fetch it with `pfharness kernels fetch {self.release}`"
            )
        return self.image
