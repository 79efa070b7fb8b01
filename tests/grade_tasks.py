"""Task functions for test_grade_execute.py: top-level in a module of their own, so that a Dask worker
started with tests/ on its PYTHONPATH imports them by name. Each really starts processes (through
pfharness.proc), as a grading task starts QEMU."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pfharness import proc
from pfharness.errors import VmLost


@dataclass(frozen=True)
class Job:
    n: int
    sleep: float = 0.0  # seconds the task's `sleep` process takes
    fail_times: int = 0  # the first attempts that fail as the harness would (VmLost)
    bug: bool = False  # fail as a bug of pfharness would (KeyError)
    attempts_dir: str = ""  # one file per attempt: the count survives across threads and worker processes


@dataclass(frozen=True)
class Done:
    n: int
    square: int  # n*n, as `expr` computed it
    pid: int  # the process that ran the task (a Dask worker's, or this one's)


def work(job: Job) -> Done:
    attempt = _count_attempt(job)
    if job.bug:
        raise KeyError(f"task {job.n}")
    if attempt <= job.fail_times:
        raise VmLost(f"QEMU exited before the guest's shell (attempt {attempt} of task {job.n})")
    if job.sleep:
        proc.run(["sleep", str(job.sleep)])
    square = proc.run(["expr", str(job.n), "*", str(job.n)])
    return Done(job.n, int(square.stdout), os.getpid())


def _count_attempt(job: Job) -> int:
    if not job.attempts_dir:
        return 1
    directory = Path(job.attempts_dir)
    attempt = len(list(directory.glob(f"{job.n}.*"))) + 1
    (directory / f"{job.n}.{attempt}").touch()
    return attempt


@dataclass(frozen=True)
class CheckJob:
    """One real `pfharness check` of a corpus module (tests/student_modules), as a grading task runs it."""

    source: str
    out: str
    kernel_release: str


@dataclass(frozen=True)
class Checked:
    source: str
    passed: bool
    errors: tuple[str, ...]  # the error findings' ids
    pid: int


def check_module(job: CheckJob) -> Checked:
    """Check the module; its error findings by id."""
    from pfharness.check.run import CheckRequest, check  # only this task needs the module check
    from pfharness.values import Accelerator

    request = CheckRequest((Path(job.source),), Path(job.out), kernel_release=job.kernel_release, accel=Accelerator.tcg)
    report = check(request)
    errors = tuple(str(f.id.value) for m in report.modules for f in m.findings if f.is_error)
    errors += tuple(str(f.id.value) for f in report.findings if f.is_error)
    return Checked(job.source, report.passed, errors, os.getpid())
