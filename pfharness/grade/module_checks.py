"""A module item's checks (rubric kind "module") from the module check's report: what each check gave,
as a fraction of its points and one line of evidence a student can act on (the check's own messages)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..check.findings import Finding
from ..check.model import CheckFinding, CheckReport, ModuleCheck
from .rubric import Check

AGREEMENT_STEPS = 4  # plot-agreement's points go in quarters: a run's small variations do not move them


@dataclass(frozen=True)
class Got:
    """What one check gave: a fraction of its points, and why."""

    fraction: float
    text: str


@dataclass(frozen=True)
class ModuleFacts:
    """One module of one submission as the check saw it (`check` None: it was not checked, `reason` says why)."""

    letter: str
    check: ModuleCheck | None
    reason: str = ""

    def found(self, *ids: Finding, stages: tuple[str, ...] = ()) -> list[CheckFinding]:
        have = self.check.findings if self.check is not None else ()
        return [f for f in have if f.id in ids and (not stages or f.stage in stages)]

    @property
    def loaded(self) -> bool:
        return not self.found(Finding.LOAD_FAILED, Finding.PROBE_SYMBOL) and not self.found(
            Finding.VM_LOST, Finding.KERNEL_SPLAT, stages=("load",)
        )

    def figures(self, name: str) -> Mapping | None:
        if self.check is None:
            return None
        value = self.check.figures.get(name)
        return value if isinstance(value, Mapping) else None

    @property
    def not_judged(self) -> str:
        why = self.check.notes[0] if self.check is not None and self.check.notes else "no oracle comparison"
        return f"not judged: {why}"


def facts(letter: str, report: CheckReport | None, not_checked: str, handed_in: bool) -> ModuleFacts:
    """Module `letter` of a submission: its ModuleCheck, or why there is none."""
    name = f"pf_probe_{letter}"
    if not handed_in:
        return ModuleFacts(letter, None, f"{name}.c was not handed in")
    if report is None:
        return ModuleFacts(letter, None, not_checked or "the module was not checked")
    failed = [f for f in report.findings if f.id in (Finding.BUILD_FAILED, Finding.API_CHANGE)]
    if failed:
        first = next((f.evidence[0] for f in failed if f.evidence), "")
        return ModuleFacts(letter, None, "; ".join(f.message for f in failed[:3]) + (f": {first}" if first else ""))
    check = next((m for m in report.modules if m.module == name), None)
    if check is None:
        return ModuleFacts(letter, None, f"the Makefile did not build {name}.ko (obj-m += {name}.o)")
    return ModuleFacts(letter, check)


def evaluate(check: Check, m: ModuleFacts) -> Got:
    """What `check` gives module `m`."""
    if m.check is None:
        return Got(0.0, m.reason if check.name == "builds" else "not run: it was not built")
    if check.name in ("builds", "tpid", "loads"):
        return _EARLY[check.name](m)
    if not m.loaded:
        return Got(0.0, "not run: the module did not load")
    return _RUN[check.name](m, check)


def _absent(found: list[CheckFinding], ok: str) -> Got:
    """Full points when nothing was found, else none, the first finding's message (and source line) as why."""
    if not found:
        return Got(1.0, ok)
    f = found[0]
    where = f" ({f.source_line})" if f.source_line and f.source_line not in f.message else ""
    return Got(0.0, f.message + where)


def _builds(m: ModuleFacts) -> Got:
    return Got(1.0, f"built for {m.check.kernel_release if m.check else '?'}")


def _tpid(m: ModuleFacts) -> Got:
    return _absent(m.found(Finding.NO_TPID_PARAM), "the module takes tpid=")


def _loads(m: ModuleFacts) -> Got:
    found = m.found(Finding.PROBE_SYMBOL, Finding.LOAD_FAILED) or m.found(
        Finding.KERNEL_SPLAT, Finding.VM_LOST, stages=("load",)
    )
    return _absent(found, "insmod succeeded")


def _traces(m: ModuleFacts, _check: Check) -> Got:
    figures = m.figures("a")
    if figures is None:
        return Got(0.0, m.not_judged)
    ok = f"printed {figures.get('matched', 0)} of the {figures.get('real_pages', 0)} pages the target faulted on"
    return _absent(m.found(Finding.A_MISSES_FAULTS, Finding.A_EXTRA_FAULTS), ok)


def _threads(m: ModuleFacts, _check: Check) -> Got:
    figures = m.figures("a")
    if figures is None:
        return Got(0.0, m.not_judged)
    shown = f"{figures.get('thread_pages_printed', 0)} of {figures.get('thread_pages', 0)}"
    ok = f"the other threads' pages printed ({shown})"
    return _absent(m.found(Finding.A_MISSES_THREADS), ok)


def _no_splat(m: ModuleFacts, _check: Check) -> Got:
    return _absent(m.found(Finding.KERNEL_SPLAT, Finding.VM_LOST, stages=("load", "run")), "no splat while it ran")


def _unloads(m: ModuleFacts, _check: Check) -> Got:
    if m.found(Finding.VM_LOST, stages=("load", "run")):
        return Got(0.0, "not unloaded: the VM was lost before the unload")
    found = m.found(Finding.RMMOD_HUNG) or m.found(Finding.KERNEL_SPLAT, Finding.VM_LOST, stages=("unload",))
    return _absent(found, "rmmod returned, nothing broke at unload")


def _plots(m: ModuleFacts) -> list[Mapping]:
    figures = m.figures("plots") or {}
    shown = figures.get("shown", [])
    return [s for s in shown if isinstance(s, Mapping)]


def _plot_found(m: ModuleFacts, _check: Check) -> Got:
    if m.figures("plots") is None:
        return Got(0.0, m.not_judged)
    shown = _plots(m)
    return _absent(m.found(Finding.PLOT_MISSING), f"{len(shown)} plot(s) found")


def _plot_finding(finding: Finding, ok: Callable[[list[Mapping]], str]) -> Callable[[ModuleFacts, Check], Got]:
    def judge(m: ModuleFacts, _check: Check) -> Got:
        shown = _plots(m)
        if not shown:
            return Got(0.0, "no plot found" if m.figures("plots") is not None else m.not_judged)
        return _absent(m.found(finding), ok(shown))

    return judge


def _sizes(shown: list[Mapping]) -> str:
    return "plot " + ", ".join(f"{s.get('rows')} x {s.get('columns')}" for s in shown)


def _agreement(m: ModuleFacts, check: Check) -> Got:
    shown = _plots(m)
    if not shown:
        return Got(0.0, "no plot found" if m.figures("plots") is not None else m.not_judged)
    full_at = check.options.get("full_at", 0.8) or 1.0
    values = [min(a["student_in_oracle"], a["oracle_in_student"]) if (a := s.get("agreement")) else 0.0 for s in shown]
    value = sum(values) / len(values)
    text = f"the plot's marks agree {value:.0%} with the oracle's plot of the same faults (full at {full_at:.0%})"
    return Got(math.floor(min(1.0, value / full_at) * AGREEMENT_STEPS) / AGREEMENT_STEPS, text)


def _c_split(m: ModuleFacts, _check: Check) -> Got:
    if m.figures("c_split") is None:
        return Got(0.0, m.not_judged)
    off = [f for f in m.found(Finding.C_SPLIT) if f.severity != "info"]
    info = m.found(Finding.C_SPLIT)
    return _absent(off, info[0].message if info else "split as the oracle's")


_EARLY: Mapping[str, Callable[[ModuleFacts], Got]] = {"builds": _builds, "tpid": _tpid, "loads": _loads}
_RUN: Mapping[str, Callable[[ModuleFacts, Check], Got]] = {
    "traces-target": _traces,
    "threads": _threads,
    "no-splat": _no_splat,
    "unloads": _unloads,
    "plot-found": _plot_found,
    "plot-size": _plot_finding(Finding.PLOT_SIZE, _sizes),
    "plot-title": _plot_finding(Finding.PLOT_NO_TITLE, lambda shown: "the plot has a title"),
    "plot-labels": _plot_finding(Finding.PLOT_NO_LABELS, lambda shown: "the plot has axis labels"),
    "plot-agreement": _agreement,
    "c-split": _c_split,
}
