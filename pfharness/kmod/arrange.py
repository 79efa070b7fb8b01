"""A fetched kernel's packages unpacked into the cache's fixed layout (``<cache>/kernels/<release>/``):

* ``boot/vmlinuz-<release>``
* ``lib/modules/<release>/`` (modules, ``modules.dep`` made by ``depmod -b``)
* ``lib/modules/<release>/build`` -> ``../../../usr/src/linux-headers-<release>`` (relative)
* ``usr/src/linux-headers-<release>*`` and ``usr/lib/linux-kbuild-*`` with every absolute
  symlink (and the headers' ``include /usr/src/...`` line) rewritten to stay inside the root,

and the marker (``.pfharness-fetched.json``) that says the tree is complete and where it came from."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .. import proc
from ..errors import SetupError

MARKER = ".pfharness-fetched.json"
LAYOUT_VERSION = 1


def relative_target(root: Path, link: Path, target: str) -> str | None:
    """The target an absolute symlink ``link`` -> ``target`` should have to stay inside ``root``.

    None when ``target`` is already relative. ``/usr/src/x`` from ``root/lib/modules/R/build``
    becomes ``../../../usr/src/x``.
    """
    if not target.startswith("/"):
        return None
    inside = root / PurePosixPath(target).relative_to("/")
    return os.path.relpath(inside, link.parent)


def rewrite_absolute_symlinks(root: Path) -> int:
    """Make every absolute symlink under ``root`` relative, pointing inside ``root``. Returns how many."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                continue
            new = relative_target(root, p, os.readlink(p))
            if new is not None:
                p.unlink()
                p.symlink_to(new)
                count += 1
    return count


_HEADERS_PARENT = "pfh_headers_parent"
_HEADERS_PARENT_LINE = f"{_HEADERS_PARENT} := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)\n"


def rewrite_makefile_paths(text: str) -> str:
    """Debian's per-flavour headers Makefile names ``/usr/src/...``: make it name the tree it is in.

    ``include /usr/src/linux-headers-X-common/Makefile`` (and 7.2's
    ``KBUILD_OUTPUT=/usr/src/linux-headers-X-amd64``) point at the directory that holds the
    Makefile's own directory; a first line computes that directory from the Makefile's
    location, so the tree works wherever the cache is (and at the same path inside bwrap).
    """
    if "/usr/src/" not in text or text.startswith(_HEADERS_PARENT):
        return text
    return _HEADERS_PARENT_LINE + text.replace("/usr/src/", f"$({_HEADERS_PARENT})/")


def move_keeping_links(src: Path, dest: Path) -> None:
    """Rename directory ``src`` to ``dest``; its relative symlinks that point outside it still point there."""
    outside: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(src):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink():
                target = os.readlink(p)
                if target.startswith("/"):
                    continue
                resolved = os.path.normpath(os.path.join(p.parent, target))
                if not (resolved + "/").startswith(str(src) + "/"):
                    outside.append((dest / p.relative_to(src), resolved))
    dest.parent.mkdir(parents=True, exist_ok=True)
    src.rename(dest)
    for link, resolved in outside:
        link.unlink()
        link.symlink_to(os.path.relpath(resolved, link.parent))


def arrange(root: Path, release: str) -> Path:
    """Bring an unpacked kernel into the fixed layout; return its headers directory."""
    usr_mods = root / "usr" / "lib" / "modules" / release
    mods = root / "lib" / "modules" / release
    if usr_mods.is_dir() and not mods.exists():  # merged-/usr packages (trixie, sid)
        move_keeping_links(usr_mods, mods)
    boot = root / "boot"
    for name, dest in (("vmlinuz", "vmlinuz"), ("System.map", "System.map"), ("config", "config")):
        # sid's linux-binary/linux-base put the image, System.map and config in the modules directory
        src, link = mods / name, boot / f"{dest}-{release}"
        if src.is_file() and not link.exists():
            boot.mkdir(exist_ok=True)
            os.link(src, link)
    rewrite_absolute_symlinks(root)
    headers = root / "usr" / "src" / f"linux-headers-{release}"
    if not headers.is_dir():
        raise SetupError(f"the headers of {release} did not unpack to {headers}")
    build = mods / "build"
    if build.is_symlink() or build.exists():
        build.unlink()
    mods.mkdir(parents=True, exist_ok=True)
    build.symlink_to(os.path.relpath(headers, mods))
    for src in (root / "usr" / "src").glob("linux-headers-*"):
        mk = src / "Makefile"
        if mk.is_file() and not mk.is_symlink():
            text = mk.read_text(errors="replace")
            new = rewrite_makefile_paths(text)
            if new != text:
                mk.write_text(new)
    return headers


def unpack(debs: Sequence[Path], root: Path) -> None:
    dpkg_deb = proc.require_program("dpkg-deb", "dpkg")
    for deb in debs:
        r = proc.run([dpkg_deb, "-x", deb, root], merge_stderr=True)
        if r.returncode != 0:
            raise SetupError(f"dpkg-deb -x {deb.name} failed: {r.stdout.strip()[-300:]}")


def depmod(root: Path, release: str) -> None:
    depmod = shutil.which("depmod") or proc.require_program("depmod", "kmod")
    argv: list[str | os.PathLike[str]] = [depmod, "-b", root]
    system_map = root / "boot" / f"System.map-{release}"
    if system_map.is_file():
        argv += ["-F", system_map]
    r = proc.run([*argv, release], merge_stderr=True)
    if r.returncode != 0 or not (root / "lib" / "modules" / release / "modules.dep").is_file():
        raise SetupError(f"depmod -b {root} {release} failed: {r.stdout.strip()[-300:]}")


@dataclass(frozen=True)
class Marker:
    """What a complete fetched tree's marker says."""

    release: str
    dist: str  # the Debian distribution it came from
    compiler: str  # the compiler package its headers ask for


def write_marker(root: Path, marker: Marker, packages: dict[str, str], fetched_at: float) -> None:
    info = {
        "layout": LAYOUT_VERSION,
        "release": marker.release,
        "dist": marker.dist,
        "compiler": marker.compiler,
        "packages": packages,
        "fetched_at": fetched_at,
    }
    (root / MARKER).write_text(json.dumps(info, indent=1) + "\n")


def has_marker(root: Path) -> bool:
    """Does ``root`` hold a fetched tree's marker (complete or not)?"""
    return (root / MARKER).is_file()


def read_marker(root: Path) -> Marker | None:
    """The marker of the complete fetched tree at ``root``; None when there is none, or the tree is incomplete."""
    try:
        info = json.loads((root / MARKER).read_text())
        if info.get("layout") != LAYOUT_VERSION:
            return None
        marker = Marker(info["release"], info.get("dist", ""), info.get("compiler", ""))
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    mods = root / "lib" / "modules" / marker.release
    image = root / "boot" / f"vmlinuz-{marker.release}"
    if not (image.is_file() and (mods / "modules.dep").is_file() and (mods / "build" / "Makefile").is_file()):
        return None
    return marker
