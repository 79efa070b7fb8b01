"""Fault sites (issue 26): which code made a run's faults, and what they cost.

Each record's IP (output_format.RECORD, version 2) is placed in the region that holds it (a region the same process
faulted in, when regions of several processes overlap), turned into an offset in that region's file (the region
table gives the file offset at the region's start and the file's path: the guest shares the host's root, so the
file is on the host too) and named by the function that holds that offset (elf_symbols). A file without symbols
names it file+0xoffset, as perf does; a fault without an IP (get_user_pages) is "[no ip]". Pure but for reading
the ELF files: computed from SavedRecords' array and regions a column at a time (each distinct IP once).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..values import SITES_TOP
from . import elf_symbols
from . import output_format as fmt
from .records_file import Region

TOP = SITES_TOP  # rows of each table
SLOWEST = 10  # the slowest faults listed
#: The histograms' kinds (copy-on-write cannot be told from a record: a write to a present page is one)
KINDS = ("minor", "major", "read", "write", "exec")
NO_IP = "[no ip]"  # get_user_pages() or a kernel thread: no user IP
UNKNOWN = "[unknown]"  # an IP in no region of the table


@dataclass(frozen=True)
class SiteRow:
    """One site (a function in a library) or one library: its faults and what they cost."""

    library: str
    function: str  # "" in the table by library
    faults: int
    major: int
    read: int
    write: int
    exec: int
    total_ns: int  # service time of its faults, summed
    median_ns: int


@dataclass(frozen=True)
class Bucket:
    """Faults whose service time is in [low_ns, high_ns)."""

    low_ns: int
    high_ns: int
    count: int


@dataclass(frozen=True)
class SlowFault:
    """One of the slowest faults, with its site."""

    service_ns: int
    t_ns: int
    address: int
    access: str
    major: bool
    tgid: int
    ip: int
    library: str
    function: str


@dataclass(frozen=True)
class Sites:
    """The sites view of a run's records."""

    faults: int
    total_ns: int  # time spent in faults (their service times, summed)
    functions: list[SiteRow]  # the top TOP by faults
    libraries: list[SiteRow]
    histograms: dict[str, list[Bucket]]  # KINDS -> log2 buckets, the empty ones at either end left out
    slowest: list[SlowFault]

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _regions_of(tgid: np.ndarray, ip: np.ndarray, owned: dict[int, set[int]], regions: list[Region]) -> np.ndarray:
    """The index of the region that holds each IP (-1: none): among the regions its process faulted in if any
    holds it, the narrowest. A region at a time over all the IPs."""
    best = np.full(len(ip), -1, dtype=np.intp)
    best_span = np.full(len(ip), np.inf)
    best_owned = np.zeros(len(ip), dtype=bool)
    for r in regions:
        inside = (ip >= r.start) & (ip < r.end)
        if not inside.any():
            continue
        mine = np.isin(tgid, [t for t, indexes in owned.items() if r.index in indexes])
        span = r.end - r.start
        better = inside & ((mine & ~best_owned) | ((mine == best_owned) & (span < best_span)))
        best[better], best_span[better], best_owned[better] = r.index, span, mine[better]
    return best


def _names(ip: np.ndarray, region: Region | None) -> list[tuple[str, str]]:
    """(library, function) of each IP in `region`."""
    if region is None:
        return [(UNKNOWN, UNKNOWN)] * len(ip)
    if not region.path or region.kind not in ("code", "data", "file"):
        return [(region.name, region.name)] * len(ip)  # anonymous code (a JIT's), the vdso, ...
    offsets = ip - np.uint64(region.start) + np.uint64(region.offset)
    functions = elf_symbols.load(region.path).functions(offsets)
    return [(region.name, f or f"{region.name}+{o:#x}") for f, o in zip(functions, offsets.tolist(), strict=True)]


def _distinct(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (tgid, ip, no_ip) of the records, and each record's index among them (np.unique's
    return_inverse, sorted numerically: np.unique of a structured array sorts far slower)."""
    no_ip = (table["flags"] & fmt.RECORD_FLAG_NO_IP) != 0
    owner = table["tgid"].astype(np.uint64) << 1 | no_ip
    order = np.lexsort((table["ip"], owner))
    ip, owner = table["ip"][order], owner[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (ip[1:] != ip[:-1]) | (owner[1:] != owner[:-1])
    inverse = np.empty(len(order), dtype=np.intp)
    inverse[order] = np.cumsum(first) - 1
    unique = np.zeros(int(first.sum()), dtype=[("tgid", "<u4"), ("ip", "<u8"), ("no_ip", "u1")])
    unique["tgid"], unique["ip"], unique["no_ip"] = owner[first] >> 1, ip[first], owner[first] & 1
    return unique, inverse


def site_labels(table: np.ndarray, regions: list[Region]) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Each record's site (an index into the returned (library, function) labels)."""
    unique, inverse = _distinct(table)
    owned: dict[int, set[int]] = {}
    for pair in np.unique(table["tgid"].astype(np.uint64) << 16 | table["region"]).tolist():
        owned.setdefault(pair >> 16, set()).add(pair & 0xFFFF)
    where = _regions_of(unique["tgid"], unique["ip"], owned, regions)
    where[unique["no_ip"] != 0] = -2
    names: list[tuple[str, str]] = [(NO_IP, NO_IP)] * len(unique)
    for index in np.unique(where).tolist():
        if index == -2:
            continue
        chosen = np.flatnonzero(where == index)
        region = regions[index] if index >= 0 else None
        for i, name in zip(chosen.tolist(), _names(unique["ip"][chosen], region), strict=True):
            names[i] = name
    labels: dict[tuple[str, str], int] = {}
    of_unique = np.array([labels.setdefault(name, len(labels)) for name in names], dtype=np.intp)
    return of_unique[inverse], list(labels)


def _rows(group: np.ndarray, names: list[tuple[str, str]], table: np.ndarray, n: int) -> list[SiteRow]:
    """The top `n` groups by faults (ties by name), with their counts and service times."""
    k, service = len(names), table["service_ns"]
    count = np.bincount(group, minlength=k)
    flags, access = table["flags"], table["access_index"]

    def tally(mask: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=mask, minlength=k).astype(np.int64)

    order = np.lexsort((service, group))  # by group, then by service time
    ordered, lo = service[order], np.searchsorted(group[order], np.arange(k))
    median = (ordered[lo + (count - 1) // 2].astype(np.int64) + ordered[lo + count // 2]) // 2 if len(table) else count
    totals = np.bincount(group, weights=service, minlength=k)
    major, read, write, execute = tally((flags & fmt.RECORD_FLAG_MAJOR) != 0), *(tally(access == i) for i in range(3))
    top = sorted(range(k), key=lambda i: (-count[i], names[i]))[:n]
    tallies = (count, major, read, write, execute, totals, median)
    return [SiteRow(*names[i], *(int(t[i]) for t in tallies)) for i in top]


def histogram(service: np.ndarray) -> list[Bucket]:
    """Log2 buckets of service times: [0, 2), [2, 4), [4, 8), ...; from the first non-empty to the last."""
    if not len(service):
        return []
    bucket = np.floor(np.log2(np.maximum(service, 1))).astype(np.intp)
    counts = np.bincount(bucket)
    filled = np.flatnonzero(counts)
    return [
        Bucket(0 if b == 0 else 1 << int(b), 1 << (int(b) + 1), int(counts[b]))
        for b in range(filled[0], filled[-1] + 1)
    ]


def _histograms(table: np.ndarray) -> dict[str, list[Bucket]]:
    major = (table["flags"] & fmt.RECORD_FLAG_MAJOR) != 0
    access = table["access_index"]
    masks = (~major, major, access == 0, access == 1, access == 2)
    return {kind: histogram(table["service_ns"][mask]) for kind, mask in zip(KINDS, masks, strict=True)}


def _slowest(table: np.ndarray, site: np.ndarray, labels: list[tuple[str, str]], n: int) -> list[SlowFault]:
    order = np.argsort(table["service_ns"], kind="stable")[::-1][:n]
    slow = []
    for i in order.tolist():
        r = table[i]
        major = bool(r["flags"] & fmt.RECORD_FLAG_MAJOR)
        access = fmt.ACCESS_KINDS[int(r["access_index"])]
        where = (int(r["tgid"]), int(r["ip"]), *labels[site[i]])
        slow.append(SlowFault(int(r["service_ns"]), int(r["t_ns"]), int(r["address"]), access, major, *where))
    return slow


def sites(table: np.ndarray, regions: list[Region], n: int = TOP) -> Sites:
    """The sites view of `table` (records_table.DTYPE, version 2) and its region table."""
    site, labels = site_labels(table, regions)
    libraries = sorted({lib for lib, _ in labels})
    library_of = np.array([libraries.index(lib) for lib, _ in labels], dtype=np.intp)
    by_library = _rows(library_of[site] if len(site) else site, [(lib, "") for lib in libraries], table, n)
    return Sites(
        faults=len(table),
        total_ns=int(table["service_ns"].sum()),
        functions=_rows(site, labels, table, n),
        libraries=by_library,
        histograms=_histograms(table),
        slowest=_slowest(table, site, labels, SLOWEST),
    )
