"""Fetch Debian kernels (image, modules, headers) into pfharness's cache, with apt.

``fetch("6.1", cache)`` finds the newest 6.1 kernel Debian offers (:mod:`.spec` parses the
request, :mod:`.apt` reads the archive with pfharness's own apt configuration), downloads its
packages with ``apt-get download`` and unpacks them into ``<cache>/kernels/<release>/`` in the
fixed layout of :mod:`.arrange`, so :func:`pfharness.kmod.kernels.select` finds it.

The archive's address is read at run time from the machine's own apt sources (deb822
``URIs:``), never written here. How modules are built for a fetched kernel is
:mod:`.toolchain`'s. The command line is ``pfharness kernels fetch SPEC``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import KernelNotFound, SetupError
from ..kernel import Kernel
from . import arrange, kernels
from .apt import Apt, compiler_of, kernel_parts, system_archive_uris
from .spec import DISTS, Spec, parse_spec


@dataclass(frozen=True)
class Fetched:
    """What ``fetch`` gives back: the kernel, and how it came."""

    kernel: Kernel
    seconds: float  # wall time of this fetch (download + unpack, or the cache look-up)
    cached: bool  # True when it was already in the cache


def _resolve(apt: Apt, release: str) -> tuple[list[tuple[str, str]], str]:
    """The (package, version) pins of one release (image, modules, headers, kbuild) and its compiler."""
    todo: list[tuple[str, str | None]] = [(f"linux-image-{release}", None), (f"linux-headers-{release}", None)]
    pins: dict[str, str] = {}
    compiler = ""
    while todo:
        name, version = todo.pop(0)
        if name in pins:
            continue
        rec = apt.show(name, version)
        if rec is None:
            raise KernelNotFound(
                f"Debian {apt.dist} lists no package {name}{'=' + version if version else ''} for {release}"
            )
        pins[name] = rec["Version"]
        deps = rec.get("Depends", "") + ", " + rec.get("Pre-Depends", "")
        if name.startswith("linux-headers-") and not compiler:
            compiler = compiler_of(deps)
        todo += [(n, v) for n, v in kernel_parts(deps) if n not in pins]
    return list(pins.items()), compiler


def _locate(spec: Spec, cache: Path, uris: dict[str, str]) -> tuple[Apt, str]:
    """The distribution's apt and the release that ``spec`` names; KernelNotFound listing what exists."""
    offered: dict[str, list[str]] = {}
    for dist in spec.dists():
        apt = Apt(cache, dist, uris)
        apt.update()
        releases = apt.releases()
        for rel in releases:
            if spec.matches(rel):
                return apt, rel
        offered[dist] = offered_like(spec, releases)
    raise KernelNotFound(not_found_message(spec, offered))


def offered_like(spec: Spec, releases: Sequence[str]) -> list[str]:
    """What to list when ``spec`` is not found: the releases of its flavour, of its series when there are some."""
    flavour = spec.flavour
    if spec.release is not None:
        flavour = "rt-amd64" if spec.release.endswith("-rt-amd64") else "amd64"
    same = [r for r in releases if re.search(r"[\d+~]-" + re.escape(flavour) + "$", r)]
    series = spec.series or ".".join(re.findall(r"\d+", spec.release or "")[:2])
    in_series = [r for r in same if r.startswith(series + ".")]
    return in_series or same


def not_found_message(spec: Spec, offered: dict[str, list[str]]) -> str:
    """One line: what was asked for, and the kernels each suite offers."""
    parts = []
    for dist, releases in offered.items():
        suites = "+".join(s for s, _ in DISTS[dist])
        shown = ", ".join(releases[:12]) + (f", ... ({len(releases)} in all)" if len(releases) > 12 else "")
        parts.append(f"{suites}: {shown or 'none'}")
    want = f"kernel release {spec.release}" if spec.release else f"a {spec.series} kernel ({spec.flavour})"
    return f"no {want} with image and headers in Debian; linux-image-*-amd64 offered by " + "; ".join(parts)


def fetch(spec: str, cache: Path) -> Fetched:
    """Fetch (or find in ``cache``) the kernel ``spec`` names; see the module's docstring."""
    start = time.monotonic()
    want = parse_spec(spec)
    base = kernels.cache_kernels_dir(cache)
    if want.release is not None:  # an exact release: no apt at all when it is cached
        hit = kernels.cached(base / want.release)
        if hit is not None:
            return Fetched(hit, time.monotonic() - start, True)
    try:
        apt, release = _locate(want, cache, system_archive_uris())
        hit = kernels.cached(base / release)
        if hit is not None:
            return Fetched(hit, time.monotonic() - start, True)
        pins, compiler = _resolve(apt, release)
        debs = apt.download(pins, cache / "debs" / apt.dist)
    except subprocess.TimeoutExpired as e:
        raise SetupError(f"apt timed out fetching {spec} ({e.timeout:.0f} s): is the network up?") from None
    _unpack_into(base / release, debs, arrange.Marker(release, apt.dist, compiler), dict(pins))
    for deb in debs:  # unpacked: ~100-200 MB per kernel that apt can fetch again
        deb.unlink(missing_ok=True)
    fetched = kernels.cached(base / release)
    if fetched is None:
        raise SetupError(f"{base / release} is incomplete after unpacking {release}")
    return Fetched(fetched, time.monotonic() - start, False)


def _unpack_into(root: Path, debs: Sequence[Path], marker: arrange.Marker, pins: dict[str, str]) -> None:
    """Unpack ``debs`` into a temporary tree, arrange it, mark it complete and rename it to ``root``."""
    release = marker.release
    tmp = root.with_name(f".{release}.{os.getpid()}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        arrange.unpack(debs, tmp)
        arrange.arrange(tmp, release)
        if not (tmp / "boot" / f"vmlinuz-{release}").is_file():
            raise SetupError(f"the packages of {release} ({', '.join(pins)}) hold no boot/vmlinuz-{release}")
        arrange.depmod(tmp, release)
        arrange.write_marker(tmp, marker, pins, time.time())
        if arrange.read_marker(root) is not None:  # another pfharness fetched it meanwhile
            shutil.rmtree(tmp)
        else:
            if root.exists():  # an incomplete earlier attempt
                shutil.rmtree(root)
            tmp.rename(root)  # symlinks were made relative inside tmp: they stay valid after the rename
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
