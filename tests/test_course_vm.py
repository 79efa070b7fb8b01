"""The course profile's modules (the hand-in's, `pfharness dist`, docs/modules.md) in the shared VM: exact against
the workload's own fault count, every thread on two CPUs, access kinds, C's segments, and output the parser reads.
They keep no records file nor record dump, so the exactness is checked on what they print: the kretprobe's counts,
A's fault lines and the plots. What both profiles must do alike (bad parameters, unload under load, a zombie, a
full buffer) is tests/test_exact_and_safe.py's, parametrized by profile."""

from __future__ import annotations

import re

import pytest
from conftest import traced
from test_exact_and_safe import assert_exact, own_count, regions

from pfharness.results import output_format

pytestmark = [pytest.mark.vm, pytest.mark.core]

#: What the course modules print besides the shapes of output_format.LINES: the load line, the plot's title, its
#: Y-axis title, rows and X axis, the legend, the note on dropped faults (and the kernel's own taint line).
OTHER_LINES = re.compile(
    r"^(loading out-of-tree module taints kernel\.|tracing page faults of process \d+ \(.*\)|"
    r"Page faults of process .*|\s+page \(hex\)|.{14} [|].{70}[|]|"
    r" {15}\+-{70}\+|[ 0-9.]+|\s+time since the first fault \((?:ms|s)\)|legend: .*|"
    r"\d+ faults were dropped because the buffer was full: load with a larger max_records)$"
)


def unread_lines(lines: list[str]) -> list[str]:
    """The module's lines that are neither a shape the parser reads nor one of OTHER_LINES."""
    shapes = output_format.LINES.values()
    return [ln for ln in lines if not any(s.parse(ln) is not None for s in shapes) and not OTHER_LINES.match(ln)]


def assert_plots_read(report, classes: set[str]) -> None:
    """Every plot complete, 30 x 70 with a title and axis labels, nothing outside; its faults add up to the records."""
    assert {p.plot_class for p in report.plots} | set(report.empty_classes) == classes
    for plot in report.plots:
        assert plot.complete and plot.scale == "linear" and plot.outside == 0 and plot.title
        assert len(plot.rows) == output_format.PLOT_ROWS and {len(r) for r in plot.rows} == {output_format.PLOT_COLS}
        assert sorted(plot.y_labels) == [0, 10, 20, 29] and len(plot.x_labels) == 3
    assert sum(p.faults for p in report.plots) == report.recorded


@pytest.mark.parametrize("module", ["A", "B", "C"])
def test_course_modules_count_n_fresh_pages_exactly(vm, course_modules, programs, module):
    n = 300
    result = traced(vm, course_modules, module, programs["touch_pages"], n)
    r = result.report
    c = r.counts
    [(start, end)] = regions(result.workload_output)
    print(f"course {module}: N={n} own_count={own_count(result)} counts={c}")
    assert not unread_lines(r.lines), unread_lines(r.lines)
    if module == "A":
        assert c is not None and c.exact and c.remote == 0 and r.faults == c.completed == len(r.fault_addresses)
        assert c.completed == own_count(result) and set(r.fault_pids) == {result.pid}
        mine = [a >> 12 for a in r.fault_addresses if start <= a < end]
        assert mine == list(range(start >> 12, end >> 12)), "each page once, in address order"
        return
    assert_exact(result)
    assert_plots_read(r, {"all"} if module == "B" else {"code", "data", "other"})


def test_course_b_records_every_thread_on_two_cpus(vm, course_modules, programs):
    """T threads x P pages, faulting on both vCPUs at once: every fault counted once, none missed."""
    threads, pages = 4, 1500
    result = traced(vm, course_modules, "B", programs["touch_pages"], pages, threads)
    assert len(regions(result.workload_output)) == threads
    assert_exact(result)
    assert result.report.recorded >= threads * pages
    assert_plots_read(result.report, {"all"})


def test_course_b_counts_access_kinds_and_major_faults(vm, course_modules, programs):
    """Reads of a dropped file mapping (major), writes of anonymous memory, calls of code on fresh pages."""
    n = 12
    result = traced(vm, course_modules, "B", programs["kinds"], programs["kinds.dat"], n)
    c = result.report.counts
    print(f"course B kinds: counts={c} own_count={own_count(result)}")
    assert c.major >= n and c.exec >= n and c.write >= n and c.read >= n
    assert_exact(result)


def test_course_c_puts_each_segment_into_its_plot(vm, course_modules, programs):
    data_pages, stack_pages = 64, 120
    result = traced(vm, course_modules, "C", programs["segments"], data_pages, stack_pages)
    by_class = {p.plot_class: p.faults for p in result.report.plots}
    print(f"course C segments: plots {by_class}")
    assert data_pages <= by_class["data"] <= data_pages + 10
    assert 16 <= by_class["code"] <= 16 + 20
    assert by_class["other"] >= stack_pages
    assert result.exact() and sum(by_class.values()) == result.report.recorded == result.report.counts.completed
    assert [p.title for p in result.report.plots] == [
        f"Page faults of process {result.pid} (segments), {title}: virtual page number over time"
        for _, title in output_format.FAULT_CLASSES
    ]
    # one clock for the three (the code segment faults at start-up, the stack later: their own spans differ)
    assert len({p.t_span_ns for p in result.report.plots}) == 1
    assert len({tuple(p.x_labels) for p in result.report.plots}) == 1
