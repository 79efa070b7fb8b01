"""The process table a module prints with follow=1, read back: model, JSON and the text summary."""

from __future__ import annotations

from pfharness.results import module_output, text
from pfharness.results.model import TraceResult
from pfharness.step import TraceRequest

LOG = [
    "pf_probe_B: ---- BEGIN PROCESSES traced=25 table=24 overflow=1 untabled_faults=7 ----",
    "pf_probe_B: process tgid=130 ppid=120 faults=5000 exited=1 comm=cc1",
    "pf_probe_B: process tgid=120 ppid=99 faults=40 exited=0 comm=make with space",
    "pf_probe_B: process rest=22 faults=310",
    "pf_probe_B: ---- END PROCESSES ----",
    "pf_probe_B: summary pid=120 comm=make recorded=5357 dropped=0 capacity=1048576",
    "sh: process tgid=1 ppid=0 faults=1 exited=0 comm=forged",  # not the module's: ignored
]


def test_the_process_table_is_read_into_the_result():
    report = module_output.parse_module_output(LOG)
    table = report.process_table
    assert table is not None and table.complete
    assert (table.traced, table.table, table.overflow, table.untabled_faults) == (25, 24, 1, 7)
    assert table.processes == [
        module_output.Process(130, 120, 5000, True, "cc1"),
        module_output.Process(120, 99, 40, False, "make with space"),
    ]
    assert (table.rest_processes, table.rest_faults) == (22, 310)
    assert sum(p.faults for p in table.processes) + table.rest_faults + table.untabled_faults == report.recorded
    result = TraceResult(module="pf_probe_B", command=["make"], report=report)
    data = result.to_json()["processes"]
    assert data["traced"] == 25 and data["top"][0] == {
        "tgid": 130,
        "ppid": 120,
        "faults": 5000,
        "exited": True,
        "comm": "cc1",
    }
    assert data["rest"] == {"processes": 22, "faults": 310}
    assert any(
        "25 traced (follow), 1 without a line in the table (7 faults)" in line for line in text.summary_lines(result)
    )


def test_without_follow_there_is_no_table():
    report = module_output.parse_module_output(LOG[5:])
    assert report.process_table is None
    assert TraceResult(module="pf_probe_B", command=["x"], report=report).to_json()["processes"] is None


def test_a_line_outside_the_table_is_not_taken_for_one():
    report = module_output.parse_module_output(["pf_probe_A: process tgid=5 ppid=1 faults=1 exited=0 comm=x"])
    assert report.process_table is None


def test_follow_sets_the_module_parameter_once():
    argv = TraceRequest("B", None, ("true",), follow=True, params=("follow=1",)).argv("tok", proto="/dev/null")
    assert argv.count("follow=1") == 1
    assert "follow=1" not in TraceRequest("B", None, ("true",)).argv("tok", proto="/dev/null")


def test_the_study_lists_the_top_processes_and_sums_the_others():
    from pfharness import study

    result = TraceResult(module="pf_probe_B", command=["make"], report=module_output.parse_module_output(LOG))
    lines = study.process_lines(result, top=1)
    assert lines[0].startswith("processes traced: 25 (table overflow 1)")
    assert "cc1" in lines[1] and "5000" in lines[1]
    assert lines[2] == "  the other 24 processes: 357 faults"  # make (40) + the rest (22, 310) + overflow (1, 7)
