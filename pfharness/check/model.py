"""What `pfharness check` reports: findings (one line a student can act on, the kernel's or the
compiler's lines as evidence), per module and for the whole check, as text-ready values and JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .findings import SEVERITIES, STAGES, Finding

MAX_EVIDENCE = 12  # lines of evidence a finding quotes
MAX_LINES = 40  # the student's own lines shown: the first and last half of this


def bounded(lines: Sequence[str], limit: int = MAX_LINES) -> tuple[str, ...]:
    """The first and last `limit`/2 of `lines`, with a line saying how many were left out between."""
    if len(lines) <= limit:
        return tuple(lines)
    half = limit // 2
    return (*lines[:half], f"... ({len(lines) - 2 * half} lines left out) ...", *lines[-half:])


@dataclass(frozen=True)
class CheckFinding:
    """One thing the check found."""

    id: Finding
    severity: str  # error, warning or info (findings.SEVERITIES)
    stage: str  # build, load, run or unload (findings.STAGES)
    message: str  # one line a student can act on: what is wrong and the fix
    evidence: tuple[str, ...] = ()  # the kernel's or the compiler's lines that show it, as printed
    detail: str = ""  # api-change: which change (findings.ApiChange)
    source_line: str = ""  # a crash: the faulting function+offset resolved to file:line

    def __post_init__(self) -> None:
        assert self.severity in SEVERITIES and self.stage in STAGES, (self.severity, self.stage)
        object.__setattr__(self, "evidence", bounded(tuple(dict.fromkeys(self.evidence)), MAX_EVIDENCE))

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id.value,
            "severity": self.severity,
            "stage": self.stage,
            "message": self.message,
            "evidence": list(self.evidence),
            "detail": self.detail or None,
            "source_line": self.source_line or None,
        }


@dataclass(frozen=True)
class ModuleCheck:
    """One module's check: what was found, and what it printed."""

    module: str  # pf_probe_A, B or C
    kernel_release: str
    findings: tuple[CheckFinding, ...]
    lines: tuple[str, ...] = ()  # the run's kernel log as the module printed it (bounded)
    build_log: str = ""  # where the whole build log is
    transcript: str = ""  # the VM's console transcript ("" when it never booted)
    stage_seconds: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what the check could not do (e.g. the oracle did not load)
    figures: Mapping[str, Any] = field(default_factory=dict)  # the oracle comparisons' figures (a, plots, c_split)

    @property
    def passed(self) -> bool:
        return not any(f.is_error for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "kernel_release": self.kernel_release,
            "passed": self.passed,
            "findings": [f.to_json() for f in self.findings],
            "lines": list(self.lines),
            "build_log": self.build_log or None,
            "transcript": self.transcript or None,
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            "notes": list(self.notes),
            "figures": dict(self.figures),
        }


@dataclass(frozen=True)
class CheckReport:
    """The whole check: every module checked, on one kernel."""

    kernel_release: str
    modules: tuple[ModuleCheck, ...]
    findings: tuple[CheckFinding, ...] = ()  # those of no one module (a build that failed for all)

    @property
    def passed(self) -> bool:
        return not any(f.is_error for f in self.findings) and all(m.passed for m in self.modules)

    def to_json(self) -> dict[str, Any]:
        return {
            "kernel_release": self.kernel_release,
            "passed": self.passed,
            "findings": [f.to_json() for f in self.findings],
            "modules": [m.to_json() for m in self.modules],
        }
