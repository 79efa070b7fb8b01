"""Fetch Debian kernels (image, modules, headers) into pfharness's cache, with apt.

``fetch("6.1", cache)`` downloads, with ``apt-get download`` and an apt configuration of
pfharness's own (``<cache>/apt/<dist>/``: its own sources, lists and package cache; the
system's sources and dpkg status are never read nor written), the packages of the newest
6.1 kernel Debian offers, verified as apt verifies them (signed Release files, keyring
:data:`KEYRING`), and unpacks them with ``dpkg-deb -x`` into ``<cache>/kernels/<release>/``:

* ``boot/vmlinuz-<release>``
* ``lib/modules/<release>/`` (modules, ``modules.dep`` made by ``depmod -b``)
* ``lib/modules/<release>/build`` -> ``../../../usr/src/linux-headers-<release>`` (relative)
* ``usr/src/linux-headers-<release>*`` and ``usr/lib/linux-kbuild-*`` with every absolute
  symlink (and the headers' ``include /usr/src/...`` line) rewritten to stay inside the root,

so ``pfharness.kmod.kernels.discover(root=<cache>/kernels/<release>)`` finds it usable.

The archive's address is read at run time from the machine's own apt sources (deb822
``URIs:``), never written here. Kernels whose kbuild tools or compiler this machine
cannot run (sid's 7.2 needs a newer glibc and gcc-16) are built inside a root of their own
suite made once with ``mmdebstrap`` (``<cache>/buildroots/<dist>``) and entered with
``bwrap``: see :func:`build_prefix`.

Depends only on :mod:`pfharness.errors` and :mod:`pfharness.proc`. The command line is
``pfharness kernels fetch SPEC``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from .. import proc
from ..errors import KernelNotFound, SetupError

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
SYSTEM_SOURCES = (Path("/etc/apt/sources.list.d"), Path("/etc/apt/sources.list"))

#: The Debian suites pfharness fetches from, per distribution: (suite, archive kind).
#: "main" is the archive of the machine's non-security sources, "security" its security one.
DISTS: dict[str, tuple[tuple[str, str], ...]] = {
    "bullseye": (("bullseye", "main"),),
    "bookworm": (("bookworm", "main"), ("bookworm-security", "security")),
    "trixie": (("trixie", "main"),),
    "sid": (("sid", "main"),),
}

#: Kernel series -> the distribution that ships it (6.12 built for Debian 12: bookworm-security).
SERIES: dict[str, str] = {"5.10": "bullseye", "6.1": "bookworm", "6.12": "bookworm", "7.2": "sid"}

#: The flavours a spec may ask for: "" (generic amd64) and "rt" (PREEMPT_RT).
FLAVOURS = {"": "amd64", "rt": "rt-amd64"}

_SPEC = re.compile(r"^(?P<series>\d+\.\d+)(?:-(?P<flavour>rt))?$")
_RELEASE = re.compile(r"^\d+\.\d+[\w.+~-]*-(?:rt-)?amd64$")
#: Dependencies of the image and headers packages that are part of the kernel itself.
_KERNEL_PART = re.compile(r"^linux-(?:image|binary|modules|base|headers|kbuild)-\d")
_MARKER = ".pfharness-fetched.json"
_LAYOUT_VERSION = 1


@dataclass(frozen=True)
class FetchedKernel:
    """A kernel unpacked in the cache."""

    release: str  # e.g. "6.1.0-56-amd64"
    root: Path  # <cache>/kernels/<release>
    image: Path  # root/boot/vmlinuz-<release>
    modules_dir: Path  # root/lib/modules/<release>
    headers: Path  # root/lib/modules/<release>/build (the kbuild directory)
    seconds: float  # wall time of this fetch (download + unpack, or the cache look-up)
    cached: bool  # True when it was already in the cache
    dist: str = ""  # the Debian distribution it came from (bookworm, sid, ...)
    compiler: str = ""  # the compiler package its headers ask for (gcc-12, gcc-16-for-host, ...)


# --------------------------------------------------------------------------
# The machine's apt sources (deb822), read for the archive's URIs only
# --------------------------------------------------------------------------


def parse_deb822(text: str) -> list[dict[str, str]]:
    """Stanzas of a deb822 file as {field: value}; comments dropped, continuation lines joined."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
            continue
        if line[0] in " \t" and key is not None:
            current[key] += "\n" + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip()
        current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def archive_uris_from_stanzas(stanzas: Iterable[dict[str, str]]) -> dict[str, str]:
    """{"main": uri, "security": uri} from deb822 source stanzas (the first of each kind).

    A stanza whose suites all end in ``-security`` gives the security archive; any other
    enabled ``deb`` stanza gives the main one.
    """
    found: dict[str, str] = {}
    for st in stanzas:
        if "deb" not in st.get("Types", "").split():
            continue
        if st.get("Enabled", "yes").lower() == "no":
            continue
        uris = st.get("URIs", "").split()
        suites = st.get("Suites", "").split()
        if not uris or not suites:
            continue
        kind = "security" if all(s.endswith("-security") for s in suites) else "main"
        found.setdefault(kind, uris[0].rstrip("/"))
    return found


def _one_line_stanzas(text: str) -> list[dict[str, str]]:
    """One-line ``deb [opts] URI suite comp...`` sources as deb822-like stanzas."""
    out = []
    for line in text.splitlines():
        words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            out.append({"Types": "deb", "URIs": words[1], "Suites": words[2]})
    return out


def system_archive_uris(paths: Sequence[Path] = SYSTEM_SOURCES) -> dict[str, str]:
    """The archive URIs of this machine's apt sources (``*.sources`` deb822, ``*.list``)."""
    stanzas: list[dict[str, str]] = []
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(p.glob("*.sources")) + sorted(p.glob("*.list"))
        elif p.is_file():
            files.append(p)
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        stanzas += parse_deb822(text) if f.suffix == ".sources" else _one_line_stanzas(text)
    uris = archive_uris_from_stanzas(stanzas)
    if "main" not in uris:
        raise SetupError(
            f"no Debian archive found in this machine's apt sources ({', '.join(str(p) for p in paths)}): "
            "add a deb822 stanza with `URIs:` to /etc/apt/sources.list.d/debian.sources"
        )
    return uris


def redact(text: str, uris: Iterable[str]) -> str:
    """``text`` with each archive's scheme and host replaced by ``<archive>`` (messages never name it)."""
    for uri in uris:
        m = re.match(r"^([a-z+]+://[^/]+)", uri)
        if m:
            text = text.replace(m.group(1), "<archive>")
    return text


# --------------------------------------------------------------------------
# pfharness's own apt configuration, one per distribution
# --------------------------------------------------------------------------


class Apt:
    """apt-get / apt-cache with pfharness's own sources, lists and cache under ``<cache>/apt/<dist>``."""

    def __init__(self, cache: Path, dist: str, uris: dict[str, str]) -> None:
        if dist not in DISTS:
            raise SetupError(f"unknown Debian distribution {dist!r}: pfharness knows {', '.join(DISTS)}")
        self.dist = dist
        self.uris = uris
        self.dir = cache / "apt" / dist
        self.sources = self.dir / "etc" / "sources.list.d" / "pfharness.sources"

    def sources_text(self) -> str:
        stanzas = []
        for suite, kind in DISTS[self.dist]:
            uri = self.uris.get(kind)
            if uri is None:
                raise SetupError(f"this machine's apt sources have no {kind} archive, needed for {suite}")
            stanzas.append(f"Types: deb\nURIs: {uri}\nSuites: {suite}\nComponents: main\nSigned-By: {KEYRING}\n")
        return "\n".join(stanzas)

    def prepare(self) -> None:
        for sub in ("etc/sources.list.d", "etc/preferences.d", "state/lists/partial", "cache/archives/partial"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        text = self.sources_text()
        if not self.sources.is_file() or self.sources.read_text() != text:
            self.sources.write_text(text)
        (self.dir / "state" / "status").touch()

    def options(self) -> list[str]:
        d = self.dir
        opts = {
            "Dir::Etc::SourceList": d / "etc" / "sources.list",  # absent: only SourceParts count
            "Dir::Etc::SourceParts": d / "etc" / "sources.list.d",
            "Dir::Etc::Preferences": d / "etc" / "preferences",
            "Dir::Etc::PreferencesParts": d / "etc" / "preferences.d",
            "Dir::State": d / "state",
            "Dir::State::status": d / "state" / "status",
            "Dir::Cache": d / "cache",
            "APT::Architecture": "amd64",
            "Acquire::Languages": "none",
        }
        out: list[str] = []
        for k, v in opts.items():
            out += ["-o", f"{k}={v}"]
        return out

    def lists_age(self) -> float | None:
        """Seconds since the last successful update, or None when never."""
        stamp = self.dir / "state" / "pfharness-updated"
        return time.time() - stamp.stat().st_mtime if stamp.is_file() else None

    def update(self, max_age: float = 6 * 3600) -> None:
        """``apt-get update`` when the lists are missing or older than ``max_age`` seconds.

        When the update fails but older lists exist, they are used (offline); otherwise the
        error names the suites and apt's own message (with the archive's host redacted).
        """
        self.prepare()
        age = self.lists_age()
        if age is not None and age < max_age:
            return
        apt_get = proc.require_program("apt-get", "apt")
        r = proc.run([apt_get, *self.options(), "update"], merge_stderr=True, timeout=600)
        problems = [ln for ln in r.stdout.splitlines() if ln.startswith(("E:", "W:", "Err:"))]
        failed = r.returncode != 0 or any(ln.startswith(("E:", "Err:")) for ln in problems)
        if failed:
            if age is not None:
                return  # offline: keep using the lists we have
            suites = " ".join(s for s, _ in DISTS[self.dist])
            detail = " ".join(("; ".join(problems[:3]) or r.stdout.strip()[-300:]).split())
            raise SetupError(
                self._redact(
                    f"cannot read the Debian suites {suites} with apt (network, or no such suite "
                    f"in the archive?): {detail}"
                )
            )
        (self.dir / "state" / "pfharness-updated").touch()

    def _redact(self, text: str) -> str:
        return redact(text, self.uris.values())

    def releases(self) -> list[str]:
        """The releases this distribution offers with image and headers, newest first.

        Remembered next to the lists until the next update (apt-cache takes ~1.5 s on sid's lists).
        """
        memo = self.dir / "state" / "pfharness-releases.json"
        stamp = self.dir / "state" / "pfharness-updated"
        key = stamp.stat().st_mtime_ns if stamp.is_file() else None
        try:
            saved = json.loads(memo.read_text())
            if key is not None and saved.get("lists") == key:
                return list(saved["releases"])
        except (OSError, ValueError, KeyError):
            pass
        names = self.pkgnames("linux-")
        found = releases_in(names, names)
        if key is not None:
            memo.write_text(json.dumps({"lists": key, "releases": found}))
        return found

    def pkgnames(self, prefix: str) -> list[str]:
        apt_cache = proc.require_program("apt-cache", "apt")
        r = proc.run([apt_cache, *self.options(), "pkgnames", prefix])
        return sorted(set(r.stdout.split()))

    def show(self, package: str, version: str | None = None) -> dict[str, str] | None:
        """The package record of ``package`` (the candidate, or exactly ``version``), or None."""
        apt_cache = proc.require_program("apt-cache", "apt")
        arg = f"{package}={version}" if version else package
        r = proc.run([apt_cache, *self.options(), "show", "--no-all-versions", arg])
        if r.returncode != 0:
            return None
        stanzas = parse_deb822(r.stdout)
        return stanzas[0] if stanzas else None

    def download(self, pins: Sequence[tuple[str, str]], dest: Path) -> list[Path]:
        """``apt-get download name=version ...`` into ``dest``; the .deb files written."""
        dest.mkdir(parents=True, exist_ok=True)
        # apt downloads as the _apt user when it can write there (no "unsandboxed" warning)
        with contextlib.suppress(LookupError, OSError):
            shutil.chown(dest, user="_apt")
        apt_get = proc.require_program("apt-get", "apt")
        r = proc.run(
            [apt_get, *self.options(), "download", *[f"{n}={v}" for n, v in pins]],
            cwd=dest,
            merge_stderr=True,
            timeout=3600,
        )
        if r.returncode != 0:
            errors = [ln for ln in r.stdout.splitlines() if ln.startswith(("E:", "Err:"))]
            raise SetupError(
                self._redact(
                    f"apt-get download of {', '.join(n for n, _ in pins)} failed: "
                    + " ".join(("; ".join(errors[:3]) or r.stdout.strip()[-300:]).split())
                )
            )
        debs = []
        for name, version in pins:
            file_version = version.replace(":", "%3a")
            hits = list(dest.glob(f"{name}_{file_version}_*.deb"))
            if not hits:
                raise SetupError(f"apt-get download reported success but wrote no {name}_{version} .deb in {dest}")
            debs.append(hits[0])
        return debs


# --------------------------------------------------------------------------
# Specs, releases and packages
# --------------------------------------------------------------------------


def version_key(text: str) -> tuple:
    """Sort releases and versions by their numbers: 6.12.117 > 6.12.48 > 6.1.0-56."""
    return tuple(int(n) for n in re.findall(r"\d+", text))


@dataclass(frozen=True)
class Spec:
    """What ``fetch`` was asked for: a series (and flavour), or one exact release."""

    text: str
    series: str | None = None  # "6.1" when a series was asked for
    flavour: str = "amd64"  # "amd64" or "rt-amd64"
    release: str | None = None  # the exact release when one was asked for

    def dists(self) -> list[str]:
        """The distributions to look in, most likely first."""
        if self.series is not None:
            first = SERIES.get(self.series)
            return [first] if first else list(DISTS)
        guess = guess_dist(self.release or "")
        return [guess] + [d for d in DISTS if d != guess]

    def matches(self, release: str) -> bool:
        if self.release is not None:
            return release == self.release
        if self.series is None or not release.startswith(self.series + "."):
            return False
        rest = release[len(self.series) + 1 :]
        # the flavour is what follows the version and ABI: 6.1.0-56-amd64, 6.12.48+deb12-rt-amd64
        return re.fullmatch(r"[\d.]+(?:-\d+)?(?:\+deb\d+)?-" + re.escape(self.flavour), rest) is not None


def parse_spec(spec: str) -> Spec:
    """``5.10``, ``6.1``, ``6.1-rt``, ``6.12``, ``7.2`` or an exact release like ``6.12.48+deb12-amd64``."""
    text = spec.strip()
    m = _SPEC.match(text)
    if m:
        return Spec(text, series=m["series"], flavour=FLAVOURS[m["flavour"] or ""])
    if _RELEASE.match(text):
        return Spec(text, release=text)
    raise KernelNotFound(
        f"{spec!r} is not a kernel to fetch: give a series ({', '.join(SERIES)}; add -rt for PREEMPT_RT, "
        "e.g. 6.1-rt) or an exact release such as 6.1.0-56-amd64 or 6.12.48+deb12-amd64"
    )


def guess_dist(release: str) -> str:
    """The distribution whose kernels are named like ``release``."""
    m = re.search(r"\+deb(\d+)", release)
    if m:
        return {"11": "bullseye", "12": "bookworm", "13": "trixie"}.get(m.group(1), "sid")
    if release.startswith("5.10.0-"):
        return "bullseye"
    if release.startswith("6.1.0-"):
        return "bookworm"
    return "sid"


def releases_in(image_names: Iterable[str], header_names: Iterable[str]) -> list[str]:
    """Releases with both a ``linux-image-<release>`` and ``linux-headers-<release>`` package, newest first."""
    headers = {n[len("linux-headers-") :] for n in header_names if n.startswith("linux-headers-")}
    out = []
    for name in image_names:
        if not name.startswith("linux-image-"):
            continue
        rel = name[len("linux-image-") :]
        if _RELEASE.match(rel) and not rel.endswith(("-unsigned", "-dbg")) and rel in headers:
            out.append(rel)
    return sorted(set(out), key=version_key, reverse=True)


def parse_depends(value: str) -> list[tuple[str, str | None]]:
    """``Depends:`` as [(name, exact version or None)]; alternatives (``a | b``) are skipped."""
    out: list[tuple[str, str | None]] = []
    for raw in value.replace("\n", " ").split(","):
        item = raw.strip()
        if not item or "|" in item:
            continue
        m = re.match(r"^([a-z0-9][a-z0-9+.-]*)(?::\w+)?\s*(?:\(\s*([<>=]+)\s*([^)\s]+)\s*\))?$", item)
        if not m:
            continue
        out.append((m.group(1), m.group(3) if m.group(2) == "=" else None))
    return out


def kernel_parts(depends: str) -> list[tuple[str, str | None]]:
    """The dependencies that are pieces of the kernel itself (modules, common headers, kbuild)."""
    return [(n, v) for n, v in parse_depends(depends) if _KERNEL_PART.match(n)]


def compiler_of(depends: str) -> str:
    """The compiler package a headers package asks for (gcc-12 via linux-compiler-gcc-12-x86, gcc-16-for-host)."""
    for name, _ in parse_depends(depends):
        m = re.match(r"^linux-compiler-(gcc-\d+)-", name)
        if m:
            return m.group(1)
        if re.match(r"^gcc-\d+(?:-for-host)?$", name):
            return name
    return ""


def not_found_message(spec: Spec, offered: dict[str, list[str]]) -> str:
    """One line: what was asked for, and the kernels each suite offers."""
    parts = []
    for dist, releases in offered.items():
        suites = "+".join(s for s, _ in DISTS[dist])
        shown = ", ".join(releases[:12]) + (f", ... ({len(releases)} in all)" if len(releases) > 12 else "")
        parts.append(f"{suites}: {shown or 'none'}")
    want = f"kernel release {spec.release}" if spec.release else f"a {spec.series} kernel ({spec.flavour})"
    return f"no {want} with image and headers in Debian; linux-image-*-amd64 offered by " + "; ".join(parts)


# --------------------------------------------------------------------------
# Unpacked tree fix-ups
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# fetch / list_fetched
# --------------------------------------------------------------------------


def _kernels_dir(cache: Path) -> Path:
    return cache / "kernels"


def _from_marker(root: Path, seconds: float, cached: bool) -> FetchedKernel | None:
    marker = root / _MARKER
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if info.get("layout") != _LAYOUT_VERSION:
        return None
    release = info["release"]
    mods = root / "lib" / "modules" / release
    image = root / "boot" / f"vmlinuz-{release}"
    if not (image.is_file() and (mods / "modules.dep").is_file() and (mods / "build" / "Makefile").is_file()):
        return None
    return FetchedKernel(
        release, root, image, mods, mods / "build", seconds, cached, info.get("dist", ""), info.get("compiler", "")
    )


def list_fetched(cache: Path) -> list[FetchedKernel]:
    """The kernels already unpacked in ``cache`` (complete ones only), newest first."""
    base = _kernels_dir(cache)
    found = []
    if base.is_dir():
        for root in base.iterdir():
            if root.name.startswith("."):
                continue
            k = _from_marker(root, 0.0, True)
            if k is not None:
                found.append(k)
    return sorted(found, key=lambda k: version_key(k.release), reverse=True)


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


def _unpack(debs: Sequence[Path], root: Path) -> None:
    dpkg_deb = proc.require_program("dpkg-deb", "dpkg")
    for deb in debs:
        r = proc.run([dpkg_deb, "-x", deb, root], merge_stderr=True)
        if r.returncode != 0:
            raise SetupError(f"dpkg-deb -x {deb.name} failed: {r.stdout.strip()[-300:]}")


def _depmod(root: Path, release: str) -> None:
    depmod = shutil.which("depmod") or proc.require_program("depmod", "kmod")
    argv: list[str | os.PathLike[str]] = [depmod, "-b", root]
    system_map = root / "boot" / f"System.map-{release}"
    if system_map.is_file():
        argv += ["-F", system_map]
    r = proc.run([*argv, release], merge_stderr=True)
    if r.returncode != 0 or not (root / "lib" / "modules" / release / "modules.dep").is_file():
        raise SetupError(f"depmod -b {root} {release} failed: {r.stdout.strip()[-300:]}")


def fetch(spec: str, cache: Path) -> FetchedKernel:
    """Fetch (or find in ``cache``) the kernel ``spec`` names; see the module's docstring."""
    start = time.monotonic()
    want = parse_spec(spec)
    kernels = _kernels_dir(cache)
    if want.release is not None:  # an exact release: no apt at all when it is cached
        hit = _from_marker(kernels / want.release, 0.0, True)
        if hit is not None:
            return _with_seconds(hit, time.monotonic() - start)
    uris = system_archive_uris()
    try:
        apt, release = _locate(want, cache, uris)
        root = kernels / release
        hit = _from_marker(root, 0.0, True)
        if hit is not None:
            return _with_seconds(hit, time.monotonic() - start)
        pins, compiler = _resolve(apt, release)
        debs = apt.download(pins, cache / "debs" / apt.dist)
    except subprocess.TimeoutExpired as e:
        raise SetupError(f"apt timed out fetching {spec} ({e.timeout:.0f} s): is the network up?") from None
    tmp = kernels / f".{release}.{os.getpid()}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        _unpack(debs, tmp)
        arrange(tmp, release)
        if not (tmp / "boot" / f"vmlinuz-{release}").is_file():
            raise SetupError(
                f"the packages of {release} ({', '.join(n for n, _ in pins)}) hold no boot/vmlinuz-{release}"
            )
        _depmod(tmp, release)
        info = {
            "layout": _LAYOUT_VERSION,
            "release": release,
            "dist": apt.dist,
            "compiler": compiler,
            "packages": dict(pins),
            "fetched_at": time.time(),
        }
        (tmp / _MARKER).write_text(json.dumps(info, indent=1) + "\n")
        if _from_marker(root, 0.0, True) is not None:  # another pfharness fetched it meanwhile
            shutil.rmtree(tmp)
        else:
            if root.exists():  # an incomplete earlier attempt
                shutil.rmtree(root)
            tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for deb in debs:  # unpacked: ~100-200 MB per kernel that apt can fetch again
        deb.unlink(missing_ok=True)
    # symlinks were made relative inside tmp: they stay valid after the rename
    fetched = _from_marker(root, time.monotonic() - start, False)
    if fetched is None:
        raise SetupError(f"{root} is incomplete after unpacking {release}")
    return fetched


def _with_seconds(k: FetchedKernel, seconds: float) -> FetchedKernel:
    return replace(k, seconds=seconds)


# --------------------------------------------------------------------------
# How to build modules for a fetched kernel
# --------------------------------------------------------------------------


def host_gcc_major() -> int | None:
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    r = proc.run([gcc, "-dumpversion"])
    m = re.match(r"(\d+)", r.stdout.strip())
    return int(m.group(1)) if m else None


def _compiler_major(compiler: str) -> int | None:
    m = re.match(r"gcc-(\d+)", compiler)
    return int(m.group(1)) if m else None


def host_toolchain(kernel: FetchedKernel) -> list[str] | None:
    """Extra make variables to build for ``kernel`` with this machine's toolchain; None when it cannot.

    Its kbuild helper (scripts/basic/fixdep) must run here (glibc), and the compiler its headers
    name (``CC = gcc-10`` in 5.10's .kernelvariables) must be installed; when it is not, a newer
    host gcc is used instead (``CC=gcc-12``: module code does not depend on the compiler the
    kernel was built with, only its vermagic must match, which has no compiler in it). An older
    host gcc is refused (the kernel's flags may be unknown to it): that needs a build root.
    """
    fixdep = kernel.headers / "scripts" / "basic" / "fixdep"
    if fixdep.is_file():
        r = proc.run([fixdep], merge_stderr=True)
        if "GLIBC_" in r.stdout or "not found" in r.stdout or r.returncode in (126, 127):
            return None
    major = _compiler_major(kernel.compiler)
    if major is None or shutil.which(f"gcc-{major}") or shutil.which(f"x86_64-linux-gnu-gcc-{major}"):
        return []
    host = host_gcc_major()
    if host is None or host < major:
        return None
    return [f"CC=gcc-{host}" if shutil.which(f"gcc-{host}") else "CC=gcc"]


def host_can_build(kernel: FetchedKernel) -> bool:
    """Can this machine's own toolchain build modules for ``kernel``? See :func:`host_toolchain`."""
    return host_toolchain(kernel) is not None


def buildroot_dir(cache: Path, dist: str) -> Path:
    return cache / "buildroots" / dist


def ensure_buildroot(cache: Path, dist: str, compiler: str) -> tuple[Path, float]:
    """A root of ``dist`` with make and ``compiler``, made once with mmdebstrap; (its path, seconds spent)."""
    start = time.monotonic()
    root = buildroot_dir(cache, dist)
    stamp = root / ".pfharness-buildroot"
    packages = ["make", "libc6-dev", "libelf-dev", "pahole", "bc", "kmod"]
    if compiler:
        packages.append(compiler)
    want = ",".join(sorted(packages))
    if stamp.is_file() and stamp.read_text().strip() == want:
        return root, time.monotonic() - start
    mmdebstrap = proc.require_program("mmdebstrap", "mmdebstrap")
    uris = system_archive_uris()
    apt = Apt(cache, dist, uris)
    apt.prepare()
    tmp = root.with_name(f".{dist}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    suite = DISTS[dist][0][0]
    argv: list[str | os.PathLike[str]] = [
        mmdebstrap,
        "--variant=apt",
        "--mode=root",
        f"--include={want}",
        '--aptopt=Acquire::Check-Valid-Until "false"',  # signatures are still checked
        suite,
        tmp,
        apt.sources,
    ]
    r = proc.run(argv, merge_stderr=True, timeout=3600)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = "; ".join(ln for ln in r.stdout.splitlines() if ln.startswith(("E:", "W:")))[-500:]
        raise SetupError(redact(f"mmdebstrap of a {suite} build root failed: {tail or r.stdout[-300:]}", uris.values()))
    (tmp / ".pfharness-buildroot").write_text(want + "\n")
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)
    return root, time.monotonic() - start


def build_prefix(kernel: FetchedKernel, cache: Path, module_dir: Path) -> list[str]:
    """The argv prefix to put before ``make -C <headers> M=<module_dir> modules`` for ``kernel``.

    ``[]`` when this machine's toolchain can build for it. Otherwise the build runs in a root
    of the kernel's own distribution (made once, see :func:`ensure_buildroot`) entered with
    ``bwrap``, with the kernel's cache root and the module directory bound at the same
    paths, so the same ``make`` command line works inside.
    """
    if host_can_build(kernel):
        return []
    bwrap = proc.require_program("bwrap", "bubblewrap")
    root, _ = ensure_buildroot(cache, kernel.dist or guess_dist(kernel.release), kernel.compiler)
    kroot = str(kernel.root.resolve())
    mdir = str(module_dir.resolve())
    return [
        bwrap,
        "--bind",
        str(root),
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
        "--ro-bind",
        kroot,
        kroot,
        "--bind",
        mdir,
        mdir,
        "--chdir",
        mdir,
        "--unshare-pid",
        "--die-with-parent",
        "--setenv",
        "PATH",
        "/usr/sbin:/usr/bin:/sbin:/bin",
        "--",
    ]


def toolchain(kernel: FetchedKernel, cache: Path, module_dir: Path) -> tuple[list[str], list[str]]:
    """(argv prefix, make variables) to run ``make`` for ``kernel`` in ``module_dir``.

    On the host: no prefix, and ``CC=gcc-N`` when the kernel's compiler is not installed
    (:func:`host_toolchain`). Otherwise the bwrap prefix of its build root (:func:`build_prefix`).
    """
    if host_can_build(kernel):
        return [], host_toolchain(kernel) or []
    return build_prefix(kernel, cache, module_dir), []


def build_argv(
    kernel: FetchedKernel, cache: Path, module_dir: Path, *, werror: bool = True, jobs: int | None = None
) -> list[str]:
    """The whole command that builds the modules in ``module_dir`` for ``kernel``."""
    prefix, variables = toolchain(kernel, cache, module_dir)
    make = "make" if prefix else proc.require_program("make", "build-essential")
    argv = [
        *prefix,
        make,
        "-C",
        str(kernel.headers.resolve()),
        f"M={module_dir.resolve()}",
        f"-j{jobs or os.cpu_count() or 1}",
        "modules",
        *variables,
    ]
    if werror:
        argv.append("KCFLAGS=-Werror")
    return argv


def fetched_at(root: Path) -> FetchedKernel | None:
    """The fetched kernel whose root is ``root`` (None when ``root`` holds none, or an incomplete one)."""
    return _from_marker(root, 0.0, True)
