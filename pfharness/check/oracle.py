"""The oracle beside a checked module (issue 22): pfharness's own recorder (kbuild.ORACLE_NAME, B with records)
loaded in the same step for the same pid. Its saved records (result.saved) are what really happened; the
comparisons (compare.py) of the module's own lines with them become the check's findings and figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PfhError
from ..kernel import Kernel
from ..kmod import kbuild
from ..results.model import TraceResult
from . import compare, oracle_faults
from .model import CheckFinding

#: The oracle prints nothing per record (its records come from the saved /proc files, result.saved).
PARAMS = ("dump_records=0",)
PREFIX = f"{kbuild.ORACLE_NAME}: "
NOT_JUDGED = "a-*, plot-* and c-split are not judged"


@dataclass(frozen=True)
class OracleJudgement:
    """What comparing one module's run with the oracle gave."""

    findings: tuple[CheckFinding, ...] = ()
    figures: dict[str, Any] = field(default_factory=dict)  # each comparison's figures, by its name
    notes: tuple[str, ...] = ()  # why there was no comparison


def build(out: Path, kernel: Kernel) -> tuple[Path | None, str]:
    """The oracle's .ko built for `kernel` under `out` (once a check), or None and the note saying why not."""
    try:
        return kbuild.build(kbuild.oracle_request(out, kernel)).modules["B"], ""
    except PfhError as e:
        return None, f"the oracle ({kbuild.ORACLE_NAME}) did not build ({e}): {NOT_JUDGED}"


def not_oracle(messages: Sequence[str]) -> list[str]:
    """The kernel log without the oracle's own lines."""
    return [ln for ln in messages if not ln.startswith(PREFIX)]


def judge(letter: str, lines: Sequence[str], result: TraceResult | None) -> OracleJudgement:
    """The module's own `lines` against the oracle's records of the step's `result` (None: the VM was lost)."""
    why = _why_not(result)
    if why or result is None or result.saved is None or result.pid is None:
        return OracleJudgement(notes=(f"{why or 'no oracle records'}: {NOT_JUDGED}",))
    faults = oracle_faults.from_records_file(result.saved.records)
    if letter == "A":
        compared = {"a": (compare.compare_a(lines, faults, result.pid), "run")}
    else:
        expected = 1 if letter == "B" else len(oracle_faults.CLASSES)
        compared = {
            "plots": (compare.compare_plots(lines, faults, result.pid, expected=expected, saved=result.saved), "unload")
        }
        if letter == "C":
            compared["c_split"] = (compare.compare_c(lines, faults, result.pid), "unload")
    found = tuple(
        CheckFinding(i.finding, i.severity, stage, i.message, i.evidence)
        for comparison, stage in compared.values()
        for i in comparison.items
    )
    return OracleJudgement(found, {name: c.figures for name, (c, _stage) in compared.items()})


def _why_not(result: TraceResult | None) -> str:
    """Why the step's run cannot be compared with the oracle ("" when it can)."""
    if result is None:
        return "the VM was lost before the step ended, so the oracle's records are missing"
    if result.oracle_insmod_status != 0:
        return f"the oracle ({kbuild.ORACLE_NAME}) did not load (insmod status {result.oracle_insmod_status})"
    if result.insmod_status != 0:
        return "the module did not load, so there is nothing to compare with the oracle"
    if result.saved is None or not result.saved.records:
        detail = f" ({result.saved_error})" if result.saved_error else ""
        return f"the oracle's records are missing{detail}"
    return ""
