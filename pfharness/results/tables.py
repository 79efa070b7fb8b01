"""The top-N tables of a run's saved records, as `perf report --sort dso` gives: faults by region, by library
(the file-backed regions, the program's own among them, grouped by name) and by process. Pure: computed from
SavedRecords' records and regions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import output_format as fmt
from . import records_table
from .records_file import FaultRecord, ProcessEntry, Region

TOP_N = 5
#: The regions a file backs: the program's own code and data, and every other file mapping (libraries, ...).
FILE_KINDS = ("code", "data", "file")


class TopRow(NamedTuple):
    """One row of a top table: what it names, its faults and their share of the run's records (percent)."""

    name: str
    faults: int
    percent: float


@dataclass(frozen=True)
class TopTables:
    """The three tables; `processes` is empty unless the run traced more than one process (--follow)."""

    total: int  # the records the tables were computed from
    regions: list[TopRow]
    libraries: list[TopRow]
    processes: list[TopRow]

    def to_json(self) -> dict[str, list[dict[str, object]]]:
        return {
            "regions": [r._asdict() for r in self.regions],
            "libraries": [r._asdict() for r in self.libraries],
            "processes": [r._asdict() for r in self.processes],
        }


def _top(counts: Counter[str], total: int, n: int) -> list[TopRow]:
    # Most faults first; a tie by name, so that the table is the same on every run of the same records.
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return [TopRow(name, faults, round(100.0 * faults / total, 1) if total else 0.0) for name, faults in ranked]


def _region_names(keys: Iterable[tuple[int, int]], regions: list[Region], several: bool) -> dict[tuple[int, int], str]:
    """A name for each (region index, pid): the region's name (with the pid when the run holds several
    processes), and its start address when another region has the same name (a library's code and data)."""
    names = {}
    for index, tgid in keys:
        region = regions[index] if index < len(regions) else None
        name = fmt.BAND_NONE_NAME if region is None else region.name
        names[index, tgid] = f"{name} (pid {tgid})" if several else name
    seen = Counter(names.values())
    for (index, tgid), name in names.items():
        if seen[name] > 1 and index < len(regions):
            names[index, tgid] = f"{name} @{regions[index].start:#x}"
    return names


def top_tables(
    records: Iterable[FaultRecord] | np.ndarray,
    regions: list[Region],
    processes: list[ProcessEntry] | None = None,
    n: int = TOP_N,
) -> TopTables:
    """The top `n` regions, libraries and (when the records hold more than one process) processes; `records`
    as FaultRecord tuples or as a records_table array (counted a column at a time)."""
    table = records if isinstance(records, np.ndarray) else records_table.from_tuples(list(records))
    pids, pid_faults = np.unique(table["tgid"], return_counts=True)
    keys, key_faults = np.unique(table["tgid"].astype(np.uint64) << 16 | table["region"], return_counts=True)
    by_key = Counter({(k & 0xFFFF, k >> 16): f for k, f in zip(keys.tolist(), key_faults.tolist(), strict=True)})
    known = table["region"][table["region"] < len(regions)]
    by_library: Counter[str] = Counter()
    for index, faults in enumerate(np.bincount(known, minlength=len(regions)).tolist()):
        if faults and regions[index].kind in FILE_KINDS:
            by_library[regions[index].name] += faults
    several = len(pids) > 1
    names = _region_names(by_key, regions, several)
    by_region: Counter[str] = Counter({names[key]: faults for key, faults in by_key.items()})
    comms = {p.tgid: p.comm for p in processes or []}
    by_process: Counter[str] = Counter()
    if several:
        for tgid, faults in zip(pids.tolist(), pid_faults.tolist(), strict=True):
            by_process[f"{tgid} {comms.get(tgid, '?')}"] = faults
    total = len(table)
    return TopTables(total, _top(by_region, total, n), _top(by_library, total, n), _top(by_process, total, n))


def table_lines(tables: TopTables) -> list[str]:
    """The tables as text, one compact line per table, `name faults (percent)` per entry."""
    lines = []
    for title, rows in (("region", tables.regions), ("library", tables.libraries), ("process", tables.processes)):
        if rows:
            cells = ", ".join(f"{r.name} {r.faults} ({r.percent:.1f}%)" for r in rows)
            lines.append(f"{f'top by {title}:':<17}{cells}")
    return lines


def table_text(tables: TopTables) -> list[str]:
    """The tables as columns (`pfharness plot --table`): one block per table, its rows under a header."""
    lines = [f"{tables.total} faults recorded"]
    for title, rows in (("region", tables.regions), ("library", tables.libraries), ("process", tables.processes)):
        if not rows:
            continue
        width = max(len(title), *(len(r.name) for r in rows))
        lines += ["", f"{title:<{width}}  {'faults':>8}  {'share':>6}"]
        lines += [f"{r.name:<{width}}  {r.faults:>8}  {r.percent:>5.1f}%" for r in rows]
    return lines
