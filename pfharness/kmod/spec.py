"""What a kernel request names: a series ("6.1", "6.1-rt", "7.2") or one exact release, and the
Debian distributions that ship each series. Pure parsing: the kernel listing
(:mod:`pfharness.kmod.kernels`) and the fetcher (:mod:`pfharness.kmod.fetch`) both read it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import KernelNotFound

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
RELEASE = re.compile(r"^\d+\.\d+[\w.+~-]*-(?:rt-)?amd64$")


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
    if RELEASE.match(text):
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
