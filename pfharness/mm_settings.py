"""The memory-management settings that change which page faults a program takes, read from a
machine, chosen for a guest, and carried into the guest on its kernel command line (pfh.mm=).

The guest's Debian kernel runs transparent huge pages ``always`` while most hosts run ``madvise``:
the same 100 MiB buffer then faults 50 times in the guest and 25,600 times on the host. So by
default the guest takes the host's settings (docs: "Why the guest faults like this machine").

A setting is named by its path under one of two roots (``thp/`` is /sys/kernel/mm/transparent_hugepage,
``vm/`` is /proc/sys/vm), e.g. ``thp/enabled``; its value is the selected word (``madvise``), not
the sysfs line ``always [madvise] never``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .results.step_protocol import MM_PARAM

#: Where each prefix lives on a machine (vm/init.sh maps them the same way).
ROOTS = {"thp": "sys/kernel/mm/transparent_hugepage", "vm": "proc/sys/vm"}

#: The settings copied, in the order they are written. Every kernel of the matrix (5.10 on) has
#: them all; vm/init.sh stops the boot if one cannot be written.
KEYS: tuple[str, ...] = (
    "thp/enabled",  # anonymous memory: always, madvise (only MADV_HUGEPAGE areas) or never
    "thp/defrag",  # whether a huge-page fault may stall to compact memory
    "thp/shmem_enabled",  # shmem/tmpfs and shared anonymous mappings (/dev/zero)
    "thp/use_zero_page",  # a read fault of untouched anonymous memory maps the huge zero page
    "thp/khugepaged/defrag",  # khugepaged collapses small pages into huge ones in the background
    "thp/khugepaged/max_ptes_none",
    "vm/overcommit_memory",  # whether a large mmap succeeds at all
    "vm/overcommit_ratio",
    "vm/max_map_count",  # how many mappings a process may have
)

#: Per-size (multi-size) THP settings, Linux 6.8 on: copied when the host sets one away from the
#: kernel's default; a guest kernel without the size skips it (vm/init.sh says so).
_MTHP = re.compile(r"^thp/hugepages-(\d+)kB/(enabled|shmem_enabled)$")
_PMD_KB = 2048  # x86-64's PMD size: its per-size setting defaults to "inherit", the others to "never"

THP_MODES = ("always", "madvise", "never")
_VALUE = re.compile(r"^[A-Za-z0-9_+-]{1,32}$")
_SELECTED = re.compile(r"\[([^\]]+)\]")


def selected(text: str) -> str:
    """The value of a sysfs choice file (``always [madvise] never`` -> ``madvise``) or a plain value."""
    m = _SELECTED.search(text)
    return (m.group(1) if m else text).strip()


@dataclass(frozen=True)
class MmSettings:
    """Settings for one machine: (key, value) pairs in writing order, and where they came from."""

    values: tuple[tuple[str, str], ...] = ()
    source: str = "the kernel's defaults"  # "this host", "this host, --thp never", ...

    def get(self, key: str) -> str | None:
        return next((v for k, v in self.values if k == key), None)

    def with_value(self, key: str, value: str, why: str) -> MmSettings:
        """These settings with `key` set to `value` (appended if absent); `why` joins the source."""
        pairs = [(k, value if k == key else v) for k, v in self.values]
        if self.get(key) is None:
            pairs.append((key, value))
        return MmSettings(tuple(pairs), f"{self.source}, {why}")

    def kernel_parameter(self) -> str | None:
        """``pfh.mm=KEY:VALUE,...`` for vm/init.sh; None when there is nothing to set."""
        if not self.values:
            return None
        for key, value in self.values:
            if key.split("/", 1)[0] not in ROOTS or not _VALUE.match(value) or ".." in key or "," in key:
                raise ValueError(f"memory setting {key}={value!r} cannot go on the kernel command line")
        return f"{MM_PARAM}=" + ",".join(f"{k}:{v}" for k, v in self.values)

    def fields(self) -> dict[str, str]:
        """The settings as a flat mapping (the boot note, run.json's "mm")."""
        return dict(self.values)

    def describe(self) -> str:
        """One line for the summary: THP modes and overcommit, and where they came from."""
        parts = []
        for key, label in (("thp/enabled", "THP"), ("thp/defrag", "defrag"), ("thp/shmem_enabled", "shmem")):
            if (value := self.get(key)) is not None:
                parts.append(f"{label} {value}")
        sizes = [f"{k.split('/')[1][len('hugepages-') :]} {v}" for k, v in self.values if _MTHP.match(k)]
        if sizes:
            parts.append("per-size THP " + ", ".join(sizes))
        if (value := self.get("vm/overcommit_memory")) is not None:
            parts.append(f"overcommit {value}")
        return f"{', '.join(parts)} ({self.source})" if parts else self.source


#: No settings written: the guest kernel keeps its own defaults.
GUEST_DEFAULTS = MmSettings((), "the guest kernel's defaults")


def _non_default_mthp(base: Path) -> list[tuple[str, str]]:
    """Per-size THP settings under `base` that differ from the kernel's default."""
    found = []
    for size_dir in sorted(base.glob("hugepages-*kB"), key=lambda p: int(re.sub(r"\D", "", p.name) or 0)):
        kb = int(re.sub(r"\D", "", size_dir.name) or 0)
        for name in ("enabled", "shmem_enabled"):
            try:
                value = selected((size_dir / name).read_text())
            except OSError:
                continue
            if value != ("inherit" if kb == _PMD_KB else "never"):
                found.append((f"thp/{size_dir.name}/{name}", value))
    return found


def read(root: Path = Path("/"), source: str = "this host's own") -> MmSettings:
    """The settings of the machine whose root is `root`; a setting it lacks is left out (a kernel
    without THP: the guest keeps its own default for it)."""
    pairs = []
    for key in KEYS:
        prefix, rest = key.split("/", 1)
        try:
            pairs.append((key, selected((root / ROOTS[prefix] / rest).read_text())))
        except OSError:
            continue
    pairs += _non_default_mthp(root / ROOTS["thp"])
    return MmSettings(tuple(pairs), source)


def for_guest(thp: str, root: Path = Path("/")) -> MmSettings:
    """The guest's settings for ``--thp THP``: ``host`` copies this machine's, a mode overrides THP's
    ``enabled`` (the rest still copied), ``guest`` keeps the guest kernel's own defaults."""
    if thp == "guest":
        return MmSettings((), "the guest kernel's own defaults, --thp guest")
    check_thp(thp)
    copied = read(root, "copied from this host")
    return copied if thp == "host" else copied.with_value("thp/enabled", thp, f"--thp {thp}")


def check_thp(thp: str, target: str = "vm") -> None:
    """``--thp`` is a mode the VM can take; on ``--target host`` only ``host`` (the machine's own)."""
    if thp not in (*THP_MODES, "host", "guest"):
        raise UsageError(f"--thp {thp!r} is not a mode: use --thp host (default), always, madvise, never or guest")
    if target == "host" and thp != "host":
        raise UsageError(
            f"--thp {thp} sets the VM's mode; --target host runs under this machine's own setting "
            "(/sys/kernel/mm/transparent_hugepage/enabled): leave out --thp, or use --target vm"
        )


def from_fields(fields: dict[str, str], source: str) -> MmSettings:
    """Settings back from a boot note's or run.json's flat mapping (``parse``: untrusted, so only
    well-formed keys and values are kept)."""
    pairs = tuple(
        (k, v)
        for k, v in fields.items()
        if k.split("/", 1)[0] in ROOTS and ".." not in k and len(k) < 80 and _VALUE.match(v)
    )
    return MmSettings(pairs, source)
