"""Find the kernels this machine can build modules for and boot: installed ones (images in
/boot, headers, the kbuild directories, under /lib/modules/<release>/build) and those in
pfharness's cache (``<cache>/kernels/<release>/``, the same layout under their own root: put
there by ``pfharness kernels fetch`` or scripts/build-debug-kernel.sh).

``select`` takes an exact release or a series (``6.12``, ``7.2``, ``6.1-rt``: the newest kernel
here of that series and flavour)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .. import assets
from ..errors import HeadersMissing, KernelNotFound
from . import fetch


@dataclass(frozen=True)
class KernelInfo:
    """One kernel release found on this machine."""

    release: str  # e.g. "6.1.0-56-amd64"
    image: Path | None  # the bootable image (/boot/vmlinuz-<release>), if present
    headers: Path | None  # the kbuild directory (/lib/modules/<release>/build), if present
    modules_dir: Path | None  # /lib/modules/<release>, if present (the VM's initramfs modules come from here)
    root: Path = Path("/")  # the root it was found under: / (installed) or <cache>/kernels/<release>
    cached: bool = False  # True for a kernel in pfharness's cache (fetched or built), not installed

    @property
    def installed(self) -> bool:
        """Installed on this machine, rather than in pfharness's cache."""
        return not self.cached

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


def headers_missing_message(release: str, where: Path | None = None) -> str:
    place = f" at {where}" if where else ""
    return (
        f"no kernel headers for {release}{place}: install them with "
        f"`apt-get install linux-headers-{release}`, fetch them with `pfharness kernels fetch {release}` "
        "(or pass --kdir DIR of a built kernel tree)"
    )


def release_sort_key(release: str) -> tuple:
    """Sort releases by their numbers: 6.12.0 > 6.1.99 > 6.1.0-56 > 6.1.0-9."""
    return tuple(int(n) for n in re.findall(r"\d+", release))


def discover(root: Path = Path("/"), *, cached: bool = False) -> list[KernelInfo]:
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
                root=root,
                cached=cached,
            )
        )
    return sorted(found, key=lambda k: release_sort_key(k.release), reverse=True)


def default_kernel(kernels: list[KernelInfo]) -> KernelInfo | None:
    """The newest release that has both an image and headers."""
    return next((k for k in kernels if k.usable), None)


def in_cache(cache: Path) -> list[KernelInfo]:
    """The usable kernels under ``<cache>/kernels/<release>/`` (fetched or built), newest first."""
    base = cache / "kernels"
    found: list[KernelInfo] = []
    if base.is_dir():
        for root in sorted(base.iterdir()):
            if root.name.startswith(".") or not root.is_dir():
                continue
            found += [k for k in discover(root, cached=True) if k.release == root.name and k.usable]
    return sorted(found, key=lambda k: release_sort_key(k.release), reverse=True)


def available(root: Path = Path("/"), cache: Path | None = None) -> list[KernelInfo]:
    """Installed kernels (under ``root``), then those in ``cache`` that are not installed too."""
    installed = discover(root)
    usable = {k.release for k in installed if k.usable}
    return installed + [k for k in in_cache(cache) if k.release not in usable] if cache else installed


def _series_of(spec: str) -> fetch.Spec | None:
    """A series spelling (``6.12``, ``6.1-rt``) as a fetch spec; None for anything else."""
    try:
        parsed = fetch.parse_spec(spec)
    except KernelNotFound:
        return None
    return parsed if parsed.series is not None else None


def _listing(kernels: list[KernelInfo]) -> str:
    installed = ", ".join(k.release for k in kernels if k.installed and k.usable) or "none"
    cached = ", ".join(k.release for k in kernels if not k.installed) or "none"
    return f"installed: {installed}; fetched: {cached}"


def select(release: str | None, root: Path = Path("/"), cache: Path | None = None) -> KernelInfo:
    """The kernel named by ``release`` (an exact release or a series), or the default one.

    Looks at the kernels installed under ``root`` and, for ``root`` = /, at those in the
    pfharness cache (``cache``, default :func:`pfharness.assets.cache_dir`). An installed kernel
    wins over a cached one of the same release; a series picks the newest of its flavour. A
    series nothing here matches is a one-line error naming what exists and the fetch command;
    an unknown exact release comes back without image and headers (their errors name the
    packages to install).
    """
    if cache is None and root == Path("/"):
        cache = assets.cache_dir()
    kernels = available(root, cache)
    if release is None:
        chosen = default_kernel(kernels)
        if chosen is None:
            listed = ", ".join(k.release for k in kernels) or "none"
            raise KernelNotFound(
                f"no kernel with both an image and headers (found: {listed}): "
                "install them with `apt-get install linux-image-amd64 linux-headers-amd64` (or run `make demo`)"
            )
        return chosen
    exact = [k for k in kernels if k.release == release]
    if exact:
        return next((k for k in exact if k.usable), exact[0])
    series = _series_of(release)
    if series is not None:
        matching = [k for k in kernels if k.usable and series.matches(k.release)]
        if not matching:
            raise KernelNotFound(
                f"no {release} kernel here ({_listing(kernels)}): fetch one with `pfharness kernels fetch {release}`"
            )
        newest = max(release_sort_key(k.release) for k in matching)
        return next(k for k in matching if release_sort_key(k.release) == newest)
    return KernelInfo(release=release, image=None, headers=None, modules_dir=None)
