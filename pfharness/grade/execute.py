"""The one executor of the grader's per-submission tasks: `jobs` at a time on this machine (threads: each
task spends its time waiting on a QEMU process), or on the machines of a Dask cluster (`--scheduler`).

A task's function may fail for a reason of the harness's own (a PfhError: QEMU would not start; an OSError:
the disk is full): the task is tried again, `retries` times, and then handed back as a TaskFailure, never
raised, so that one submission never stops the class and nothing is scored against the student. Any other
exception is a bug of pfharness: handed back at once as a TaskFailure of kind "internal" (it would only
happen again), with its traceback for the log. Results come back as they complete, so the batch can write
each student's files at once and a stopped run resumes where it stopped.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from ..errors import PfhError, SetupError, UsageError

T = TypeVar("T")
R = TypeVar("R")

RETRIED: tuple[type[BaseException], ...] = (PfhError, OSError)  # the harness's own failures: tried again
CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler
WORKERS_TIMEOUT = 30.0  # seconds for a first worker to be there

# default_jobs(): what one VM needs of the host besides its guest RAM (QEMU itself, the harness's thread
# reading its console), and what the host keeps for itself (kbuild, the harness, the desktop)
QEMU_OVERHEAD_MIB = 256
HOST_RESERVE_MIB = 1024


@dataclass(frozen=True)
class TaskFailure:
    """A task that did not give a result: not the student's fault, so not scored (graded again next run)."""

    kind: str  # "harness": a PfhError or OSError, tried `attempts` times; "internal": a bug of pfharness
    error: str  # one line: what failed
    attempts: int = 1  # how many times the task was tried
    detail: str = ""  # the traceback, for the log (never shown as the message)


@dataclass(frozen=True)
class _Outcome(Generic[R]):
    """What one attempt of a task gave (pickled back from a Dask worker)."""

    result: R | None = None
    failure: TaskFailure | None = None


def _attempt(fn: Callable[[T], R], task: T) -> _Outcome[R]:
    """Run fn(task) once; a failure becomes a value (an exception's class may not unpickle on the client)."""
    try:
        return _Outcome(result=fn(task))
    except RETRIED as exc:
        return _Outcome(failure=TaskFailure("harness", _one_line(exc), detail=traceback.format_exc()))
    except Exception as exc:
        return _Outcome(failure=TaskFailure("internal", _one_line(exc), detail=traceback.format_exc()))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return text if isinstance(exc, PfhError) else f"{type(exc).__name__}: {text}"


class _Pool(Protocol):
    def submit(self, fn: Callable[..., Any], *args: Any) -> Any: ...

    def first_done(self, futures: list[Any]) -> Iterable[Any]: ...


class _Threads:
    """`jobs` tasks at once in threads of this process."""

    def __init__(self, executor: concurrent.futures.ThreadPoolExecutor) -> None:
        self.executor = executor

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.executor.submit(fn, *args)

    def first_done(self, futures: list[Any]) -> Iterable[Any]:
        return concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED).done


class _Dask:
    """Tasks on the workers of a Dask distributed scheduler, as many at once as they have threads."""

    def __init__(self, client: Any, distributed: Any) -> None:
        self.client = client
        self.distributed = distributed

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)  # pure=False: a retry is a new task, not the failed one

    def first_done(self, futures: list[Any]) -> Iterable[Any]:
        return self.distributed.wait(futures, return_when="FIRST_COMPLETED").done


def _outcome(future: Any) -> _Outcome[Any]:
    """The attempt's outcome; a future that failed itself (a Dask worker lost) is the harness's failure."""
    try:
        outcome = future.result()
    except Exception as exc:
        return _Outcome(failure=TaskFailure("harness", _one_line(exc), detail=traceback.format_exc()))
    return outcome


def _drive(pool: _Pool, fn: Callable[[T], R], tasks: Iterable[T], retries: int) -> Iterator[tuple[T, R | TaskFailure]]:
    pending: dict[Any, tuple[T, int]] = {pool.submit(_attempt, fn, task): (task, 1) for task in tasks}
    while pending:
        for future in pool.first_done(list(pending)):
            task, attempt = pending.pop(future)
            outcome = _outcome(future)
            failure = outcome.failure
            if failure is None:
                yield task, outcome.result  # type: ignore[misc]
            elif failure.kind == "harness" and attempt <= retries:
                pending[pool.submit(_attempt, fn, task)] = (task, attempt + 1)
            else:
                yield task, dataclasses.replace(failure, attempts=attempt)


def run_tasks(
    fn: Callable[[T], R],
    tasks: Iterable[T],
    *,
    jobs: int,
    scheduler: str | None = None,
    retries: int = 1,
) -> Iterator[tuple[T, R | TaskFailure]]:
    """Run fn(task) for every task, `jobs` at a time here or on the Dask cluster at `scheduler`
    (tcp://HOST:8786; `jobs` is then the workers' business), and yield (task, result or TaskFailure) as each
    completes. fn must be a top-level function and task and result picklable (a worker runs it). Closing
    the iterator early cancels the tasks not started (the running ones finish).

    A bad `jobs` or `retries` (UsageError) and a missing Dask (SetupError) are raised here, before any task;
    a scheduler that cannot be reached, or has no worker, at the first next() (SetupError)."""
    if jobs < 1 or retries < 0:
        raise UsageError(f"--jobs must be at least 1 (got {jobs}) and retries at least 0 (got {retries})")
    if scheduler is None:
        return _here(fn, tasks, jobs, retries)
    return _on_cluster(_import_distributed(), scheduler, fn, tasks, retries)


def _here(fn: Callable[[T], R], tasks: Iterable[T], jobs: int, retries: int) -> Iterator[tuple[T, R | TaskFailure]]:
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pfh-task")
    try:
        yield from _drive(_Threads(executor), fn, tasks, retries)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _import_distributed() -> Any:
    try:
        import distributed  # noqa: PLC0415 (an optional extra: only --scheduler needs it)
    except ImportError:
        raise SetupError(
            "--scheduler needs Dask: install it with `pip install 'pfharness[cluster]'` (docs/grade.md)"
        ) from None
    return distributed


def _on_cluster(
    distributed: Any, scheduler: str, fn: Callable[[T], R], tasks: Iterable[T], retries: int
) -> Iterator[tuple[T, R | TaskFailure]]:
    """The tasks on the scheduler's workers, through a client that has at least one (else a SetupError)."""
    try:
        client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)  # the default: wait() uses it
    except (OSError, TimeoutError, ValueError) as exc:
        raise SetupError(
            f"cannot reach the Dask scheduler at {scheduler} ({_one_line(exc)}): start `dask scheduler` there"
            " and check the address and port (docs/grade.md)"
        ) from None
    try:
        _wait_for_workers(client, scheduler)
        yield from _drive(_Dask(client, distributed), fn, tasks, retries)
    finally:
        client.close()


def _wait_for_workers(client: Any, scheduler: str) -> None:
    try:
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise SetupError(
            f"no Dask worker joined the scheduler at {scheduler} within {WORKERS_TIMEOUT:.0f} s ({_one_line(exc)}):"
            f" run `dask worker {scheduler}` on each grading machine (docs/grade.md)"
        ) from None


def default_jobs(
    vm_memory_mib: int = 2048,
    vcpus: int = 2,
    *,
    cores: int | None = None,
    available_mib: int | None = None,
) -> int:
    """How many VMs of `vm_memory_mib` guest RAM and `vcpus` vCPUs this machine runs at once: no more than
    its cores hold (each busy vCPU keeps a core busy, under TCG all the more), and no more than fit in its
    available memory (MemAvailable) less HOST_RESERVE_MIB for the host, counting QEMU_OVERHEAD_MIB per VM
    beside its guest RAM; at least 1."""
    cores = len(os.sched_getaffinity(0)) if cores is None else cores
    available_mib = _available_mib() if available_mib is None else available_mib
    by_cores = cores // max(1, vcpus)
    by_memory = (available_mib - HOST_RESERVE_MIB) // (vm_memory_mib + QEMU_OVERHEAD_MIB)
    return max(1, min(by_cores, by_memory))


def _available_mib(meminfo: Path = Path("/proc/meminfo")) -> int:
    """MemAvailable in MiB (the kernel's estimate of what can be had without swapping)."""
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    raise SetupError(f"{meminfo} has no MemAvailable line: give --jobs")
