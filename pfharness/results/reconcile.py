"""The summary's reconciliation: the kernel's own count of the traced process's faults (its threads' min_flt +
maj_flt as they exited, module line "reconcile") beside what the module saw, the difference explained; with
--follow the same summed over the processes that exited (line "reconcile_tree"); and the children a process
created that were not traced (follow=0)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .module_output import ModuleReport, ReconcileTree


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
    processes: int = 1  # processes the counts are over: with --follow, those that exited (of `traced`)
    traced: int = 1  # processes traced (with --follow: those of the module's table)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def reconcile(report: ModuleReport, pre_exec_faults: int | None, tgid: int | None = None) -> Reconciliation | None:
    """The reconciliation of a B or C run, or None when the module printed no reconcile line."""
    if report.reconcile_tree is not None:
        return _tree(report.reconcile_tree, pre_exec_faults or 0, tgid or 0)
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


def _tree(t: ReconcileTree, pre_exec_faults: int, tgid: int) -> Reconciliation:
    """follow=1: the sums over the processes whose every thread had exited; pre_arm is the first process's."""
    pre = pre_exec_faults if t.root_exited else 0
    unexplained = t.kernel_faults - (t.seen_at_exit + pre - t.remote_untraced)
    return Reconciliation(
        tgid,
        t.exited > 0,
        t.kernel_faults,
        t.seen_at_exit,
        pre,
        0,
        t.remote_untraced,
        unexplained,
        0,
        processes=t.exited,
        traced=t.processes,
    )


def summary_lines(rec: Reconciliation | None) -> list[str]:
    """The summary's `reconcile:` and `untraced:` lines."""
    if rec is None:
        return []
    whose = f"pid {rec.tgid}" if rec.traced == 1 else f"the {rec.processes} processes that exited"
    if not rec.exited:
        what = f"pid {rec.tgid} had not" if rec.traced == 1 else f"none of the {rec.traced} traced processes had"
        lines = [f"reconcile:       {what} exited when the module was unloaded: no kernel count"]
    else:
        parts = [f"+ {rec.pre_arm} before the module was armed: pre_exec_faults"] if rec.pre_arm else []
        if rec.after_count:
            parts.append(f"- {rec.after_count} recorded after the kernel's count was taken, at exit")
        if rec.remote:
            parts.append(
                f"- {rec.remote} by {'other' if rec.traced == 1 else 'untraced'} processes in its memory, "
                "counted in theirs"
            )
        explained = f" ({'; '.join(parts)})" if parts else ""
        verdict = "equal" if rec.unexplained == 0 else f"{rec.unexplained:+d} not explained"
        lines = [
            f"reconcile:       kernel counted {rec.kernel_faults} faults for {whose}, "
            f"recorded {rec.recorded}{explained}: {verdict}"
        ]
        if rec.traced > rec.processes:
            running = rec.traced - rec.processes
            lines.append(
                f"                 {running} of {rec.traced} traced processes still ran at unload: not counted"
            )
    if rec.untraced_children:
        n = rec.untraced_children
        was = "child process was" if n == 1 else "child processes were"
        lines.append(f"untraced:        {n} {was} created and not traced: use --follow")
    return lines
