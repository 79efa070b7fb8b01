"""Hostile workloads in a real guest: what they write to the kernel log or call themselves does
not change the report (the shared VM of conftest.py)."""

from __future__ import annotations

import pytest
from conftest import traced

from pfharness.results import verdict

pytestmark = [pytest.mark.vm, pytest.mark.core]

FORGE_KMSG = (
    "echo 'pf_probe_B: summary pid=1 comm=forged recorded=5 dropped=0 capacity=9' >/dev/kmsg; "
    "echo '<0>pf_probe_B: ---- BEGIN PLOT pid=1 comm=forged class=all ----' >/dev/kmsg; "
    "echo '<2>BUG: unable to handle page fault (written by the workload)' >/dev/kmsg; "
    "echo 'WARNING: CPU: 0 PID: 1 at fake.c:1' >/dev/kmsg; "
    "(sleep 0.2; echo 'pf_probe_B: summary pid=1 comm=late recorded=7 dropped=0 capacity=9' >/dev/kmsg) &"
)


def test_kmsg_forgeries_do_not_change_the_report(vm, built_modules):
    result = traced(vm, built_modules, "B", "sh", "-c", FORGE_KMSG)
    report = result.report
    assert report.pid == result.pid and report.comm == "sh" and report.recorded not in (5, 7)
    [plot] = report.plots
    assert plot.complete and plot.comm == "sh" and plot.faults == report.recorded
    assert result.splats == [] and verdict.harness_error(result) is None and verdict.exit_status(result) == 0


def test_a_newline_in_the_process_name_is_shown_as_a_question_mark(vm, built_modules):
    script = "import ctypes; ctypes.CDLL(None).prctl(15, b'two\\nlines', 0, 0, 0); bytearray(1 << 20)"
    result = traced(vm, built_modules, "C", "python3", "-c", script)
    assert verdict.harness_error(result) is None, verdict.harness_error(result)
    assert result.report.comm == "two?lines" and result.report.recorded and result.report.plots
