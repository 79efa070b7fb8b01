"""The summary's reconciliation: the kernel's own count of the traced process's faults (its threads' min_flt +
maj_flt as they exited, module line "reconcile") beside what the module saw, the difference explained; and the
children it created that were not traced (follow=0)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .module_output import ModuleReport


@dataclass(frozen=True)
class Reconciliation:
    """kernel_faults == recorded + pre_arm - after_count - remote + unexplained (unexplained 0 when it adds up)."""

    tgid: int
    exited: bool  # False: the process had not exited at unload, there is no kernel count
    kernel_faults: int
    recorded: int  # the faults the module saw for the process (stored and dropped)
    pre_arm: int  # the held process's faults before the module was armed (pre_exec_faults), not recorded
    after_count: int  # faults the module saw after the last thread's count was taken
    remote: int  # faults other processes made in its memory: recorded, counted in those processes
    unexplained: int
    untraced_children: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def reconcile(report: ModuleReport, pre_exec_faults: int | None) -> Reconciliation | None:
    """The reconciliation of a B or C run with follow=0, or None when the module printed no "reconcile" line."""
    r = report.reconcile
    if r is None or report.seen is None:
        return None
    remote = report.counts.remote if report.counts is not None else 0
    pre = pre_exec_faults or 0
    after = report.seen - r.seen_at_exit if r.exited else 0
    unexplained = r.kernel_faults - (report.seen - after - remote + pre) if r.exited else 0
    return Reconciliation(
        r.tgid, r.exited, r.kernel_faults, report.seen, pre, after, remote, unexplained, r.untraced_children
    )


def summary_lines(rec: Reconciliation | None) -> list[str]:
    """The summary's `reconcile:` and `untraced:` lines."""
    if rec is None:
        return []
    if not rec.exited:
        lines = [f"reconcile:       pid {rec.tgid} had not exited when the module was unloaded: no kernel count"]
    else:
        parts = [f"+ {rec.pre_arm} before the module was armed: pre_exec_faults"] if rec.pre_arm else []
        if rec.after_count:
            parts.append(f"- {rec.after_count} recorded after the kernel's count was taken, at exit")
        if rec.remote:
            parts.append(f"- {rec.remote} by other processes in its memory, counted in theirs")
        explained = f" ({'; '.join(parts)})" if parts else ""
        verdict = "equal" if rec.unexplained == 0 else f"{rec.unexplained:+d} not explained"
        lines = [
            f"reconcile:       kernel counted {rec.kernel_faults} faults for pid {rec.tgid}, "
            f"recorded {rec.recorded}{explained}: {verdict}"
        ]
    if rec.untraced_children:
        n = rec.untraced_children
        was = "child process was" if n == 1 else "child processes were"
        lines.append(f"untraced:        {n} {was} created and not traced: use --follow")
    return lines
