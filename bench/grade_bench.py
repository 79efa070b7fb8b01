"""`bench/run.py --only grade`: submissions per minute of `pfharness grade` (issue 23).

A class of generated submissions (tests/grade_class.py, the class `make test` grades, with the points each
must get; CLASS_SIZE of them, the class repeated under new names past its end) is graded three ways, each
into a fresh --out so nothing is read back: `--jobs 1`, `--jobs 2`, and on a local Dask cluster (a `dask
scheduler` and two single-thread `dask worker` processes on this machine, started here and killed at the
end). Each run is the real CLI (`python -m pfharness.cli grade`, through pfharness/proc.py). VMs started:
the modules checked (one fresh VM each), read from each student's findings.json. The grades are compared
with the expected ones: a fast but wrong run is no figure.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

from pfharness import proc

ROOT = Path(__file__).resolve().parent.parent
PFHARNESS = [sys.executable, "-m", "pfharness.cli"]
DASK = Path(sys.executable).parent / "dask"
CLASS_SIZE = 30  # the class: the whole of tests/grade_class.py, repeated under new names up to 30
RUN_TIMEOUT = 3600.0  # seconds for one configuration's `pfharness grade`


def grade_class() -> ModuleType:
    """tests/grade_class.py, loaded from its path (it needs only pfharness; tests/test_grade_vm.py uses it too)."""
    spec = importlib.util.spec_from_file_location("grade_class", ROOT / "tests" / "grade_class.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def submissions(gc: ModuleType, size: int, students: list[str] | None = None) -> list:
    """The first `size` of the class (repeated under new names past its end), or the students named."""
    whole = gc.the_class()
    if students:
        by_name = {s.student: s for s in whole}
        unknown = [n for n in students if n not in by_name]
        if unknown:
            raise SystemExit(f"--grade-students: no {', '.join(unknown)} in tests/grade_class.py")
        return [by_name[n] for n in students]
    return [s if i < len(whole) else replace(s, student=f"{s.student}-{i // len(whole)}")
            for i, s in ((i, whole[i % len(whole)]) for i in range(size))]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_cluster(logs: Path, workers: int = 2) -> Iterator[str]:
    """A scheduler and `workers` single-thread workers on this machine; every process killed at the end."""
    port = str(_free_port())
    address = f"tcp://127.0.0.1:{port}"
    children = []

    def start(argv: list, log: Path) -> None:
        with log.open("wb") as out:
            children.append(proc.start_group(argv, stdout=out.fileno(), stderr=subprocess.STDOUT))

    try:
        start([DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"], logs / "scheduler.log")
        for n in range(1, workers + 1):
            argv = [DASK, "worker", address, "--name", f"w{n}", "--nthreads", "1", "--no-dashboard", "--no-nanny"]
            start(argv, logs / f"w{n}.log")
        _wait_for_workers(address, workers)
        yield address
    finally:
        for child in children:
            proc.kill_group(child)


def _wait_for_workers(address: str, workers: int) -> None:
    import distributed  # pfharness[cluster]: only this configuration needs it

    with distributed.Client(address, timeout=30) as client:
        client.wait_for_workers(workers, timeout=60)


def _vms(out: Path) -> int:
    """The modules checked in a grade run (each in a VM of its own), from the students' findings.json."""
    count = 0
    for findings in out.glob("students/*/findings.json"):
        check = json.loads(findings.read_text()).get("check") or {}
        count += sum(1 for m in check.get("modules", ()) if m.get("transcript"))
    return count


def _wrong(out: Path, expected: list) -> list[str]:
    """The students whose total is not the expected one (or who were not graded)."""
    book = json.loads((out / "gradebook.json").read_text())
    got = {g["student"]: g for g in book["students"]}
    return [s.student for s in expected if s.student not in got or got[s.student]["total"] != s.total]


@dataclass(frozen=True)
class Class:
    """The class written out: its tarballs' directory, its times CSV, its submissions (with their points)."""

    inbox: Path
    times: Path
    deadline: str
    expected: list


def grade_once(klass: Class, out: Path, extra: list[str]) -> dict:
    """One configuration: `pfharness grade` over the class into a fresh `out`, timed."""
    expected = klass.expected
    load = os.getloadavg()[0]
    argv = [*PFHARNESS, "grade", klass.inbox, "--out", out, "--deadline", klass.deadline, "--times", klass.times]
    argv += extra
    started = time.monotonic()
    result = proc.run(argv, timeout=RUN_TIMEOUT, merge_stderr=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"pfharness grade {' '.join(extra)}: exit {result.returncode}: {result.stdout[-2000:]}")
    n = len(expected)
    return {
        "submissions": n,
        "vms": _vms(out),
        "seconds": round(seconds, 1),
        "per_minute": round(60 * n / seconds, 2),
        "load_at_start": round(load, 2),
        "load_at_end": round(os.getloadavg()[0], 2),
        "wrong": _wrong(out, expected),
    }


def measure(size: int = CLASS_SIZE, students: list[str] | None = None) -> dict:
    """The class graded with --jobs 1, --jobs 2 and on a local Dask cluster of two workers."""
    gc = grade_class()
    subs = submissions(gc, size, students)
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="pfh-bench-grade-") as tmp:
        base = Path(tmp)
        _paths, times = gc.write(subs, base / "in")
        klass = Class(base / "in", times, gc.DEADLINE, subs)
        for jobs in (1, 2):
            runs[f"--jobs {jobs}"] = grade_once(klass, base / f"out-j{jobs}", ["--jobs", str(jobs)])
        with local_cluster(base) as address:
            dask = ["--jobs", "1", "--scheduler", address]
            runs["Dask, 2 local workers"] = grade_once(klass, base / "out-dask", dask)
    flags = f"--grade-students {','.join(students)}" if students else f"--grade-class {size}"
    return {"command": f"bench/run.py --only grade {flags}", "students": [s.student for s in subs],
            "cpus": os.cpu_count(), "runs": runs}  # fmt: skip


def markdown(r: dict) -> list[str]:
    """BENCHMARKS.md's section."""
    lines = [
        "## Grading a class",
        "",
        f"`{r['command']}`: `pfharness grade` (the CLI) over "
        f"{len(r['students'])} generated submissions (tests/grade_class.py: {', '.join(r['students'])}), each "
        "configuration into a fresh --out (nothing read back), on this machine's "
        f"{r['cpus']} cores. VMs started: the modules checked, one fresh VM each (a submission that does not "
        "build or unpack starts none). Load: the 1-minute load average when the configuration started and when it "
        "ended (the machine is shared with other work).",
        "",
        "| configuration | submissions | VMs started | wall | submissions/min | load at start, end "
        "| grades as expected |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, run in r["runs"].items():
        ok = "yes" if not run["wrong"] else "no: " + ", ".join(run["wrong"])
        lines.append(
            f"| {name} | {run['submissions']} | {run['vms']} | {run['seconds']:.0f} s | {run['per_minute']:.2f} | "
            f"{run['load_at_start']:.2f}, {run.get('load_at_end', float('nan')):.2f} | {ok} |"
        )
    return [*lines, ""]
