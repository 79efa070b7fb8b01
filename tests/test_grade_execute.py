"""grade/execute.py: the executor of per-submission tasks, here (threads) and on a local Dask cluster
(a `dask scheduler` and two `dask worker` processes started by the test), with tasks that really start
processes (tests/grade_tasks.py), harness failures retried and reported, bugs reported at once."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from grade_tasks import Checked, CheckJob, Done, Job, check_module, work

from pfharness import proc
from pfharness.errors import SetupError, UsageError
from pfharness.grade import execute
from pfharness.grade.execute import TaskFailure, default_jobs, run_tasks

TESTS = Path(__file__).resolve().parent
DASK = Path(sys.executable).parent / "dask"


def _results(pairs) -> dict[int, Done | TaskFailure]:
    return {task.n: result for task, result in pairs}


@pytest.mark.parametrize("jobs", [1, 2])
def test_every_task_gives_its_result(jobs):
    tasks = [Job(n) for n in range(6)]
    got = _results(run_tasks(work, tasks, jobs=jobs))
    assert {n: r.square for n, r in got.items()} == {n: n * n for n in range(6)}  # type: ignore[union-attr]


def test_jobs_2_runs_two_at_once_and_yields_as_they_complete():
    tasks = [Job(0, sleep=1.5), Job(1, sleep=0.6), Job(2, sleep=0.6)]
    start = time.monotonic()
    order = [task.n for task, _ in run_tasks(work, tasks, jobs=2)]
    elapsed = time.monotonic() - start
    assert order == [1, 2, 0]  # the slow one last: each comes back when it completes
    assert elapsed < 2.5  # 1.5 s beside 0.6 + 0.6 s; one at a time would take 2.7 s


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_harness_failure_is_retried_then_reported(tmp_path, jobs):
    tasks = [Job(1, fail_times=1, attempts_dir=str(tmp_path)), Job(2, fail_times=5, attempts_dir=str(tmp_path))]
    got = _results(run_tasks(work, tasks, jobs=jobs, retries=1))
    assert got[1] == Done(1, 1, os.getpid())  # failed once, then given on the retry
    failure = got[2]
    assert isinstance(failure, TaskFailure)
    assert (failure.kind, failure.attempts) == ("harness", 2)
    assert failure.error == "QEMU exited before the guest's shell (attempt 2 of task 2)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.1", "1.2", "2.1", "2.2"]


def test_retries_0_reports_the_first_failure(tmp_path):
    [(_, failure)] = run_tasks(work, [Job(3, fail_times=1, attempts_dir=str(tmp_path))], jobs=1, retries=0)
    assert isinstance(failure, TaskFailure)
    assert (failure.kind, failure.attempts) == ("harness", 1)


def test_a_bug_is_reported_at_once_not_retried_and_the_others_go_on(tmp_path):
    tasks = [Job(4, bug=True, attempts_dir=str(tmp_path)), Job(5)]
    got = _results(run_tasks(work, tasks, jobs=2, retries=3))
    failure = got[4]
    assert isinstance(failure, TaskFailure)
    assert (failure.kind, failure.attempts, failure.error) == ("internal", 1, "KeyError: 'task 4'")
    assert "Traceback" in failure.detail and "raise KeyError" in failure.detail
    assert [p.name for p in tmp_path.iterdir()] == ["4.1"]
    assert got[5] == Done(5, 25, os.getpid())


def test_bad_jobs_is_a_usage_error():
    with pytest.raises(UsageError, match="--jobs must be at least 1"):
        run_tasks(work, [Job(1)], jobs=0)  # at once, before any task


@pytest.mark.parametrize(
    ("cores", "available", "expected"),
    [
        (8, 16_000, 4),  # cores: 8 // 2 vCPUs; memory would allow (16000 - 1024) // 2304 = 6
        (16, 8_000, 3),  # memory: (8000 - 1024) // 2304
        (2, 64_000, 1),  # one VM of 2 vCPUs on 2 cores
        (1, 500, 1),  # never below 1
    ],
)
def test_default_jobs_is_the_tighter_of_cores_and_memory(cores, available, expected):
    assert default_jobs(2048, 2, cores=cores, available_mib=available) == expected


def test_default_jobs_reads_this_machine():
    assert 1 <= default_jobs() <= os.cpu_count()  # type: ignore[operator]


def test_scheduler_without_dask_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed raises ImportError
    with pytest.raises(
        SetupError, match=r"^--scheduler needs Dask: install it with `pip install 'pfharness\[cluster\]'`"
    ):
        run_tasks(work, [Job(1)], jobs=1, scheduler="tcp://127.0.0.1:8786")  # at once


def test_an_unreachable_scheduler_is_a_one_line_error(monkeypatch):
    pytest.importorskip("distributed", reason="Dask is pfharness[cluster]: make setup installs it")
    monkeypatch.setattr(execute, "CONNECT_TIMEOUT", 2.0)
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    with pytest.raises(SetupError, match=rf"^cannot reach the Dask scheduler at {address} .*start `dask scheduler`"):
        list(run_tasks(work, [Job(1)], jobs=1, scheduler=address))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_cluster(logs: Path, workers: int):
    """A scheduler and `workers` single-thread workers on this machine, the workers importing pfharness from
    this .venv and the task functions from tests/; every process killed at the end, pass or fail."""
    distributed = pytest.importorskip("distributed", reason="Dask is pfharness[cluster]: make setup installs it")
    port = str(_free_port())
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    children = []
    try:
        scheduler = [DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"]
        children.append(_start(scheduler, env, logs / "scheduler.log"))
        for n in range(1, workers + 1):
            worker = [DASK, "worker", address, "--name", f"w{n}", "--nthreads", "1", "--no-dashboard", "--no-nanny"]
            children.append(_start(worker, env, logs / f"w{n}.log"))
        with distributed.Client(address, timeout=30) as client:  # the scheduler is up
            if workers:
                client.wait_for_workers(workers, timeout=60)  # all, or the test could not tell they share the tasks
        yield address
    finally:
        for child in children:
            proc.kill_group(child)


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler and two workers (local_cluster)."""
    with local_cluster(tmp_path, 2) as address:
        yield address


def test_a_scheduler_without_workers_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(execute, "WORKERS_TIMEOUT", 2.0)
    with local_cluster(tmp_path, 0) as address, pytest.raises(SetupError) as error:
        list(run_tasks(work, [Job(1)], jobs=1, scheduler=address))
    assert str(error.value).startswith(f"no Dask worker joined the scheduler at {address} within 2 s")
    assert str(error.value).endswith(f"run `dask worker {address}` on each grading machine (docs/grade.md)")


def _start(argv, env, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return proc.start_group(argv, stdout=out.fileno(), stderr=subprocess.STDOUT, env=env)


def test_a_local_dask_cluster_runs_the_tasks_on_both_workers(dask_cluster, tmp_path):
    tasks = [Job(n, sleep=0.5) for n in range(8)]
    tasks += [Job(20, fail_times=1, attempts_dir=str(tmp_path)), Job(21, bug=True, attempts_dir=str(tmp_path))]
    got = _results(run_tasks(work, tasks, jobs=1, scheduler=dask_cluster, retries=1))
    done = [r for r in got.values() if isinstance(r, Done)]
    assert {r.n: r.square for r in done} == {**{n: n * n for n in range(8)}, 20: 400}
    assert len({r.pid for r in done}) == 2 and os.getpid() not in {r.pid for r in done}  # both workers, not here
    bug = got[21]
    assert isinstance(bug, TaskFailure) and (bug.kind, bug.attempts) == ("internal", 1)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name[0].isdigit()) == ["20.1", "20.2", "21.1"]


@pytest.mark.vm
def test_a_local_dask_cluster_checks_modules_in_vms(dask_cluster, tmp_path, default_kernel):
    """Each worker runs a real `pfharness check` (kbuild, then a VM under TCG) of a corpus module at once."""
    corpus = TESTS / "student_modules"
    names = ("correct-B", "plot-70x30")
    tasks = [CheckJob(str(corpus / name), str(tmp_path / name), default_kernel.release) for name in names]
    got = {
        Path(task.source).name: result
        for task, result in run_tasks(check_module, tasks, jobs=1, scheduler=dask_cluster)
    }
    assert all(isinstance(r, Checked) for r in got.values()), got
    assert (got["correct-B"].passed, got["correct-B"].errors) == (True, ())  # type: ignore[union-attr]
    assert got["plot-70x30"].errors == ("plot-size",)  # type: ignore[union-attr]
    assert len({r.pid for r in got.values()}) == 2  # type: ignore[union-attr]
