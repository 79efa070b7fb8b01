"""Figures computed from what a module recorded (B or C with dump_records=1)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .module_output import Record


@dataclass(frozen=True)
class Figures:
    """What one traced run's records say about its memory access."""

    faults: int  # records (faults seen by the module, up to its capacity)
    dropped: int  # faults past the capacity
    span_s: float  # time from the first to the last fault
    faults_per_s: float  # faults / span (0 when the span is 0)
    distinct_pages: int  # different virtual pages faulted
    sequential_share: float  # share of faults on the page right after the previous fault's page
    startup_share: float  # share of faults in the first 10 % of the span
    segment_share: dict[str, float]  # C: share of faults per class (code, data, other); {} for B

    def as_dict(self) -> dict:
        return asdict(self)


def compute(records: Sequence[Record], dropped: int = 0) -> Figures:
    """Figures for records in buffer order (= the order faults claimed their slots)."""
    if not records:
        return Figures(0, dropped, 0.0, 0.0, 0, 0.0, 0.0, {})
    ordered = sorted(records, key=lambda r: (r.t_ns, r.index))
    t0, t1 = ordered[0].t_ns, ordered[-1].t_ns
    span_s = (t1 - t0) / 1e9
    pages = [r.address >> 12 for r in ordered]
    steps = sum(1 for a, b in itertools.pairwise(pages) if b == a + 1)
    early = t0 + (t1 - t0) / 10
    classes = Counter(r.fault_class for r in ordered if r.fault_class)
    return Figures(
        faults=len(records),
        dropped=dropped,
        span_s=span_s,
        faults_per_s=len(records) / span_s if span_s > 0 else 0.0,
        distinct_pages=len(set(pages)),
        sequential_share=steps / (len(pages) - 1) if len(pages) > 1 else 0.0,
        startup_share=sum(1 for r in ordered if r.t_ns <= early) / len(ordered),
        segment_share={k: classes[k] / len(ordered) for k in ("code", "data", "other")} if classes else {},
    )
