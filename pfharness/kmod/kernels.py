"""Find the kernels this machine can build modules for and boot: installed ones (images in
/boot, headers, the kbuild directories, under /lib/modules/<release>/build) and those in
pfharness's cache (``<cache>/kernels/<release>/``, the same layout under their own root: put
there by ``pfharness kernels fetch`` or scripts/build-debug-kernel.sh).

``select`` takes an exact release or a series (``6.12``, ``7.2``, ``6.1-rt``: the newest kernel
here of that series and flavour)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import assets
from ..errors import HeadersMissing, KernelNotFound
from ..kernel import BUILT, FETCHED, INSTALLED, Kernel, Origin
from . import arrange, toolchain
from .spec import Spec, parse_spec, version_key


def discover(root: Path = Path("/"), origin: Origin | None = None, *, resolve: bool = True) -> list[Kernel]:
    """All releases with an image or a modules directory under `root`, newest first (``origin``:
    where they came from, default installed under ``root``); their toolchain is resolved once here
    (``resolve``; else the host's is assumed, for `select` to resolve the one it picks)."""
    origin = origin or Origin(INSTALLED, root)
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
        config = boot / f"config-{release}"
        headers = build if (build / "Makefile").is_file() else None
        found.append(
            Kernel(
                release=release,
                image=image if image.is_file() else None,
                headers=headers,
                modules_dir=mod_dir if mod_dir.is_dir() else None,
                config=config if config.is_file() else None,
                origin=origin,
                toolchain=toolchain.resolve(release, headers, origin) if resolve else toolchain.HOST_TOOLCHAIN,
            )
        )
    return sorted(found, key=lambda k: version_key(k.release), reverse=True)


def default_kernel(kernels: list[Kernel]) -> Kernel | None:
    """The newest release that has both an image and headers."""
    return next((k for k in kernels if k.usable), None)


def cache_kernels_dir(cache: Path) -> Path:
    """Where the cache keeps kernels: ``<cache>/kernels/<release>/``."""
    return cache / "kernels"


def cached(root: Path, *, resolve: bool = True) -> Kernel | None:
    """The usable kernel in the cache at ``root`` (``<cache>/kernels/<release>``): fetched (a complete
    tree with its marker) or built (no marker); None when there is none, or an incomplete fetch."""
    marker = arrange.read_marker(root)
    if marker is not None:
        origin = Origin(FETCHED, root, marker.dist, marker.compiler)
    elif arrange.has_marker(root):
        return None  # a fetch that did not finish
    else:
        origin = Origin(BUILT, root)
    return next((k for k in discover(root, origin, resolve=resolve) if k.release == root.name and k.usable), None)


def in_cache(cache: Path, *, resolve: bool = True) -> list[Kernel]:
    """The usable kernels under ``<cache>/kernels/<release>/`` (fetched or built), newest first."""
    base = cache_kernels_dir(cache)
    found: list[Kernel] = []
    if base.is_dir():
        for root in sorted(base.iterdir()):
            if root.name.startswith(".") or not root.is_dir():
                continue
            kernel = cached(root, resolve=resolve)
            if kernel is not None:
                found.append(kernel)
    return sorted(found, key=lambda k: version_key(k.release), reverse=True)


def available(root: Path = Path("/"), cache: Path | None = None, *, resolve: bool = True) -> list[Kernel]:
    """Installed kernels (under ``root``), then those in ``cache`` that are not installed too (their
    toolchains resolved, unless not ``resolve``)."""
    installed = discover(root, resolve=resolve)
    usable = {k.release for k in installed if k.usable}
    return installed + [k for k in in_cache(cache, resolve=resolve) if k.release not in usable] if cache else installed


def _series_of(spec: str) -> Spec | None:
    """A series spelling (``6.12``, ``6.1-rt``) as a spec; None for anything else."""
    try:
        parsed = parse_spec(spec)
    except KernelNotFound:
        return None
    return parsed if parsed.series is not None else None


def _listing(kernels: list[Kernel]) -> str:
    installed = ", ".join(k.release for k in kernels if k.installed and k.usable) or "none"
    in_the_cache = ", ".join(k.release for k in kernels if not k.installed) or "none"
    return f"installed: {installed}; fetched: {in_the_cache}"


def select(release: str | None, root: Path = Path("/"), cache: Path | None = None) -> Kernel:
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
    # Only the chosen kernel's toolchain is probed (its fixdep run, its compiler looked for): ~10 ms each.
    chosen = _choose(release, available(root, cache, resolve=False))
    return dataclasses.replace(chosen, toolchain=toolchain.resolve(chosen.release, chosen.headers, chosen.origin))


def _choose(release: str | None, kernels: list[Kernel]) -> Kernel:
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
        newest = max(version_key(k.release) for k in matching)
        return next(k for k in matching if version_key(k.release) == newest)
    return Kernel(release=release, image=None, headers=None, modules_dir=None)


def _kdir_release(kdir: Path) -> str | None:
    """The release a kbuild directory is for, from include/config/kernel.release."""
    f = kdir / "include" / "config" / "kernel.release"
    return f.read_text().strip() if f.is_file() else None


def from_kdir(kdir: Path, release: str | None = None) -> Kernel:
    """The kernel of a built kbuild directory (``--kdir``): headers only, built with the host's toolchain."""
    resolved = kdir.resolve()
    if not (resolved / "Makefile").is_file():
        raise HeadersMissing(
            f"{kdir} is not a kernel build directory (no Makefile there): pass the headers directory, "
            "e.g. --kdir /lib/modules/<release>/build, after `apt-get install linux-headers-<release>`"
        )
    return Kernel(_kdir_release(resolved) or release or "unknown", None, resolved, None, origin=Origin(BUILT, resolved))
