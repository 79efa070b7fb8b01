"""Points by the rubric: each item's checks scored from what was measured of one submission (the module
check's report, the unpacked files, the report's measures, checkpatch's counts), each check with one line
of evidence, each item with feedback the student can be handed as it is; then the total (extra points
capped, the late penalty deducted, never below 0)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from ..check import pid_steps
from ..check.findings import Finding
from ..check.model import CheckReport
from . import module_checks
from .checkpatch import Counts
from .model import GradeFinding, ItemScore, Unpacked
from .module_checks import Got
from .report_txt import ReportFacts
from .rubric import Check, Item, Rubric

DAY_SECONDS = 24 * 3600
_WARNED = re.compile(r"warned (\d+) time")
READ_REPORT = "read report.txt: does it identify the trends for each kind of application?"
READ_CODE = "read the code: error handling, comments, modularity"
PID_CHECKS = {f.value: f for f in pid_steps.KINDS}
PID_NOTE = pid_steps.NOT_RUN


@dataclass(frozen=True)
class Measured:
    """Everything measured of one submission that the rubric scores."""

    unpacked: Unpacked
    report: CheckReport | None  # None: not checked (`not_checked` says why)
    not_checked: str = ""
    report_facts: ReportFacts | None = None  # None: no report.txt that could be read as text
    checkpatch: Counts | None = None
    late_days: int = 0
    late_text: str = ""  # "submitted ..., deadline ...: N day(s) late"


def late_days(submitted: str, deadline: datetime) -> int:
    """Days late: every 24 hours or part of 24 hours after `deadline` (0 when on time)."""
    when = datetime.fromisoformat(submitted.replace("Z", "+00:00"))
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    seconds = (when - deadline).total_seconds()
    return math.ceil(seconds / DAY_SECONDS) if seconds > 0 else 0


def score(rubric: Rubric, measured: Measured) -> tuple[tuple[ItemScore, ...], float]:
    """Every item of the rubric scored, and the total."""
    items = [score_item(item, measured) for item in rubric.items]
    late = late_item(rubric, measured)
    if late is not None:
        items.append(late)
    return total(rubric, items)


def score_item(item: Item, measured: Measured) -> ItemScore:
    """One item: each check's points and evidence line, the feedback from the checks that lost points."""
    if item.kind == "module":
        handed_in = f"pf_probe_{item.module}.c" in measured.unpacked.files
        m = module_checks.facts(item.module, measured.report, measured.not_checked, handed_in)
        got = [module_checks.evaluate(c, m) for c in item.checks]
        flags: tuple[str, ...] = ()
    elif item.kind == "report":
        got = [_report_check(c, measured) for c in item.checks]
        flags = (measured.report_facts.flag if measured.report_facts and measured.report_facts.flag else READ_REPORT,)
    else:
        got = [_clean_check(c, measured) for c in item.checks]
        flags = (READ_CODE, *_checkpatch_flag(measured))
    pairs = zip(item.checks, got, strict=True)
    scored = [(c, round(c.points * max(0.0, min(1.0, g.fraction)), 2), g.text) for c, g in pairs]
    evidence = tuple(f"{c.name} {p:g}/{c.points:g}: {text}" for c, p, text in scored)
    lost = _lost_lines([(c.name, c.points - p, text) for c, p, text in scored if p < c.points])
    got_points = round(sum(p for _c, p, _text in scored), 2)
    head = f"{item.title}: {got_points:g} of {item.max:g}" + (" extra points" if item.extra else "")
    feedback = "\n".join([head + (":" if lost else ". Every check passed."), *lost])
    return ItemScore(item.id, item.title, got_points, item.max, item.extra, evidence, feedback, flags)


def _lost_lines(lost: list[tuple[str, float, str]]) -> list[str]:
    """The feedback's lines for the checks that lost points; those not run for one reason make one line."""
    lines: list[str] = []
    for reason in dict.fromkeys(text for _n, _p, text in lost):
        same = [(n, p) for n, p, text in lost if text == reason]
        if len(same) == 1 or not reason.startswith("not run:"):
            lines += [f"- {n} (-{p:g}): {reason}" for n, p in same]
        else:
            lines.append(f"- {', '.join(n for n, _p in same)} (-{sum(p for _n, p in same):g}): {reason}")
    return lines


def _report_check(check: Check, measured: Measured) -> Got:
    facts = measured.report_facts
    if "report.txt" not in measured.unpacked.files:
        seen = measured.unpacked.near_misses.get("report.txt", ())
        return Got(0.0, "report.txt was not handed in" + (f" ({', '.join(seen)} instead)" if seen else ""))
    if facts is None or facts.kind != "text":
        what = facts.problems[0] if facts and facts.problems else f"it is {facts.kind if facts else 'unreadable'}"
        return Got(0.0, f"report.txt is not text: {what}")
    if check.name == "present":
        return Got(1.0, f"report.txt handed in ({facts.words} words)")
    if check.name == "length":
        least = check.options.get("min_words", 200)
        return Got(facts.prose_words / least, f"{facts.prose_words} words of prose (at least {least:g})")
    if check.name == "workloads":
        least = check.options.get("min", 3) or 1
        named = ", ".join(facts.workloads) or "none"
        return Got(len(facts.workloads) / least, f"{len(facts.workloads)} kinds of application named: {named}")
    least = check.options.get("min", 1) or 1
    return Got(facts.plots / least, f"{facts.plots} plot(s) in the report (at least {least:g})")


def _clean_check(check: Check, measured: Measured) -> Got:
    if check.name == "files":
        return _files(measured.unpacked)
    report = measured.report
    if report is None:
        return Got(0.0, f"nothing to measure: {measured.not_checked or 'the modules were not checked'}")
    if check.name == "build-warnings":
        found = [f for f in report.findings if f.id == Finding.BUILD_WARNING]
        count = sum(int(w.group(1)) if (w := _WARNED.search(f.message)) else len(f.evidence) for f in found)
        first = f": {found[0].evidence[0]}" if found and found[0].evidence else ""
        return _per(check, count, f"{count} compiler warning(s){first}")
    if check.name == "checkpatch":
        counts = measured.checkpatch
        if counts is None or counts.error:
            return Got(1.0, f"not counted: {counts.error if counts else 'checkpatch was not run'}")
        first = f": {counts.first[0]}" if counts.first else ""
        text = f"checkpatch: {counts.errors} errors, {counts.warnings} warnings{first}"
        return _per(check, counts.errors + counts.warnings, text)
    if not report.modules:
        return Got(0.0, "no module ran")
    if check.name in PID_CHECKS:
        return _pid_check(PID_CHECKS[check.name], report)
    floods = [f for m in report.modules for f in m.findings if f.id == Finding.PRINTK_FLOOD]
    return Got(0.0, floods[0].message) if floods else Got(1.0, "no printk flood")


def _pid_check(kind: Finding, report: CheckReport) -> Got:
    """missing-pid or exited-pid: the share of the checked modules that handled it (check/pid_steps.py)."""
    handled, lost = [], []
    for m in report.modules:
        found = next((f for f in m.findings if f.id == kind), None)
        if found is not None and not found.is_error:
            handled.append(found.message)
        elif found is not None:
            lost.append(found.message + (f" ({found.source_line})" if found.source_line else ""))
        else:
            why = next((n for n in m.notes if n.startswith((PID_NOTE, kind.value))), f"{kind.value} was not checked")
            lost.append(f"{m.module}: {why}")
    first = lost[0] if lost else handled[0]
    more = f" (and {len(handled) - 1} more module(s) handled it)" if not lost and len(handled) > 1 else ""
    return Got(len(handled) / len(report.modules), first + more)


def _per(check: Check, count: int, text: str) -> Got:
    per = check.options.get("per", 1.0)
    if not check.points:
        return Got(1.0, text)
    return Got(max(0.0, check.points - per * count) / check.points, text + (f" (-{per:g} each)" if count else ""))


def _files(unpacked: Unpacked) -> Got:
    if unpacked.missing or unpacked.near_misses:
        near = [f"{name} as {', '.join(seen)}" for name, seen in unpacked.near_misses.items()]
        missing = [n for n in unpacked.missing if n not in unpacked.near_misses]
        parts = [f"misnamed: {'; '.join(near)}"] if near else []
        parts += [f"missing: {', '.join(missing)}"] if missing else []
        return Got(0.0, "; ".join(parts))
    return Got(1.0, "the required files are there, under their names")


def _checkpatch_flag(measured: Measured) -> tuple[str, ...]:
    counts = measured.checkpatch
    return (f"checkpatch not counted ({counts.error})",) if counts is not None and counts.error else ()


def late_item(rubric: Rubric, measured: Measured) -> ItemScore | None:
    """The late penalty as an item of its own (max 0), or None without a deadline."""
    if not measured.late_text:
        return None
    penalty = rubric.late_per_day * measured.late_days or 0.0
    feedback = f"Late: {measured.late_text}: -{penalty:g} points." if penalty else "Handed in on time."
    return ItemScore(
        "late", "late penalty", -penalty if penalty else 0.0, 0.0, evidence=(measured.late_text,), feedback=feedback
    )


def total(rubric: Rubric, items: list[ItemScore]) -> tuple[tuple[ItemScore, ...], float]:
    """The items (the extra ones' evidence saying what they offset) and the total: the extra points offset
    the deductions (and the late penalty when the rubric says so), never lifting it above the maximum."""
    base = sum(i.points for i in items if not i.extra and i.item != "late")
    extra = sum(i.points for i in items if i.extra)
    late = -sum(i.points for i in items if i.item == "late")
    offset_late = late if rubric.offset_late_by_extra else 0.0
    deducted = max(0.0, rubric.maximum - base + offset_late)
    used = min(extra, deducted)
    value = min(rubric.maximum, base + used - offset_late) - (late - offset_late)
    note = f"extra: {extra:g} points, {used:g} used to offset the {deducted:g} deducted"
    out = tuple(replace(i, evidence=(*i.evidence, note)) if i.extra else i for i in items)
    return out, round(max(0.0, value), 2)


def late_finding(measured: Measured) -> GradeFinding | None:
    if measured.late_days <= 0:
        return None
    return GradeFinding("late", f"handed in {measured.late_days} day(s) late", (measured.late_text,))
