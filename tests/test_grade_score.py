"""Points by the rubric (grade/score.py, grade/module_checks.py) over module-check reports recorded from real
`pfharness check` runs of generated submissions (tests/data/grade, grade_class.py), and over constructed
ones for what a run cannot be made to show on demand (a lost VM, a harness failure)."""

from __future__ import annotations

import csv
import dataclasses
import json
from datetime import datetime, timezone

import grade_reports as g
import pytest
from typer.testing import CliRunner

from pfharness.check.findings import Finding
from pfharness.check.model import CheckFinding, CheckReport
from pfharness.cli import app
from pfharness.grade import gradebook, report_txt, rubric, run, score, student_dir
from pfharness.grade.checkpatch import Counts
from pfharness.grade.model import Gradebook, StudentGrade

RUBRIC = rubric.load(None)
CLEAN = Counts(0, 0, ("pf_probe_A.c",))
NO_C = tuple(n for n in g.ALL_FILES if n != "pf_probe_C.c")


def scored(case: str | CheckReport | None, files=g.ALL_FILES, late: int = 0, r=RUBRIC, **kw):
    report = g.recorded(case) if isinstance(case, str) else case
    late_text = f"{late} day(s) late" if late else ""
    measured = score.Measured(
        g.unpacked(files, **kw), report, "nothing could be unpacked" if report is None else "",
        g.facts(), CLEAN, late, late_text,
    )  # fmt: skip
    items, total = score.score(r, measured)
    return {i.item: i for i in items}, total


def points(items) -> dict[str, float]:
    return {k: i.points for k, i in items.items()}


def test_the_projects_own_hand_in_gets_100_with_cs_extra_noted():
    items, total = scored("dist")
    assert points(items) == {"a": 25, "b": 40, "report": 20, "clean": 15, "c": 15} and total == 100
    assert items["c"].extra and items["c"].evidence[-1] == "extra: 15 points, 0 used to offset the 0 deducted"
    assert all(i.feedback.endswith("Every check passed.") for i in items.values())
    assert len(items["b"].evidence) == len(next(i for i in RUBRIC.items if i.id == "b").checks)


def test_a_module_with_another_pid_parameter_loses_tpid_and_what_it_did_not_trace():
    items, total = scored("wrong-param-name", NO_C)
    assert points(items) == {"a": 13, "b": 40, "report": 20, "clean": 15, "c": 0} and total == 88
    lost = {line.split(" ")[0] for line in items["a"].evidence if " 0/" in line}
    assert lost == {"tpid", "traces-target", "threads"}
    assert "process_id" in items["a"].feedback and "(-3)" in items["a"].feedback
    assert items["c"].evidence[0] == "builds 0/2: pf_probe_C.c was not handed in"


def test_extra_points_offset_deductions_and_never_lift_the_total_above_100():
    items, total = scored("wrong-param-name")
    assert items["a"].points == 13 and items["c"].points == 15 and total == 100
    assert items["c"].evidence[-1] == "extra: 15 points, 12 used to offset the 12 deducted"


def test_a_70_by_30_plot_loses_the_size_only():
    items, total = scored("plot-70x30", NO_C)
    assert points(items)["b"] == 35 and total == 95
    assert "plot-size 0/5: the plot is 70 rows x 30 columns" in items["b"].evidence[4]


def test_late_days_count_every_part_of_24_hours():
    deadline = datetime(2020, 3, 6, tzinfo=timezone.utc)
    assert score.late_days("2020-03-06T00:00:00+00:00", deadline) == 0
    assert score.late_days("2020-03-05T23:00:00Z", deadline) == 0
    assert score.late_days("2020-03-06T00:00:01+00:00", deadline) == 1
    assert score.late_days("2020-03-07T12:00:00+00:00", deadline) == 2
    assert score.late_days("2020-03-06T00:00:00-05:00", deadline) == 1  # five hours late


def test_the_late_penalty_is_deducted_after_the_cap_unless_the_rubric_lets_extra_offset_it():
    items, total = scored("dist", late=2)
    assert items["late"].points == -20 and items["late"].max == 0 and total == 80
    offsetting = dataclasses.replace(RUBRIC, offset_late_by_extra=True)
    _items, total = scored("dist", late=2, r=offsetting)
    assert total == 95  # the 15 extra points offset 15 of the 20
    _items, total = scored(None, late=3)
    assert total == 0  # never below 0


def test_nothing_unpacked_scores_nothing_and_says_why():
    items, total = scored(None, files=())
    assert total == 0 and all(i.points == 0 for i in items.values())
    assert items["a"].evidence[0] == "builds 0/5: pf_probe_A.c was not handed in"
    assert items["report"].evidence[0] == "present 0/5: report.txt was not handed in"


def test_a_missing_report_names_what_was_handed_in_instead():
    files = tuple(n for n in g.ALL_FILES if n != "report.txt")
    items, total = scored("dist", files, near_misses={"report.txt": ("report.pdf",)})
    assert items["report"].points == 0 and "report.pdf instead" in items["report"].evidence[0]
    assert items["clean"].points == 13 and "misnamed: report.txt as report.pdf" in items["clean"].evidence[3]
    assert total == 93  # 22 lost, C's 15 extra points offset 15 of them


def _with(report: CheckReport, module: str, *found: CheckFinding) -> CheckReport:
    modules = tuple(
        dataclasses.replace(m, findings=(*m.findings, *found)) if m.module == module else m for m in report.modules
    )
    return dataclasses.replace(report, modules=modules)


def test_a_module_that_does_not_load_gets_no_run_points():
    probe = CheckFinding(Finding.PROBE_SYMBOL, "error", "load", "register_kprobe failed: probe handle_mm_fault")
    items, _total = scored(_with(g.recorded("dist"), "pf_probe_A", probe), NO_C)
    assert items["a"].points == 8  # builds 5, tpid 3
    assert "loads 0/3: register_kprobe failed" in items["a"].evidence[1]
    assert all("not run: the module did not load" in e for e in items["a"].evidence[3:])


def test_a_splat_at_unload_costs_unloads_not_no_splat():
    splat = CheckFinding(Finding.KERNEL_SPLAT, "error", "unload", "BUG at unload", source_line="pf_probe_B.c:42")
    items, _total = scored(_with(g.recorded("dist"), "pf_probe_B", splat), NO_C)
    assert items["b"].points == 37
    assert items["b"].evidence[-1] == "unloads 0/3: BUG at unload (pf_probe_B.c:42)"


def test_a_build_that_fails_costs_every_module_and_names_the_error():
    failed = CheckFinding(Finding.BUILD_FAILED, "error", "build", "the module does not build for 6.1")
    report = CheckReport("6.1.0-57-amd64", (), (failed,))
    items, total = scored(report, NO_C)
    assert items["a"].points == items["b"].points == 0
    assert items["b"].evidence[0] == "builds 0/5: the module does not build for 6.1"
    assert items["clean"].points == 9  # no module ran: no printk-flood or pid points; no warnings, checkpatch clean
    assert items["clean"].evidence[-1] == "exited-pid 0/2: no module ran"
    assert total == 29


def test_warnings_and_checkpatch_cost_per_count():
    warned = CheckFinding(Finding.BUILD_WARNING, "warning", "build", "the compiler warned 2 time(s): fix them", ("w",))
    report = dataclasses.replace(g.recorded("dist"), findings=(warned,))
    measured = score.Measured(g.unpacked(NO_C), report, "", g.facts(), Counts(2, 3, ("pf_probe_A.c",)))
    items, _total = score.score(RUBRIC, measured)
    clean = {i.item: i for i in items}["clean"]
    assert clean.points == 15 - 2 - 2.5
    assert clean.evidence[:2] == (
        "build-warnings 1/3: 2 compiler warning(s): w (-1 each)",
        "checkpatch 1.5/4: checkpatch: 2 errors, 3 warnings (-0.5 each)",
    )


def test_a_short_report_gets_its_measures_share():
    text = "We traced sysbench cpu and a kernel build. " * 10  # 80 words, two workloads, no plot
    measured = score.Measured(g.unpacked(NO_C), g.recorded("dist"), "", g.facts(text), CLEAN)
    items, _total = score.score(RUBRIC, measured)
    report = {i.item: i for i in items}["report"]
    assert report.evidence[1:] == (
        "length 2/5: 80 words of prose (at least 200)",
        "workloads 4/6: 2 kinds of application named: kernel build, sysbench cpu",
        "plots 0/4: 0 plot(s) in the report (at least 1)",
    )
    assert report.points == 5 + 2 + 4 and "report.txt" in report.flags[0]


def test_a_report_that_is_not_text_gets_nothing():
    measured = score.Measured(g.unpacked(NO_C), g.recorded("dist"), "", report_txt.measure_bytes(b"%PDF-1.4 x"), CLEAN)
    report = {i.item: i for i in score.score(RUBRIC, measured)[0]}["report"]
    assert report.points == 0 and "PDF" in report.evidence[0], report.evidence


def test_a_harness_failure_is_told_from_the_students(tmp_path):
    dist = g.recorded("dist")
    note = "the oracle (pfh_oracle) did not load (insmod status 1): a-*, plot-* and c-split are not judged"
    oracle = dataclasses.replace(dist, modules=(dataclasses.replace(dist.modules[0], notes=(note,)),))
    assert run.harness_failure(oracle) == "pf_probe_A: the oracle (pfh_oracle) did not load (insmod status 1)"
    assert run.harness_failure(dist) == ""
    console = tmp_path / "console.log"
    console.write_text("##PFH-HOST## boot release=6.1\n")
    lost = CheckFinding(Finding.VM_LOST, "error", "load", "the VM died")
    never = _with(
        dataclasses.replace(dist, modules=(dataclasses.replace(dist.modules[1], transcript=str(console)),)),
        "pf_probe_B",
        lost,
    )
    assert "lost before its guest came up" in run.harness_failure(never)
    console.write_text("##PFH-HOST## boot release=6.1\nPFH-READY\n[ 1.0] BUG: oops\n")
    assert run.harness_failure(never) == ""  # the guest was up: the student's module took it down


def test_a_student_grade_is_read_back_only_with_the_same_key(tmp_path):
    items, total = scored("dist")
    grade = StudentGrade(
        "alice", "alice.tar.gz", "d" * 64, "2020-03-05T12:00:00+00:00", tuple(items.values()), total, 100
    )
    key = {"digest": "d" * 64, "pfharness": "0.2.0", "kernel": "6.1.0-57-amd64", "rubric": "r"}
    student_dir.write_grade(tmp_path, key, grade)
    assert student_dir.read_grade(tmp_path, key) == grade
    assert student_dir.read_grade(tmp_path, {**key, "kernel": "7.2"}) is None
    student_dir.write_grade(tmp_path, key, dataclasses.replace(grade, harness_error="QEMU would not start"))
    assert student_dir.read_grade(tmp_path, key) is None  # graded again next run
    (tmp_path / student_dir.GRADE_FILE).write_text("{not json")
    assert student_dir.read_grade(tmp_path, key) is None


def test_the_gradebook_csv_has_a_row_per_item_and_the_total(tmp_path):
    items, total = scored("plot-70x30", NO_C)
    grade = StudentGrade("bob", "bob.tar.gz", "d" * 64, "", tuple(items.values()), total, 100)
    failed = StudentGrade("carol", "carol.tar.gz", "e" * 64, "", (), 0, 100, harness_error="QEMU would not start")
    book = Gradebook("0.2.0", "6.1.0-57-amd64", "default", (grade, failed))
    gradebook.write(tmp_path, book)
    with (tmp_path / "gradebook.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["student", "item", "points", "max", "evidence"]
    assert rows[2][:4] == ["bob", "b", "35", "40"] and rows[2][4].startswith("builds 5/5: built for ")
    assert " | plot-size 0/5: the plot is 70 rows x 30 columns" in rows[2][4]
    assert rows[6][:4] == ["bob", "total", "95", "100"]
    assert rows[7] == ["carol", "harness_error", "", "100", "QEMU would not start"]
    assert Gradebook.from_json(json.loads((tmp_path / "gradebook.json").read_text())) == book


def test_plot_agreement_goes_in_quarters_of_its_points():
    dist = g.recorded("dist")
    b = dist.modules[1]
    shown = [{**s, "agreement": {**s["agreement"], "oracle_in_student": 0.5}} for s in b.figures["plots"]["shown"]]
    half = dataclasses.replace(b, figures={**b.figures, "plots": {**b.figures["plots"], "shown": shown}})
    items, _total = scored(dataclasses.replace(dist, modules=(dist.modules[0], half)), NO_C)
    assert "plot-agreement 3/6: the plot's marks agree 50% " in items["b"].evidence[7]  # 0.5 / 0.8: 2.5 quarters


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no tarball given"),
        (["nope.tar.gz"], "nope.tar.gz does not exist"),
        (["EMPTY"], "holds no tarball"),
        (["--deadline", "next friday", "T"], "--deadline 'next friday' is not a time"),
    ],
)
def test_the_grade_commands_usage_errors_are_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "EMPTY").mkdir()
    (tmp_path / "T").write_bytes(b"")
    result = CliRunner().invoke(app, ["grade", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
