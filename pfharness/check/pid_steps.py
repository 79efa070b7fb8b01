"""The module's behaviour on a pid that never existed and on one whose process exits while it is loaded (the
rubric's "error handling", issue 23): two short steps in the check's VM after its main step, without the oracle.

- missing-pid: the module loaded with tpid=MISSING_PID, a pid no process has (the workload, run once it is
  loaded, checks that /proc/MISSING_PID is not there: else the step shows nothing and says so), then unloaded.
- exited-pid: the module loaded for a process that exits at once (/bin/true, held until the load), unloaded
  once it has exited and been reaped: no task has the pid any more.

Handled well (docs/check.md): no splat, the VM alive, rmmod returning 0 when the module loaded, its lines text
(no bytes the kernel log escapes, no SLUB poison); for missing-pid, refusing to load (insmod fails) is handled
well too. Each step gives its finding: info saying how the module handled it, or an error with the kernel's
lines. They run only after a clean main step (loaded, unloaded, no splat): else a note says why not.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence

from ..errors import VmLost, VmTimeout
from ..pipeline.steps import Step
from ..results import notes
from ..results.model import TraceResult
from ..values import Module
from . import judge
from .findings import Finding
from .model import CheckFinding

#: A pid below the guest's pid_max (32768 with its 2 vCPUs) far above the few hundred a fresh guest uses.
MISSING_PID = 30000
STEP_TIMEOUT = 60.0  # seconds for each of these steps at most (a hung rmmod is killed then)
KINDS = (Finding.MISSING_PID, Finding.EXITED_PID)
NOT_RUN = "missing-pid and exited-pid were not checked"
_WHAT = {
    Finding.MISSING_PID: f"with tpid={MISSING_PID}, a pid no process has",
    Finding.EXITED_PID: "for a process that exited (and was reaped) while it was loaded",
}
# Bytes the kernel log escaped (\xNN), or SLUB's poison of freed memory (0x6b, 'k') read as text.
_GARBAGE = re.compile(r"\\x[0-9a-f]{2}|k{16}")


def steps(letter: str, pid_param: str, timeout: float) -> tuple[Step, Step]:
    """The missing-pid and exited-pid steps of module `letter`."""
    seconds = min(timeout, STEP_TIMEOUT)
    missing = Step(
        Module(letter),
        ("/bin/sh", "-c", f"test ! -e /proc/{MISSING_PID}"),
        timeout=seconds,
        pid_param=pid_param,
        pid_value=MISSING_PID,
        save=False,  # the main step's saved records (the oracle's) stay
    )
    exited = Step(Module(letter), ("/bin/true",), timeout=seconds, pid_param=pid_param, save=False)
    return missing, exited


def not_run(result: TraceResult | None) -> list[str]:
    """Why the pid steps cannot follow the main step (a note; none when they can): the VM is gone or the
    module did not load, unload or run cleanly, so what they showed would not be about a pid."""
    if result is None:
        why = "the VM was lost in the main step"
    elif result.insmod_status != 0:
        why = "the module did not load in the main step"
    elif result.rmmod_status != 0 or result.splats or not result.complete:
        why = "the module did not run and unload cleanly in the main step"
    else:
        return []
    return [f"{NOT_RUN}: {why}"]


def not_shown(found: Sequence[CheckFinding], ran: Sequence[tuple[TraceResult | None, VmLost | None]]) -> list[str]:
    """A note for each pid step that ran and gave no finding, or did not run (the VM lost before it)."""
    have = {f.id for f in found}
    why = {
        Finding.MISSING_PID: f"the pid was not free in the guest (/proc/{MISSING_PID} was there)",
        Finding.EXITED_PID: "the module refused to load for the short-lived process",
    }
    out = []
    for index, kind in enumerate(KINDS):
        if kind not in have:
            reason = why[kind] if index < len(ran) else "the VM was lost in the step before it"
            out.append(f"{kind.value} was not checked: {reason}")
    return out


def split_console(console: Sequence[str]) -> list[list[str]]:
    """The console's lines per step: the first part up to the second step's note, then each later step's."""
    head = f"{notes.HOST_NOTE} step "
    starts = [i for i, ln in enumerate(console) if ln.lstrip(notes.NOTE_START).startswith(head)]
    bounds = [0, *starts[1:], len(console)]
    return [list(console[a:b]) for a, b in itertools.pairwise(bounds)]


def finding(
    kind: Finding,
    result: TraceResult | None,
    lost: VmLost | None,
    console: Sequence[str],
    *,
    name: str,
    with_source: Callable[[CheckFinding], CheckFinding],
) -> CheckFinding | None:
    """What one pid step showed: an error finding (a splat, a lost VM, rmmod failing, garbage), an info
    finding (handled), or None (the step could not show it: the pid was not free)."""
    what = f"{name} {_WHAT[kind]}"
    splat = judge.splat_finding(console, name) or (
        judge.splat_finding(result.kernel_messages, name) if result is not None and result.splats else None
    )
    if splat is not None:
        splat = with_source(splat)
        where = f" at {splat.source_line}" if splat.source_line else ""
        message = (
            f"{what}: the kernel reported a bug{where}: {splat.evidence[0][:80]}; "
            "a pid may have no task (pid_task() gives NULL): check it, and hold a reference to a task you keep"
        )
        return _error(kind, splat.stage, message, splat.evidence, splat.source_line)
    if lost is not None:
        stage = judge.stage_at(console, len(console))
        hang = "hung and was killed" if isinstance(lost, VmTimeout) else "died"
        tail = tuple(ln.strip() for ln in console if "Kernel panic" in ln or "stall" in ln or "lockup" in ln)
        return _error(kind, stage, f"{what}: the VM {hang} in stage {stage}", tail or (str(lost).splitlines()[0],))
    assert result is not None
    return _outcome(kind, result, what, name)


def _outcome(kind: Finding, result: TraceResult, what: str, name: str) -> CheckFinding | None:
    lines = result.kernel_messages  # no oracle in these steps: the log is the module's and the kernel's
    own = [ln for ln in lines if ln.startswith(f"{name}: ")] or lines
    if kind is Finding.MISSING_PID and result.workload_status not in (0, None):
        return None  # /proc/MISSING_PID was there: this step shows nothing
    if result.insmod_status not in (0, None):
        if kind is Finding.EXITED_PID:
            return None  # it refused a live process here, but loaded for one in the main step: not a pid matter
        said = f": {own[0]}" if own else " (it printed no reason: say why in the kernel log)"
        return _info(kind, "load", f"{what}: refused to load (insmod status {result.insmod_status}){said}", own[:1])
    if result.rmmod_status != 0:
        message = f"{what}: rmmod failed (status {result.rmmod_status}): the exit function must unload cleanly"
        return _error(kind, "unload", message, tuple(own[-3:]))
    garbage = [ln for ln in own if _GARBAGE.search(ln)]
    if garbage:
        message = f"{what}: it printed garbage (bytes that are not text, or freed memory): it read a task gone"
        return _error(kind, "unload", message, tuple(garbage[:3]))
    return _info(kind, "unload", f"{what}: loaded and unloaded cleanly ({len(own)} line(s) printed)", own[-1:])


def _error(kind: Finding, stage: str, message: str, evidence: Sequence[str], source: str = "") -> CheckFinding:
    return CheckFinding(kind, "error", stage, message, tuple(evidence), source_line=source)


def _info(kind: Finding, stage: str, message: str, evidence: Sequence[str]) -> CheckFinding:
    return CheckFinding(kind, "info", stage, message, tuple(evidence))
