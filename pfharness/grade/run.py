"""`pfharness grade`: the batch. For each tarball: unpack it into OUT/students/<student>/, run the module check
there (one fresh VM per module), measure, score by the rubric, write the student's directory; then the
gradebook (OUT/gradebook.csv and .json). A submission already graded with the same tarball, pfharness,
kernel and rubric is read back, not graded again. A failure of pfharness itself (a PfhError or OSError that
is not the student's doing) is tried again once (execute.run_tasks), then recorded as harness_error, not
scored, and graded again next run."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from .. import __version__
from ..check import run as check_run
from ..check.findings import Finding
from ..check.model import CheckReport
from ..errors import PfhError, UsageError
from ..pipeline.events import Events
from ..values import Accelerator
from . import checkpatch, execute, gradebook, names, page, report_txt, score, student_dir, unpack
from .model import Gradebook, StudentGrade, Unpacked
from .rubric import Rubric

STUDENTS = "students"
SOURCES = ("pf_probe_A.c", "pf_probe_B.c", "pf_probe_C.c")


@dataclass(frozen=True)
class GradeRequest:
    """What `pfharness grade` was asked (the kernel and the rubric already resolved)."""

    tarballs: tuple[Path, ...]
    out: Path
    rubric: Rubric
    kernel_release: str
    jobs: int = 1
    deadline: datetime | None = None
    times: Mapping[str, str] = field(default_factory=dict)  # student -> ISO 8601 submission time (--times)
    scheduler: str | None = None
    accel: Accelerator = Accelerator.auto
    timeout: float = 120.0  # seconds for one module's step


@dataclass(frozen=True)
class Task:
    """One submission to grade (picklable: a Dask worker may run it)."""

    tarball: Path
    student: str
    directory: Path  # OUT/students/<student>
    out: Path  # OUT: the student's paths in the grade are relative to it
    key: Mapping[str, str]  # the resume key: digest, pfharness version, kernel release, rubric
    rubric: Rubric
    kernel_release: str
    deadline: datetime | None
    submitted: str | None  # from --times, else the tarball's own time (unpack)
    accel: Accelerator
    timeout: float


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def tasks(request: GradeRequest) -> list[Task]:
    """One task per tarball; two tarballs of one student are a UsageError naming both."""
    seen: dict[str, Path] = {}
    out = []
    rubric_digest = hashlib.sha256(repr(replace(request.rubric, source="")).encode()).hexdigest()[:16]
    for tarball in request.tarballs:
        student = names.student_of(tarball.name)
        if student in seen:
            raise UsageError(f"{seen[student].name} and {tarball.name} are both {student}'s: grade one of them")
        seen[student] = tarball
        try:
            key = {"digest": digest(tarball), "pfharness": __version__, "kernel": request.kernel_release}
        except OSError as e:
            raise UsageError(f"cannot read {tarball} ({e.strerror or e}): check the path") from None
        key["rubric"] = rubric_digest
        directory = request.out / STUDENTS / student
        submitted = request.times.get(student)
        out.append(
            Task(tarball, student, directory, request.out, key, request.rubric, request.kernel_release,
                 request.deadline, submitted, request.accel, request.timeout)
        )  # fmt: skip
    return out


@dataclass(frozen=True)
class Graded:
    """One submission graded, and its directory's own files (by name), which travel back with it: a Dask
    worker's disk is not the grading machine's."""

    grade: StudentGrade
    files: Mapping[str, bytes] = field(default_factory=dict)


def grade_one(task: Task) -> Graded:
    """Grade one submission from scratch (its directory emptied first). Raises PfhError or OSError for a
    failure of pfharness itself (run_tasks tries again, then records it); anything the student did is scored."""
    shutil.rmtree(task.directory, ignore_errors=True)  # nothing of an earlier grade is left to be taken for this one's
    task.directory.mkdir(parents=True)
    unpacked = unpack.unpack(task.tarball, task.directory / "submission", submitted=task.submitted)
    report, not_checked = _check(task, unpacked)
    measured = _measure(task, unpacked, report, not_checked)
    items, total = score.score(task.rubric, measured)
    late = score.late_finding(measured)
    findings = (*unpacked.findings, *((late,) if late else ()))
    plots = student_dir.write_evidence(task.directory, report, findings, not_checked)
    rel = task.directory.relative_to(task.out)
    grade = StudentGrade(
        task.student, task.tarball.name, task.key["digest"], unpacked.submitted, items, total,
        task.rubric.maximum, findings, None, str(rel),
        {k: {w: str(rel / f) for w, f in v.items()} for k, v in plots.items()},
    )  # fmt: skip
    student_dir.write_feedback(task.directory, grade, task.rubric.title)
    student_dir.write_grade(task.directory, task.key, grade)
    return Graded(grade, student_dir.collect(task.directory))


def _check(task: Task, unpacked: Unpacked) -> tuple[CheckReport | None, str]:
    """The module check over the submission's sources, or None and why not (the student's doing)."""
    sources = _sources(unpacked)
    if unpacked.root is None:
        return None, "nothing could be unpacked"
    if not sources:
        return None, "no pf_probe_A.c, pf_probe_B.c or pf_probe_C.c was handed in"
    makefile = unpacked.files.get("Makefile")
    given = ((Path(unpacked.root) / makefile).parent,) if makefile else tuple(sources)
    request = check_run.CheckRequest(
        given, task.directory / "check", kernel_release=task.kernel_release, accel=task.accel, timeout=task.timeout
    )
    try:
        report = check_run.check(request, Events())
    except UsageError as e:  # the source is not one the check can take: the student's doing
        return None, str(e)
    why = harness_failure(report)
    if why:
        raise PfhError(why)
    return report, ""


def _sources(unpacked: Unpacked) -> list[Path]:
    """The module sources handed in (Unpacked.files are relative to its root)."""
    root = Path(unpacked.root or ".")
    return [root / unpacked.files[n] for n in SOURCES if n in unpacked.files]


def harness_failure(report: CheckReport) -> str:
    """Why a check report shows pfharness failing, not the student ("" when it does not): the oracle did not
    build or load, or a VM was lost before its guest came up (QEMU would not start)."""
    for m in report.modules:
        for note in m.notes:
            if note.startswith("the oracle (") and (" did not build " in note or " did not load " in note):
                return f"{m.module}: {note.split(':')[0]}"
        lost = any(f.id == Finding.VM_LOST for f in m.findings)
        if lost and not _booted(Path(m.transcript)):
            return f"{m.module}: the VM was lost before its guest came up (console: {m.transcript})"
    return ""


def _booted(transcript: Path) -> bool:
    try:
        return "PFH-READY" in transcript.read_text(errors="replace")
    except OSError:
        return False


def _measure(task: Task, unpacked: Unpacked, report: CheckReport | None, not_checked: str) -> score.Measured:
    sources = _sources(unpacked)
    late, late_text = 0, ""
    if task.deadline is not None:
        late = score.late_days(unpacked.submitted, task.deadline)
        late_text = f"submitted {unpacked.submitted}, deadline {task.deadline.isoformat()}: {late} day(s) late"
    return score.Measured(
        unpacked,
        report,
        not_checked,
        _report_facts(unpacked),
        checkpatch.count(sources) if sources else None,
        late,
        late_text,
    )


def _report_facts(unpacked: Unpacked) -> report_txt.ReportFacts | None:
    path = unpacked.files.get("report.txt")
    return report_txt.measure(Path(unpacked.root or ".") / path) if path else None


def grade_class(request: GradeRequest, on_grade: Callable[[StudentGrade], None] = lambda g: None) -> Gradebook:
    """Every submission graded (or read back), the gradebook written; `on_grade` hears each grade as it comes."""
    all_tasks = tasks(request)
    grades: dict[str, StudentGrade] = {}
    todo = []
    for task in all_tasks:
        kept = student_dir.read_grade(task.directory, task.key)
        if kept is not None:
            grades[task.student] = kept
            on_grade(kept)
        else:
            todo.append(task)
    results = execute.run_tasks(grade_one, todo, jobs=request.jobs, scheduler=request.scheduler, retries=1)
    for task, result in results:
        if isinstance(result, Graded):
            student_dir.place(task.directory, result.files)
            grade = result.grade
        else:
            grade = _harness_grade(task, result)
        grades[task.student] = grade
        on_grade(grade)
    book = Gradebook(
        __version__,
        request.kernel_release,
        request.rubric.source,
        tuple(grades[t.student] for t in all_tasks),
    )
    gradebook.write(request.out, book)
    page.write_page(book, request.out)
    return book


def _harness_grade(task: Task, failure: object) -> StudentGrade:
    """A submission pfharness failed to grade: recorded, not scored, graded again next run."""
    error = getattr(failure, "error", str(failure))
    attempts = getattr(failure, "attempts", 1)
    rel = task.directory.relative_to(task.out)
    tried = f"{error} (tried {attempts} time(s))"
    grade = StudentGrade(
        task.student, task.tarball.name, task.key["digest"], "", (), 0.0, task.rubric.maximum,
        harness_error=tried, dir=str(rel),
    )  # fmt: skip
    with contextlib.suppress(OSError):  # the disk may be what failed: the gradebook still says so
        student_dir.write_grade(task.directory, task.key, grade)
        student_dir.write_feedback(task.directory, grade, task.rubric.title)
    return grade
