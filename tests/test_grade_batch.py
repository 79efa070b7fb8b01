"""The batch (grade/run.py) without VMs: real tarballs, real unpacking, real scoring and files, with the
module check replaced at its one seam (check/run.check) by a harness failure, a student's source it cannot
take, or a recorded report. A harness failure is tried once more, recorded as harness_error, not scored,
and graded again by the next run; a graded submission is read back by the next run."""

from __future__ import annotations

import csv

import grade_class
import grade_reports as g
import pytest

from pfharness.check import run as check_run
from pfharness.errors import UsageError, VmLost
from pfharness.grade import rubric, run, student_dir

RELEASE = "6.1.0-57-amd64"


@pytest.fixture
def request_for(tmp_path, monkeypatch):
    monkeypatch.setenv("PFH_CHECKPATCH", str(tmp_path / "none"))  # checkpatch on 90 kB of C takes seconds

    def make(*submissions: grade_class.Submission) -> run.GradeRequest:
        tarballs, _times = grade_class.write(list(submissions), tmp_path / "in")
        return run.GradeRequest(tuple(tarballs), tmp_path / "out", rubric.load(None), RELEASE, jobs=2)

    return make


def _dist(student: str) -> grade_class.Submission:
    return grade_class.Submission(student, {}, 100, grade_class.dist_files(RELEASE))


def test_a_harness_failure_is_tried_again_recorded_and_graded_next_run(request_for, monkeypatch):
    request = request_for(_dist("alice"))
    calls = []

    def qemu_fails(req, events):
        calls.append(req.out)
        raise VmLost("the VM is no longer running (QEMU would not start)")

    monkeypatch.setattr(check_run, "check", qemu_fails)
    [alice] = run.grade_class(request).students
    assert len(calls) == 2 and alice.items == () and alice.total == 0
    assert alice.harness_error == "the VM is no longer running (QEMU would not start) (tried 2 time(s))"
    with (request.out / "gradebook.csv").open(newline="") as f:
        assert list(csv.reader(f))[1] == ["alice", "harness_error", "", "100", alice.harness_error]
    assert "Not graded yet: pfharness failed" in (request.out / alice.dir / "feedback.txt").read_text()

    monkeypatch.setattr(check_run, "check", lambda req, events: g.recorded("dist"))
    [alice] = run.grade_class(request).students
    assert alice.harness_error is None and alice.total == 100

    def must_not_run(req, events):
        raise AssertionError("a graded submission was graded again")

    monkeypatch.setattr(check_run, "check", must_not_run)
    [again] = run.grade_class(request).students
    assert again == alice


def test_a_source_the_check_cannot_take_is_the_students(request_for, monkeypatch):
    def not_a_module(req, events):
        raise UsageError("the source built foo, no pf_probe_A, B or C: name the module pf_probe_X (obj-m)")

    monkeypatch.setattr(check_run, "check", not_a_module)
    [bob] = run.grade_class(request_for(_dist("bob"))).students
    assert bob.harness_error is None
    items = {i.item: i for i in bob.items}
    assert (
        items["a"].evidence[0]
        == "builds 0/5: the source built foo, no pf_probe_A, B or C: name the module pf_probe_X (obj-m)"
    )
    assert bob.total == 20 + 2  # the report, and the files under their names


def test_two_tarballs_of_one_student_are_refused(tmp_path):
    (tmp_path / "alice.tar.gz").write_bytes(b"x")
    (tmp_path / "alice.tgz").write_bytes(b"y")
    request = run.GradeRequest(
        (tmp_path / "alice.tar.gz", tmp_path / "alice.tgz"), tmp_path / "out", rubric.load(None), RELEASE
    )
    with pytest.raises(UsageError, match=r"alice\.tar\.gz and alice\.tgz are both alice's"):
        run.grade_class(request)


def test_a_results_files_travel_with_it_to_the_grading_machine(request_for, monkeypatch, tmp_path):
    monkeypatch.setattr(check_run, "check", lambda req, events: g.recorded("dist"))
    request = request_for(_dist("carol"))
    [task] = run.tasks(request)
    graded = run.grade_one(task)  # as a worker runs it
    assert {"findings.json", "feedback.txt", "grade.json", "pf_probe_A.log"} <= set(graded.files)
    elsewhere = tmp_path / "grading-machine" / "carol"
    student_dir.place(elsewhere, graded.files)
    assert student_dir.read_grade(elsewhere, task.key) == graded.grade
    assert (elsewhere / "feedback.txt").read_bytes() == (task.directory / "feedback.txt").read_bytes()
    run.grade_class(request)
    assert (request.out / "index.html").is_file() and (request.out / "gradebook.json").is_file()
