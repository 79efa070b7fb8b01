"""Figures computed from the records a module saved (B or C: /proc/<module>/records, read back as FaultRecord)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from . import output_format as fmt
from .records_file import FaultRecord


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
    segment_share: dict[str, float]  # share of faults per class (code, data, other) stored with each record

    def as_dict(self) -> dict:
        return asdict(self)


def fault_class(record: FaultRecord) -> str:
    """The class (code, data, other) the module stored in the record's flags (B and C both store it)."""
    index = (record.flags & fmt.RECORD_FLAG_CLASS_MASK) >> fmt.RECORD_FLAG_CLASS_SHIFT
    return fmt.FAULT_CLASSES[index][0] if index < len(fmt.FAULT_CLASSES) else "?"


def compute(records: Sequence[FaultRecord], dropped: int = 0) -> Figures:
    """Figures for records in buffer order (= the order faults claimed their slots)."""
    if not records:
        return Figures(0, dropped, 0.0, 0.0, 0, 0.0, 0.0, {})
    # by time, ties (and a clock that steps back between CPUs) in buffer order
    ordered = [r for _, r in sorted(enumerate(records), key=lambda ir: (ir[1].t_ns, ir[0]))]
    t0, t1 = ordered[0].t_ns, ordered[-1].t_ns
    span_s = (t1 - t0) / 1e9
    pages = [r.address >> 12 for r in ordered]
    steps = sum(1 for a, b in itertools.pairwise(pages) if b == a + 1)
    early = t0 + (t1 - t0) / 10
    classes = Counter(fault_class(r) for r in ordered)
    return Figures(
        faults=len(records),
        dropped=dropped,
        span_s=span_s,
        faults_per_s=len(records) / span_s if span_s > 0 else 0.0,
        distinct_pages=len(set(pages)),
        sequential_share=steps / (len(pages) - 1) if len(pages) > 1 else 0.0,
        startup_share=sum(1 for r in ordered if r.t_ns <= early) / len(ordered),
        segment_share={k: classes[k] / len(ordered) for k, _ in fmt.FAULT_CLASSES},
    )
