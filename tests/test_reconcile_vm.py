"""The summary reconciles itself (issue 27): the kernel's own count of the traced process's faults, taken by
B and C at its exit, equals what they recorded plus the faults before arming (pre_exec_faults), for the
oracle programs in tests/programs; and the children a process creates without --follow are counted."""

from __future__ import annotations

import re

import pytest
from conftest import traced

from pfharness.results import text as text_output

pytestmark = [pytest.mark.vm]


def rusage_faults(output: str) -> list[int]:
    return [int(n) for n in re.findall(r"rusage_faults=(\d+)", output)]


def assert_reconciled(result) -> None:
    rec = result.reconciliation()
    assert rec is not None and rec.exited, result.report.lines
    assert rec.tgid == result.pid
    assert rec.kernel_faults == rec.recorded + result.pre_exec_faults - rec.after_count - rec.remote
    assert rec.unexplained == 0, rec
    line = next(ln for ln in text_output.summary_lines(result) if ln.startswith("reconcile:"))
    assert line.endswith(": equal"), line
    print(f"{result.module} {result.command[0].rsplit('/', 1)[-1]}: {line}")


@pytest.mark.parametrize("module", ["B", "C"])
def test_touch_pages_kernel_count_is_recorded_plus_pre_arm(vm, built_modules, programs, module):
    result = traced(vm, built_modules, module, programs["touch_pages"], 300)
    assert_reconciled(result)
    rec = result.reconciliation()
    # touch_pages prints its own count at its very end, with no fault after (exact_end.h): the same number.
    assert rusage_faults(result.workload_output) == [rec.kernel_faults]
    assert rec.after_count == 0 and rec.untraced_children == 0


def test_threads_are_summed_into_the_process_count(vm, built_modules, programs):
    result = traced(vm, built_modules, "B", programs["touch_pages"], 500, 4)
    assert_reconciled(result)
    assert rusage_faults(result.workload_output) == [result.reconciliation().kernel_faults]


def test_tree_without_follow_reconciles_and_names_its_untraced_child(vm, built_modules, programs):
    result = traced(vm, built_modules, "C", programs["tree"], "fork", 50, 40, 30)
    assert_reconciled(result)
    assert result.reconciliation().untraced_children == 1  # level 0 creates level 1; level 2 is not its child
    summary = text_output.summary_lines(result)
    assert "untraced:        1 child process was created and not traced: use --follow" in summary


def test_forker_counts_every_child(vm, built_modules, programs):
    result = traced(vm, built_modules, "B", programs["forker"], 7)
    assert_reconciled(result)
    assert result.reconciliation().untraced_children == 7
    assert result.to_json()["reconcile"]["untraced_children"] == 7


def test_sh_c_gzip_reports_one_untraced_child(vm, built_modules):
    result = traced(vm, built_modules, "C", "sh", "-c", "gzip -c /etc/services > /dev/null")
    assert result.workload_status == 0, result.workload_output
    assert_reconciled(result)
    assert "untraced:        1 child process was created and not traced: use --follow" in text_output.summary_lines(
        result
    )


def assert_tree_reconciled(result, processes: int) -> None:
    rec = result.reconciliation()
    assert rec is not None and rec.exited, result.report.lines
    assert (rec.traced, rec.processes) == (processes, processes), rec
    assert rec.kernel_faults == rec.recorded + result.pre_exec_faults - rec.remote
    assert rec.unexplained == 0, rec
    line = next(ln for ln in text_output.summary_lines(result) if ln.startswith("reconcile:"))
    whose = f"pid {result.pid}" if processes == 1 else f"the {processes} processes that exited"
    assert f"faults for {whose}, recorded" in line and line.endswith(": equal"), line
    print(f"{result.module} follow: {line}")


@pytest.mark.parametrize("mode", ["fork", "exec", "vfork"])
def test_tree_with_follow_reconciles_every_process(vm, built_modules, programs, mode):
    """--follow: each process's own count is taken at its exit, summed over the tree (line reconcile_tree)."""
    result = traced(vm, built_modules, "B", programs["tree"], mode, 50, 40, 30, params=("follow=1",))
    assert_tree_reconciled(result, 3)
    # Each level prints its getrusage count shortly before its end: the kernel's sum is at least theirs.
    assert len(rusage_faults(result.workload_output)) == 3
    assert sum(rusage_faults(result.workload_output)) <= result.reconciliation().kernel_faults


def test_sh_c_gzip_with_follow_counts_the_child_too(vm, built_modules):
    result = traced(vm, built_modules, "C", "sh", "-c", "gzip -c /etc/services > /dev/null", params=("follow=1",))
    assert result.workload_status == 0, result.workload_output
    assert_tree_reconciled(result, 2)


def test_threads_with_follow_are_counted_down_to_the_last(vm, built_modules, programs):
    """Each thread is counted up at its creation and down at its exit: the last closes the process's count."""
    result = traced(vm, built_modules, "C", programs["touch_pages"], 500, 4, params=("follow=1",))
    assert_tree_reconciled(result, 1)
    assert rusage_faults(result.workload_output) == [result.reconciliation().kernel_faults]
