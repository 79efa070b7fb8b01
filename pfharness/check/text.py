"""`pfharness check`'s text: per module a verdict line, each finding on one line with its fix, its
evidence indented, then the module's own kernel log lines under a heading."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .model import CheckFinding, CheckReport, ModuleCheck

MARK = {"error": "ERROR", "warning": "warn ", "info": "info "}


def finding_lines(finding: CheckFinding) -> list[str]:
    detail = f" [{finding.detail}]" if finding.detail else ""
    lines = [f"  {MARK[finding.severity]} {finding.id.value}{detail} ({finding.stage}): {finding.message}"]
    lines += [f"        | {e}" for e in finding.evidence]
    return lines


def module_lines(check: ModuleCheck) -> list[str]:
    errors = sum(f.is_error for f in check.findings)
    verdict = "passed" if check.passed else f"FAILED ({errors} error finding(s))"
    lines = [f"{check.module} on {check.kernel_release}: {verdict}"]
    for f in check.findings:
        lines += finding_lines(f)
    lines += [f"  note: {n}" for n in check.notes]
    lines += [f"  figures {name}: {flat(value)}" for name, value in check.figures.items()]
    if check.transcript:
        lines.append(f"  the VM's console: {check.transcript}")
    lines.append(f"  its kernel log ({len(check.lines)} line(s) shown):" if check.lines else "  it printed nothing")
    lines += [f"    {ln}" for ln in check.lines]
    return lines


def flat(value: Any) -> str:
    """Figures on one line: a dict as `key value, ...`, a list as `[...; ...]`, a ratio as a percentage."""
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {flat(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + "; ".join(flat(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.0%}" if 0 <= value <= 1 else f"{value:g}"
    return "-" if value is None else str(value)


def report_lines(report: CheckReport) -> list[str]:
    lines: list[str] = []
    if report.findings:
        lines.append(f"the build for {report.kernel_release}:")
        for f in report.findings:
            lines += finding_lines(f)
    for m in report.modules:
        lines += ["", *module_lines(m)] if lines else module_lines(m)
    verdict = "every check passed" if report.passed else "the check found errors (exit status 1)"
    lines += ["", f"{len(report.modules)} module(s) checked on {report.kernel_release}: {verdict}"]
    return lines


def show(report: CheckReport, echo: Callable[[str], None]) -> None:
    for line in report_lines(report):
        echo(line)
