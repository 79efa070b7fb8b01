"""`pfharness grade` over a class of generated submissions (grade_class.py), end to end: real tarballs, real
unpacking, the real module check in a fresh VM per module, the default rubric. Each submission must get its
expected points per item; the student's directory holds its evidence; a second run reads every grade back.

`make test` grades the core of the class (grade_class.CORE submissions: the project's own hand-in, a late
one, one without report.txt, a broken B, a B that does not build, a file that is not a tarball), about three
minutes with --jobs 2; PFH_GRADE_CLASS=full grades the whole class."""

from __future__ import annotations

import json
import os
import time

import grade_class
import pytest
from typer.testing import CliRunner

from pfharness.cli import app
from pfharness.grade.model import Gradebook

pytestmark = pytest.mark.vm

FULL = os.environ.get("PFH_GRADE_CLASS") == "full"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded once: (its submissions, the output directory, the gradebook, seconds taken)."""
    submissions = grade_class.the_class()[: None if FULL else grade_class.CORE]
    base = tmp_path_factory.mktemp("grade")
    _tarballs, times = grade_class.write(submissions, base / "in")
    out = base / "out"
    args = ["grade", str(base / "in"), "--out", str(out), "--jobs", "2", "--deadline", grade_class.DEADLINE]
    args += ["--times", str(times)]
    started = time.monotonic()
    result = CliRunner().invoke(app, args)
    seconds = time.monotonic() - started
    assert result.exit_code == 0, result.output
    book = Gradebook.from_json(json.loads((out / "gradebook.json").read_text()))
    return submissions, out, book, seconds, args


def test_each_submission_gets_its_points_per_item(graded):
    submissions, _out, book, seconds, _args = graded
    got = {g.student: g for g in book.students}
    assert sorted(got) == sorted(s.student for s in submissions)
    for s in submissions:
        grade = got[s.student]
        points = {i.item: i.points for i in grade.items if i.item != "late" or i.points}
        evidence = {i.item: i.evidence for i in grade.items}
        assert points == s.points, (s.student, evidence)
        assert grade.total == s.total, s.student
        assert grade.harness_error is None
    print(f"graded {len(submissions)} submissions in {seconds:.0f} s")


def test_the_projects_hand_in_notes_cs_extra_and_has_its_evidence(graded):
    _subs, out, book, _s, _args = graded
    dist = next(g for g in book.students if g.student == "dist")
    c = next(i for i in dist.items if i.item == "c")
    assert c.extra and c.evidence[-1] == "extra: 15 points, 0 used to offset the 0 deducted"
    folder = out / dist.dir
    for name in ("build.log", "pf_probe_A.log", "findings.json", "feedback.txt", "grade.json"):
        assert (folder / name).is_file(), name
    plot = (folder / "pf_probe_B.plot.txt").read_text()
    assert "BEGIN PLOT" in plot or "Page faults" in plot
    assert len([ln for ln in plot.splitlines() if ln.startswith("|") or "|" in ln]) >= 30
    assert (folder / "pf_probe_B.oracle.png").read_bytes()[:4] == b"\x89PNG"
    assert dist.plots["B"] == {
        "student": "students/dist/pf_probe_B.plot.txt",
        "oracle": "students/dist/pf_probe_B.oracle.png",
    }
    feedback = (folder / "feedback.txt").read_text()
    assert "Total: 100 of 100" in feedback and "Every check passed." in feedback


def test_the_late_and_the_broken_ones_say_why_in_their_feedback(graded):
    _subs, out, book, _s, _args = graded
    late = (out / "students" / "late" / "feedback.txt").read_text()
    assert "2 day(s) late" in late and "-20 points" in late
    broken = (out / "students" / "plot-70x30" / "feedback.txt").read_text()
    assert "- plot-size (-5): the plot is 70 rows x 30 columns" in broken
    api = (out / "students" / "api-fault-handler" / "feedback.txt").read_text()
    assert "fault_handler" in api and (out / "students" / "api-fault-handler" / "build.log").is_file()
    junk = next(g for g in book.students if g.student == "not-a-tarball")
    assert "not-a-tarball" in {f.id for f in junk.findings}
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert rows[0] == "student,item,points,max,evidence" and any(r.startswith("late,total,80,100,") for r in rows)


def test_a_second_run_reads_every_grade_back(graded):
    _subs, out, book, _s, args = graded
    started = time.monotonic()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 20  # no VM booted
    again = Gradebook.from_json(json.loads((out / "gradebook.json").read_text()))
    assert again == book


def test_a_hostile_tarball_writes_nothing_outside_its_directory(graded):
    _subs, out, book, _s, _args = graded
    if not FULL:
        pytest.skip("the traversal submission is graded with PFH_GRADE_CLASS=full")
    assert not list(out.parent.rglob("escaped.txt"))
    traversal = next(g for g in book.students if g.student == "traversal")
    assert "path-traversal" in {f.id for f in traversal.findings}, traversal.findings


def test_a_module_whose_init_hangs_costs_its_student_and_is_not_retried(tmp_path, monkeypatch):
    """init-hangs spins in its init function once the guest is up: insmod never returns and the step is killed
    at --timeout. That is the student's (vm-lost and the kernel's stall in stage load: A's loads and every check
    after it, the kernel's soft lockup or stall as evidence), graded once, never a harness error tried again."""
    from pfharness.grade import run as grade_run

    attempts = []
    grade_one = grade_run.grade_one

    def counted(task):
        attempts.append(task.student)
        return grade_one(task)

    monkeypatch.setattr(grade_run, "grade_one", counted)
    [sub] = [s for s in grade_class.the_class() if s.student == "init-hangs"]
    grade_class.write([sub], tmp_path / "in")
    out = tmp_path / "out"
    args = ["grade", str(tmp_path / "in"), "--out", str(out), "--jobs", "1", "--timeout", "40"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    [grade] = Gradebook.from_json(json.loads((out / "gradebook.json").read_text())).students
    assert attempts == ["init-hangs"] and grade.harness_error is None
    items = {i.item: i for i in grade.items}
    assert {k: i.points for k, i in items.items()} == sub.points, items["a"].evidence
    loads = items["a"].evidence[1]
    assert loads.startswith("loads 0/3: the kernel reported a bug in stage load: "), loads
    assert "soft lockup" in loads or "stall" in loads
    assert "pf_probe_A.c:" in loads and "pf_probe_init" in loads
    assert "not run: the module did not load" in items["a"].evidence[-1]
