"""A class of generated submissions for `pfharness grade` (issue 23): the project's own hand-in (`pfharness
dist`'s files), the same with one module replaced by a broken one of the check's corpus
(tests/student_modules), a hand-in without report.txt, a late one, and hostile archives. Each with the points
it must get per item by the default rubric (handin/rubric.toml)."""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from pfharness.kmod import handin, kernels

CORPUS = Path(__file__).parent / "student_modules"
TOP = "pf_probe"
MTIME = 1_583_452_800  # 2020-03-06T00:00:00Z: the tarballs' own time
DEADLINE = "2020-03-06T00:00:00+00:00"
LATE = "2020-03-07T12:00:00Z"  # 36 hours late: 2 days (each part of 24 hours counts)


@dataclass(frozen=True)
class Submission:
    """One generated hand-in and the points it must get."""

    student: str
    points: dict[str, float]  # item -> points (a, b, report, clean, c, late)
    total: float
    files: dict[str, bytes] = field(default_factory=dict)  # name inside pf_probe/ -> content
    raw: bytes | None = None  # the tarball's bytes, for a hostile one
    time: str = ""  # for the --times CSV


def dist_files(release: str | None = None) -> dict[str, bytes]:
    """The project's own hand-in, as `pfharness dist` writes it (its Makefile's fallback: `release`)."""
    report = Path(__file__).parent.parent / "study" / "report.txt"
    files = handin.handin_files(report, release or kernels.select(None).release)
    return {name: text.encode() for name, text in files.items()}


def with_module(case: str) -> dict[str, bytes]:
    """The hand-in with the corpus case's module in place of its own."""
    files = dist_files()
    [source] = sorted((CORPUS / case).glob("pf_probe_?.c"))
    files[source.name] = source.read_bytes()
    return files


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(TOP)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
        tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{TOP}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, MTIME
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def traversal() -> bytes:
    """A tarball with a member that climbs out of its directory, beside the good files."""
    files = dist_files()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in [*files.items(), ("../../escaped.txt", b"owned\n")]:
            info = tarfile.TarInfo(name if name.startswith("..") else f"{TOP}/{name}")
            info.size, info.mtime = len(data), MTIME
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write(submissions: list[Submission], dest: Path) -> tuple[list[Path], Path]:
    """The tarballs in `dest`, and the times CSV (student,time) for those that give a time."""
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in submissions:
        path = dest / f"{s.student}.tar.gz"
        path.write_bytes(s.raw if s.raw is not None else tarball(s.files))
        os.utime(path, (MTIME, MTIME))
        paths.append(path)
    times = dest.parent / "times.csv"
    times.write_text("student,time\n" + "".join(f"{s.student},{s.time}\n" for s in submissions if s.time))
    return paths, times


def without_c(files: dict[str, bytes]) -> dict[str, bytes]:
    """The hand-in without the extra credit: no pf_probe_C.c, and the Makefile builds A and B only."""
    kept = {n: d for n, d in files.items() if n != "pf_probe_C.c"}
    kept["Makefile"] = kept["Makefile"].replace(b" pf_probe_C.o", b"")
    return kept


def _broken(case: str, module_points: dict[str, float], clean: float = 14.5, **kw: float) -> Submission:
    """A corpus case packed as a hand-in without C (the corpus modules draw one checkpatch warning: their
    SPDX line, -0.5). A module that did not load, run and unload cleanly is not checked on a missing or an
    exited pid: half of missing-pid's and exited-pid's points each (one module of two), -2, as PID_LOST."""
    points = {"a": 25.0, "b": 40.0, "report": 20.0, "clean": clean, "c": 0.0, **module_points, **kw}
    return Submission(case, points, sum(points.values()), without_c(with_module(case)))


PID_LOST = 14.5 - 2


def the_class() -> list[Submission]:
    """The class, core submissions first (CORE of them: the part `make test` grades)."""
    full = dist_files()
    no_report = {n: d for n, d in without_c(full).items() if n != "report.txt"}
    return [
        Submission("dist", {"a": 25, "b": 40, "report": 20, "clean": 15, "c": 15}, 100, full),
        Submission(
            "late", {"a": 25, "b": 40, "report": 20, "clean": 15, "c": 0, "late": -20}, 80, without_c(full), time=LATE
        ),
        Submission("no-report", {"a": 25, "b": 40, "report": 0, "clean": 13, "c": 0}, 78, no_report),
        _broken("plot-70x30", {"b": 35}),
        _broken("api-fault-handler", {"a": 0, "b": 0}, clean=8.5),  # nothing ran: no printk-flood or pid points
        Submission("not-a-tarball", {"a": 0, "b": 0, "report": 0, "clean": 0, "c": 0}, 0, raw=b"PK\x03\x04 a zip?"),
        # The rest: PFH_GRADE_CLASS=full
        _broken("wrong-param-name", {"a": 13}),
        _broken("pid-not-tgid", {"a": 22}),
        _broken("probe-symbol", {"a": 8}, clean=PID_LOST),
        _broken("plot-no-labels", {"b": 37}),
        _broken("printk-flood", {}, clean=12.5),
        _broken("null-deref-unload", {"b": 15}, clean=PID_LOST),  # a splat at unload: no plot, no unload points
        _broken("div-zero", {"b": 15}, clean=PID_LOST),  # the oracle workload's faults fall within one second: / 0
        _broken("oob-first-write", {"b": 31}, clean=PID_LOST),  # the redzone write found at unload; its plot is garbage
        _broken("handler-loops", {"a": 11}, clean=PID_LOST),  # the VM hangs: no run points
        _broken("api-proc-ops", {"a": 0, "b": 0}, clean=8.5),
        _broken("missing-pid-null", {}, clean=PID_LOST),  # an Oops with tpid of no process: missing-pid 1 of 2
        _broken("init-hangs", {"a": 8}, clean=PID_LOST),  # insmod never returns: the student's, not a harness error
        Submission("traversal", {"a": 25, "b": 40, "report": 20, "clean": 15, "c": 15}, 100, raw=traversal()),
    ]


CORE = 6
