"""Debian's archive read with apt: the machine's apt sources (for the archive's URIs only), and
pfharness's own apt configuration per distribution (``<cache>/apt/<dist>/``: its own sources,
lists and package cache; the system's sources and dpkg status are never read nor written),
verified as apt verifies them (signed Release files, keyring :data:`KEYRING`); the package
names and dependencies of a kernel's packages."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from .. import proc
from ..errors import SetupError
from .spec import DISTS, RELEASE, version_key

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
SYSTEM_SOURCES = (Path("/etc/apt/sources.list.d"), Path("/etc/apt/sources.list"))

#: Dependencies of the image and headers packages that are part of the kernel itself.
_KERNEL_PART = re.compile(r"^linux-(?:image|binary|modules|base|headers|kbuild)-\d")


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


def releases_in(image_names: Iterable[str], header_names: Iterable[str]) -> list[str]:
    """Releases with both a ``linux-image-<release>`` and ``linux-headers-<release>`` package, newest first."""
    headers = {n[len("linux-headers-") :] for n in header_names if n.startswith("linux-headers-")}
    out = []
    for name in image_names:
        if not name.startswith("linux-image-"):
            continue
        rel = name[len("linux-image-") :]
        if RELEASE.match(rel) and not rel.endswith(("-unsigned", "-dbg")) and rel in headers:
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
