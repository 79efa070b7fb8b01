"""The oracle's faults as the module check compares them: one small value per fault, read from the oracle's
saved records file (records_file.FaultRecord) or from its dump_records=1 lines (module_output.Record)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..results import output_format as fmt
from ..results.module_output import Record
from ..results.records_file import FaultRecord

PAGE_SHIFT = 12
CLASSES = tuple(key for key, _title in fmt.FAULT_CLASSES)  # code, data, other


class OracleFault(NamedTuple):
    """One fault the oracle (pfharness's own recorder) saw."""

    t_ns: int
    address: int
    tgid: int
    tid: int  # 0: not known (records version 1)
    fault_class: str  # one of CLASSES, or "" when not known

    @property
    def page(self) -> int:
        return self.address >> PAGE_SHIFT


def from_records_file(records: Iterable[FaultRecord]) -> list[OracleFault]:
    """The faults of a saved records file (the oracle's /proc/<name>/records)."""
    out = []
    for r in records:
        cls = (r.flags & fmt.RECORD_FLAG_CLASS_MASK) >> fmt.RECORD_FLAG_CLASS_SHIFT
        out.append(OracleFault(r.t_ns, r.address, r.tgid, r.tid, CLASSES[cls] if cls < len(CLASSES) else ""))
    return out


def from_report_records(records: Iterable[Record]) -> list[OracleFault]:
    """The faults of dump_records=1 lines (a recorded transcript)."""
    return [
        OracleFault(r.t_ns, r.address, r.tgid or 0, r.tid or 0, r.fault_class or "")
        for r in records
        if r.tgid is not None
    ]


class Item(NamedTuple):
    """One finding as the comparison gives it (the check turns it into its CheckFinding)."""

    finding: Any  # check.findings.Finding
    severity: str  # error | warning | info (findings.SEVERITIES)
    message: str  # one line a student can act on
    evidence: tuple[str, ...] = ()  # quoted lines or figures


@dataclass(frozen=True)
class Comparison:
    """What comparing one module's output with the oracle gave: figures (for --json and the report) and the
    findings they show."""

    figures: dict[str, Any]
    items: tuple[Item, ...] = ()
