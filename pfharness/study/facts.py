"""The facts the study's findings rest on, computed from one run's saved records, regions and processes.

Every number the findings text states comes from here (through figures.json): the share of faults per
region class, the huge-page faults, the faults of each large region and when they came, the writes a
forked child makes before its exec on pages its parent had touched, the threads that faulted."""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..results.records_file import FaultRecord, ProcessEntry, Region
from ..results.run_dir import SavedRecords

PAGE = 4096
MIB = 1024 * 1024
#: The region classes of the first table, in its order.
CLASSES = ("program", "libraries", "heap_anon", "stack", "files", "other")
_LIBRARY = re.compile(r"^(lib.*\.so(\.[0-9.]+)?|ld-linux.*\.so\.\d+|.*\.cpython-.*\.so|\[vdso\]|\[vvar\])$")
_TOP_REGIONS = 12


@dataclass(frozen=True)
class RegionFacts:
    """One region of one process (not merged by name): its size and what faulted in it, and when."""

    name: str
    kind: str
    cls: str  # one of CLASSES
    tgid: int
    size_pages: int  # the region's extent in the table (end - start) / 4 KiB
    faults: int
    pages: int  # distinct pages faulted
    access: dict[str, int]
    major: int
    huge: int  # faults after which the address is mapped by a 2 MiB page
    small_pages: int  # distinct pages of its other faults
    first_s: float  # its first and last fault, seconds from the run's first fault
    last_s: float
    rising: float  # share of its faults on a page above every earlier one in it
    threads: int  # distinct threads that faulted in it


@dataclass(frozen=True)
class ForkFacts:
    """Faults of forked children before their exec (exec_seq 0 in a process whose parent is traced)."""

    children: int  # processes with a traced parent
    before_exec: int  # their faults before exec
    writes_before_exec: int
    on_parent_pages: int  # of those writes: on a page the parent had faulted before (copy-on-write)


@dataclass(frozen=True)
class Gap:
    """The longest time between two consecutive faults of a run, seconds from its first fault."""

    seconds: float
    start_s: float
    end_s: float


@dataclass(frozen=True)
class ThreadStacks:
    """The anonymous regions one worker thread faulted in, and no other but the process's first: its stack."""

    regions: int
    faults: int
    pages: int  # the largest of them, in pages
    first: int  # faults of the process's first thread in them (it creates the thread)


@dataclass(frozen=True)
class HugeFacts:
    """The faults after which a 2 MiB page mapped the address, and what faulted in those 2 MiB later."""

    faults: int
    first_thread: int  # of them, by the process's first thread
    first_s: float
    last_s: float
    later: int  # faults in a huge-mapped 2 MiB block after its huge fault


@dataclass(frozen=True)
class BufferUse:
    """One process's faults in the run's buffer (BufferFacts)."""

    tgid: int
    faults: int
    writes: int
    major: int
    huge: int


@dataclass(frozen=True)
class BufferFacts:
    """The run's largest mapping that took many faults or a huge-page fault (the buffer an experiment is
    about), and the faults of the run's first processes in it: in anonymous memory by address (a forked child
    keeps its parent's addresses), in a file by its name (each process maps it anew)."""

    name: str
    kind: str
    size_pages: int
    faults: int
    pages: int  # distinct (process, page) faulted in it
    refaults: int  # faults on a page of it the process had faulted, or in a 2 MiB page mapped by a huge fault
    huge: int
    major: int
    first_s: float  # its first and last fault, seconds from the run's first fault
    last_s: float
    span_s: float  # the run's span, first to last fault
    users: list[BufferUse]  # the run's first processes (by first fault), each with its faults in the buffer


@dataclass(frozen=True)
class Facts:
    """What one run's records prove, beyond the figures of results.figures."""

    processes: int
    threads: int
    mib_touched: float  # distinct (process, page) x 4 KiB, a huge-page fault counted as 2 MiB
    end_share: float  # share of faults in the last 10 % of the span
    major: int
    huge: int
    access: dict[str, int]
    by_class: dict[str, int]
    class_share: dict[str, float]
    class_access: dict[str, dict[str, int]]
    fork: ForkFacts
    end_by_class: dict[str, int]  # the faults of the last 10 % of the span, per class
    thread_faults: int  # faults of threads other than their process's first (tid != tgid)
    thread_by_class: dict[str, int]
    gap: Gap  # the longest stretch without a fault
    stacks: ThreadStacks
    read_then_write: int  # heap, anonymous and stack pages first faulted by a read, later by a write (zero page)
    huge_faults: HugeFacts
    end_lib_exec: int  # exec faults in libraries in the last 10 % of the span
    end_libs: int  # the libraries they were in
    major_by_name: dict[str, int]  # the three region names with the most major faults
    buffer: BufferFacts | None  # None: no mapping took many faults
    regions: list[RegionFacts] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def region_class(region: Region | None, programs: set[str]) -> str:
    """Which class of the first table a region is in (None: a fault the table had no region for)."""
    if region is None:
        return "other"
    if region.kind in ("code", "data") or (region.kind == "file" and region.name in programs):
        return "program"
    if region.kind in ("heap", "anon"):
        return "heap_anon"
    if region.kind == "stack":
        return "stack"
    if _LIBRARY.match(region.name):
        return "libraries"
    return "files" if region.kind == "file" else "other"


def compute(saved: SavedRecords) -> Facts:
    """The facts of one run from what its module saved."""
    records = sorted(saved.records, key=lambda r: r.t_ns)
    regions = saved.regions
    programs = {g.name for g in regions if g.kind in ("code", "data")}
    t0 = records[0].t_ns if records else 0
    span = (records[-1].t_ns - t0) if records else 0

    def region_of(r: FaultRecord) -> Region | None:
        return regions[r.region] if r.region < len(regions) else None

    pairs = [(region_class(region_of(r), programs), r) for r in records]
    by_class = Counter(c for c, _ in pairs)
    class_access: dict[str, Counter] = defaultdict(Counter)
    for c, r in pairs:
        class_access[c][r.access] += 1
    n = len(records) or 1
    return Facts(
        processes=len({r.tgid for r in records}),
        threads=len({r.tid or r.tgid for r in records}),
        mib_touched=_mib(records),
        major=sum(1 for r in records if r.major),
        huge=sum(1 for r in records if r.huge),
        access=dict(Counter(r.access for r in records)),
        by_class={c: by_class.get(c, 0) for c in CLASSES},
        class_share={c: by_class.get(c, 0) / n for c in CLASSES},
        class_access={c: dict(class_access[c]) for c in CLASSES if c in class_access},
        fork=fork_facts(records, saved.processes),
        **_end([(c, r) for c, r in pairs if span and r.t_ns >= t0 + span * 9 / 10], n),
        thread_faults=sum(1 for r in records if _worker(r) != -1),
        thread_by_class=dict(Counter(c for c, r in pairs if _worker(r) != -1)),
        gap=longest_gap(records, t0),
        stacks=_thread_regions(records, regions),
        read_then_write=_read_then_write([r for c, r in pairs if c in ("heap_anon", "stack")]),
        huge_faults=_huge(records, t0),
        major_by_name=dict(Counter(_name(region_of(r)) for r in records if r.major).most_common(3)),
        regions=region_facts(records, regions, programs, t0),
        buffer=buffer_facts(records, regions),
    )


def _end(late: list[tuple[str, FaultRecord]], n: int) -> dict[str, Any]:
    """The faults of the last 10 % of the span: their share, classes, and the exec faults in libraries."""
    lib_exec = [r for c, r in late if c == "libraries" and r.access == "exec"]
    return {
        "end_share": len(late) / n,
        "end_by_class": dict(Counter(c for c, _ in late)),
        "end_lib_exec": len(lib_exec),
        "end_libs": len({(r.tgid, r.region) for r in lib_exec}),
    }


def _name(region: Region | None) -> str:
    return region.name if region is not None else "?"


def _worker(r: FaultRecord) -> int:
    """The faulting thread when it is not its process's first, else -1."""
    return r.tid if r.tid and r.tid != r.tgid else -1


def _thread_regions(records: Sequence[FaultRecord], regions: Sequence[Region]) -> ThreadStacks:
    """The anonymous regions one worker thread faulted in (and, besides it, only the first thread)."""
    tids: dict[int, set[int]] = defaultdict(set)
    for r in records:
        if r.region < len(regions) and regions[r.region].kind == "anon":
            tids[r.region].add(_worker(r))
    own = {i for i, t in tids.items() if len(t - {-1}) == 1}
    mine = [r for r in records if r.region in own]
    return ThreadStacks(
        regions=len(own),
        faults=len(mine),
        pages=max(((regions[i].end - regions[i].start) // PAGE for i in own), default=0),
        first=sum(1 for r in mine if _worker(r) == -1),
    )


def _read_then_write(records: Sequence[FaultRecord]) -> int:
    first: dict[tuple[int, int], str] = {}
    pages = set()
    for r in records:
        key = (r.tgid, r.page)
        if first.setdefault(key, r.access) == "read" and r.access == "write":
            pages.add(key)
    return len(pages)


def _huge(records: Sequence[FaultRecord], t0: int) -> HugeFacts:
    huge = [r for r in records if r.huge]
    mapped = {(r.tgid, r.address >> 21): r.t_ns for r in huge}
    later = sum(1 for r in records if not r.huge and mapped.get((r.tgid, r.address >> 21), r.t_ns) < r.t_ns)
    return HugeFacts(
        faults=len(huge),
        first_thread=sum(1 for r in huge if _worker(r) == -1),
        first_s=(huge[0].t_ns - t0) / 1e9 if huge else 0.0,
        last_s=(huge[-1].t_ns - t0) / 1e9 if huge else 0.0,
        later=later,
    )


def longest_gap(records: Sequence[FaultRecord], t0: int) -> Gap:
    """The longest stretch between consecutive faults (records by time)."""
    best = (0, t0, t0)
    for a, b in itertools.pairwise(records):
        if b.t_ns - a.t_ns > best[0]:
            best = (b.t_ns - a.t_ns, a.t_ns, b.t_ns)
    return Gap(best[0] / 1e9, (best[1] - t0) / 1e9, (best[2] - t0) / 1e9)


def _mib(records: Sequence[FaultRecord]) -> float:
    small = {(r.tgid, r.page) for r in records if not r.huge}
    huge = {(r.tgid, r.address >> 21) for r in records if r.huge}
    small = {(tgid, page) for tgid, page in small if (tgid, page >> 9) not in huge}
    return (len(small) * PAGE + len(huge) * 512 * PAGE) / MIB


def fork_facts(records: Sequence[FaultRecord], processes: Sequence[ProcessEntry]) -> ForkFacts:
    """The faults forked children take before exec, and which of their writes hit a page the parent had
    faulted before (a private page fork shared: the write copies it)."""
    traced = {p.tgid for p in processes}
    parent = {p.tgid: p.ppid for p in processes if p.ppid in traced}
    seen: dict[int, dict[int, int]] = defaultdict(dict)  # tgid -> page -> first fault time
    before = writes = on_parent = 0
    for r in records:  # by time
        seen[r.tgid].setdefault(r.page, r.t_ns)
        if r.tgid not in parent or r.exec_seq != 0:
            continue
        before += 1
        if r.access == "write":
            writes += 1
            t = seen[parent[r.tgid]].get(r.page)
            on_parent += t is not None and t < r.t_ns
    return ForkFacts(len(parent), before, writes, on_parent)


def region_facts(
    records: Sequence[FaultRecord], regions: Sequence[Region], programs: set[str], t0: int
) -> list[RegionFacts]:
    """The largest regions by faults, each on its own (one process's mapping)."""
    groups: dict[int, list[FaultRecord]] = defaultdict(list)
    for r in records:
        if r.region < len(regions):
            groups[r.region].append(r)
    out = []
    for index, recs in sorted(groups.items(), key=lambda kv: -len(kv[1]))[:_TOP_REGIONS]:
        g = regions[index]
        top = None
        rising = 0
        for r in recs:
            if top is not None and r.page > top:
                rising += 1
            top = r.page if top is None else max(top, r.page)
        out.append(
            RegionFacts(
                name=g.name,
                kind=g.kind,
                cls=region_class(g, programs),
                tgid=recs[0].tgid,
                size_pages=(g.end - g.start) // PAGE,
                faults=len(recs),
                pages=len({r.page for r in recs}),
                access=dict(Counter(r.access for r in recs)),
                major=sum(1 for r in recs if r.major),
                huge=sum(1 for r in recs if r.huge),
                small_pages=len({r.page for r in recs if not r.huge}),
                first_s=(recs[0].t_ns - t0) / 1e9,
                last_s=(recs[-1].t_ns - t0) / 1e9,
                rising=rising / (len(recs) - 1) if len(recs) > 1 else 0.0,
                threads=len({r.tid or r.tgid for r in recs}),
            )
        )
    return out


_BUFFER_KINDS = ("anon", "heap", "file")
_BUFFER_FAULTS = 64  # a buffer took at least this many faults, or a huge-page fault
_BUFFER_USERS = 4


def buffer_facts(records: Sequence[FaultRecord], regions: Sequence[Region]) -> BufferFacts | None:
    """The largest mapping with many faults (or a huge one), and each of the first processes' faults in it."""
    counts = Counter(r.region for r in records if r.region < len(regions))
    huge = {r.region for r in records if r.huge and r.region < len(regions)}
    candidates = [
        i for i, n in counts.items() if regions[i].kind in _BUFFER_KINDS and (n >= _BUFFER_FAULTS or i in huge)
    ]
    if not candidates:
        return None
    g = regions[max(candidates, key=lambda i: (regions[i].end - regions[i].start, counts[i]))]
    if g.kind == "file":
        mine = [r for r in records if r.region < len(regions) and regions[r.region].name == g.name]
    else:
        mine = [r for r in records if g.start <= r.address < g.end]
    t0 = records[0].t_ns
    tgids = list(dict.fromkeys(r.tgid for r in records))[:_BUFFER_USERS]
    return BufferFacts(
        name=g.name,
        kind=g.kind,
        size_pages=(g.end - g.start) // PAGE,
        faults=len(mine),
        pages=len({(r.tgid, r.page) for r in mine}),
        refaults=_refaults(mine),
        huge=sum(1 for r in mine if r.huge),
        major=sum(1 for r in mine if r.major),
        first_s=(mine[0].t_ns - t0) / 1e9,
        last_s=(mine[-1].t_ns - t0) / 1e9,
        span_s=(records[-1].t_ns - t0) / 1e9,
        users=[_use(tgid, [r for r in mine if r.tgid == tgid]) for tgid in tgids],
    )


def _refaults(records: Sequence[FaultRecord]) -> int:
    seen: set[tuple[int, int]] = set()
    blocks: set[tuple[int, int]] = set()
    again = 0
    for r in records:
        again += (r.tgid, r.page) in seen or (r.tgid, r.address >> 21) in blocks
        seen.add((r.tgid, r.page))
        if r.huge:
            blocks.add((r.tgid, r.address >> 21))
    return again


def _use(tgid: int, mine: list[FaultRecord]) -> BufferUse:
    return BufferUse(
        tgid=tgid,
        faults=len(mine),
        writes=sum(1 for r in mine if r.access == "write"),
        major=sum(1 for r in mine if r.major),
        huge=sum(1 for r in mine if r.huge),
    )
