"""Recorded module-check reports (tests/data/grade/<case>.json, from real `pfharness check` runs of the
generated submissions of grade_class.py) read back as CheckReports, and the other values the scoring
takes, for the grader's fast tests."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pfharness.check.findings import Finding
from pfharness.check.model import CheckFinding, CheckReport, ModuleCheck
from pfharness.grade import report_txt
from pfharness.grade.model import Unpacked
from pfharness.grade.report_txt import ReportFacts

DATA = Path(__file__).parent / "data" / "grade"
ALL_FILES = ("pf_probe_A.c", "pf_probe_B.c", "pf_probe_C.c", "Makefile", "README", "report.txt")


def _finding(f: Mapping[str, Any]) -> CheckFinding:
    return CheckFinding(
        Finding(f["id"]),
        f["severity"],
        f["stage"],
        f["message"],
        tuple(f["evidence"]),
        f.get("detail") or "",
        f.get("source_line") or "",
    )


def _module(m: Mapping[str, Any]) -> ModuleCheck:
    return ModuleCheck(
        m["module"],
        m["kernel_release"],
        tuple(_finding(f) for f in m["findings"]),
        tuple(m["lines"]),
        m.get("build_log") or "",
        "",  # the transcript stayed where it was recorded
        dict(m.get("stage_seconds", {})),
        tuple(m.get("notes", ())),
        dict(m.get("figures", {})),
    )


def recorded(case: str) -> CheckReport:
    data = json.loads((DATA / f"{case}.json").read_text())
    modules = tuple(_module(m) for m in data["modules"])
    return CheckReport(data["kernel_release"], modules, tuple(_finding(f) for f in data["findings"]))


def unpacked(files: Sequence[str] = ALL_FILES, **kw: Any) -> Unpacked:
    return Unpacked(
        "alice",
        "alice.tar.gz",
        "0" * 64,
        "2020-03-05T12:00:00+00:00",
        "/nonexistent/alice",
        files={n: n for n in files},
        missing=tuple(n for n in ALL_FILES[:2] + ALL_FILES[3:] if n not in files),
        **kw,
    )


STUDY_REPORT = Path(__file__).parent.parent / "study" / "report.txt"


def facts(text: str | None = None) -> ReportFacts:
    """report_txt's measures of `text` (None: the project's own study/report.txt)."""
    return _study_facts() if text is None else report_txt.measure_bytes(text.encode())


@functools.cache
def _study_facts() -> ReportFacts:
    return report_txt.measure(STUDY_REPORT)
