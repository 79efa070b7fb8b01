"""Where a run's saved faults went: by access, major/minor, region and process (for the study's report)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .records_file import FaultRecord, ProcessEntry, Region


@dataclass(frozen=True)
class RegionShare:
    name: str  # region name; "?" for faults with no region
    kind: str
    faults: int
    pages: int  # distinct pages
    first: float  # time of its first fault, as a share of the run's span (0 = first fault, 1 = last)
    last: float
    access: dict[str, int]
    major: int
    rising: float  # share of its faults on a page above every earlier fault's page in it (growth upward)


def _region_key(r: FaultRecord, regions: Sequence[Region]) -> tuple[str, str]:
    if r.region < len(regions):
        g = regions[r.region]
        return g.name, g.kind
    return "?", "?"


def region_shares(records: Sequence[FaultRecord], regions: Sequence[Region]) -> list[RegionShare]:
    """One entry per region name (the same name in several processes counts once), most faults first."""
    if not records:
        return []
    ordered = sorted(records, key=lambda r: r.t_ns)
    t0, t1 = ordered[0].t_ns, ordered[-1].t_ns
    span = max(t1 - t0, 1)
    groups: dict[tuple[str, str], list[FaultRecord]] = defaultdict(list)
    for r in ordered:
        groups[_region_key(r, regions)].append(r)
    out = []
    for (name, kind), recs in groups.items():
        top_by_tgid: dict[int, int] = {}
        rising = 0
        for r in recs:
            top = top_by_tgid.get(r.tgid)
            if top is None or r.page > top:
                if top is not None:
                    rising += 1
                top_by_tgid[r.tgid] = r.page
        firsts = len(top_by_tgid)
        out.append(
            RegionShare(
                name=name,
                kind=kind,
                faults=len(recs),
                pages=len({(r.tgid, r.page) for r in recs}),
                first=(recs[0].t_ns - t0) / span,
                last=(recs[-1].t_ns - t0) / span,
                access=dict(Counter(r.access for r in recs)),
                major=sum(1 for r in recs if r.major),
                rising=rising / (len(recs) - firsts) if len(recs) > firsts else 0.0,
            )
        )
    return sorted(out, key=lambda s: -s.faults)


def _access(counts: dict[str, int], total: int) -> str:
    return " ".join(f"{k} {counts.get(k, 0) / total:.0%}" for k in ("read", "write", "exec")) if total else "-"


def breakdown_lines(
    records: Sequence[FaultRecord],
    regions: Sequence[Region],
    processes: Sequence[ProcessEntry],
    top_regions: int = 10,
    top_processes: int = 16,
) -> list[str]:
    """Text lines: access and major/minor overall, the top regions, and per process name its top regions."""
    if not records:
        return ["no saved records"]
    total = len(records)
    access = Counter(r.access for r in records)
    major = sum(1 for r in records if r.major)
    lines = [
        f"saved faults {total}: {_access(dict(access), total)}; major {major} ({major / total:.1%}), "
        f"minor {total - major}",
        f"  {'region':<24} {'kind':<6} {'faults':>7} {'pages':>6} {'first':>6} {'last':>6} {'rise':>5} "
        f"{'major':>6}  access",
    ]
    shares = region_shares(records, regions)
    for s in shares[:top_regions]:
        lines.append(
            f"  {s.name[:24]:<24} {s.kind:<6} {s.faults:>7} {s.pages:>6} {s.first:>6.0%} {s.last:>6.0%} "
            f"{s.rising:>5.0%} {s.major:>6}  {_access(s.access, s.faults)}"
        )
    if len(shares) > top_regions:
        rest = shares[top_regions:]
        lines.append(f"  the other {len(rest)} regions: {sum(s.faults for s in rest)} faults")
    comm_of = {p.tgid: p.comm for p in processes}
    if len(set(r.tgid for r in records)) > 1:
        by_comm: dict[str, list[FaultRecord]] = defaultdict(list)
        for r in records:
            by_comm[comm_of.get(r.tgid, "?")].append(r)
        ranked = sorted(by_comm.items(), key=lambda kv: -len(kv[1]))
        lines.append("  by process name (all processes of that name), its top regions:")
        for comm, recs in ranked[:top_processes]:
            n = len(recs)
            mix = _access(dict(Counter(r.access for r in recs)), n)
            tops = ", ".join(f"{s.name} {s.faults / n:.0%}" for s in region_shares(recs, regions)[:5])
            lines.append(f"    {comm:<12} x{len({r.tgid for r in recs}):<4} {n:>7} faults ({mix}): {tops}")
    return lines
