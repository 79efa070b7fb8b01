"""A student's directory under OUT/students/<student>/: the build log, each module's kernel-log lines, the
plot the student's module printed (as text) beside the oracle's picture of the same run (PNG), the findings,
the feedback, and grade.json (the grade with the key that lets a later run skip it: resume)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..check import run as check_run
from ..check.model import CheckReport, ModuleCheck
from ..check.plot_find import find_plots, strip_prefixes
from ..errors import PfhError
from ..plot import Drawable, PlotRequest, draw
from ..results.run_dir import read_saved
from ..results.transcript import parse_transcript
from .model import GradeFinding, StudentGrade

GRADE_FILE = "grade.json"
MAX_FILE = 16 << 20  # bytes of one file of the student's directory that travel back from a worker
_DRAWING = threading.Lock()  # matplotlib's pyplot is not thread-safe: one picture at a time (--jobs threads)


def write_json(path: Path, data: Any) -> None:
    """`data` as JSON at `path`, replaced whole (a reader never sees half a file)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    partial.replace(path)


def read_grade(directory: Path, key: Mapping[str, str]) -> StudentGrade | None:
    """The grade a former run wrote in `directory`, when it was graded with the same `key` (tarball digest,
    pfharness version, kernel release, rubric) and not cut short by a harness failure; else None."""
    try:
        data = json.loads((directory / GRADE_FILE).read_text())
        grade = StudentGrade.from_json(data["grade"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if data.get("key") != dict(key) or grade.harness_error is not None:
        return None
    return grade


def write_grade(directory: Path, key: Mapping[str, str], grade: StudentGrade) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / GRADE_FILE, {"key": dict(key), "grade": grade.to_json()})


def write_evidence(
    directory: Path, report: CheckReport | None, findings: tuple[GradeFinding, ...], not_checked: str
) -> dict[str, dict[str, str]]:
    """The build log, each module's lines and plots, findings.json; returns the plots written, by module
    letter: {"student": text file, "oracle": PNG} (names relative to `directory`)."""
    data = {
        "submission": [f.to_json() for f in findings],
        "not_checked": not_checked or None,
        "check": report.to_json() if report is not None else None,
    }
    write_json(directory / "findings.json", data)
    if report is None:
        return {}
    _copy_build_log(directory, report)
    return {m.module[-1]: plots for m in report.modules if (plots := _module_files(directory, m))}


def _copy_build_log(directory: Path, report: CheckReport) -> None:
    """The build's whole log (its path is in each module's check, or in the build's findings)."""
    words = [m.build_log for m in report.modules] + [
        w.rstrip(").,;") for f in report.findings for w in f.message.split()
    ]
    found = next((Path(w) for w in words if w.endswith("build.log") and Path(w).is_file()), None)
    if found is not None:
        shutil.copyfile(found, directory / "build.log")


def _module_files(directory: Path, m: ModuleCheck) -> dict[str, str]:
    """pf_probe_X.log (its kernel-log lines, whole), and for B and C its plot(s) as text and the oracle's PNG."""
    lines = module_lines(Path(m.transcript), m.module) if m.transcript else list(m.lines)
    (directory / f"{m.module}.log").write_text("".join(f"{ln}\n" for ln in lines))
    if m.module.endswith("A"):
        return {}
    files: dict[str, str] = {}
    text = _plot_text(lines)
    if text:
        (directory / f"{m.module}.plot.txt").write_text(text)
        files["student"] = f"{m.module}.plot.txt"
    png = (
        _oracle_png(directory / f"{m.module}.oracle.png", Path(m.transcript).parent / "save", m) if m.transcript else ""
    )
    if png:
        files["oracle"] = png
    return files


def module_lines(transcript: Path, module: str) -> list[str]:
    """The module's own kernel-log lines, whole, from the main step of the transcript (its kmsg lines; not
    those of the check's missing-pid and exited-pid steps after it); from the console when the step did not
    end (a lost VM: the kernel's report is there)."""
    try:
        messages = next((step.kernel_messages for step in parse_transcript(transcript)), [])
    except (PfhError, OSError, ValueError):
        messages = []
    if not messages:
        messages = [ln for ln in check_run.console_lines(transcript) if ln.strip() and not ln.startswith("##PFH")]
    return check_run.own_lines(messages, module)


def _plot_text(lines: list[str]) -> str:
    """The student's plot(s) as printed: from each one's title to the lines after it."""
    bare = strip_prefixes(lines)
    out: list[str] = []
    for plot in find_plots(bare):
        start = max(0, plot.first - 3)
        end = min(len(bare), plot.first + plot.rows + 1 + len(plot.after[:4]))
        out += [*bare[start:end], ""]
    return "\n".join(out)


def _oracle_png(path: Path, save: Path, m: ModuleCheck) -> str:
    """The oracle's picture of the same run (its saved records), or "" when there are none to draw."""
    if not m.transcript:
        return ""
    try:
        saved = read_saved(save)
    except (PfhError, OSError, ValueError):
        return ""
    if saved is None or not saved.records:
        return ""
    tgids = [r.tgid for r in saved.records]
    pid = max(set(tgids), key=tgids.count)
    command = ["oracle_touch", *check_run.WORKLOAD_ARGS]
    run = Drawable(saved.records, saved.regions, saved.processes, command, m.kernel_release, pid, "oracle_touch")
    try:
        with _DRAWING:
            draw(run, PlotRequest(png=path, ascii=False), lambda _line: None)
    except PfhError:
        return ""  # matplotlib missing: the page shows the student's plot alone
    return path.name


def collect(directory: Path) -> dict[str, bytes]:
    """The directory's own files (not its submission/ and check/ trees), each cut at MAX_FILE bytes."""
    files = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                files[path.name] = f.read(MAX_FILE)
    return files


def place(directory: Path, files: Mapping[str, bytes]) -> None:
    """Write a result's files into the student's directory here (those already there as they are: kept)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = directory / Path(name).name
        if not (path.is_file() and path.stat().st_size == len(data)):
            path.write_bytes(data)


def write_feedback(directory: Path, grade: StudentGrade, title: str) -> None:
    """feedback.txt: what can be handed to the student as it is."""
    lines = [f"{title}: {grade.student}", f"Total: {grade.total:g} of {grade.max:g}", ""]
    lines += [*(f"* {f.message}" for f in grade.findings), *([""] if grade.findings else [])]
    if grade.harness_error:
        lines += [f"Not graded yet: pfharness failed ({grade.harness_error}); it is graded again next run."]
    text = "\n".join(lines) + "\n" + "\n\n".join(i.feedback for i in grade.items if i.feedback)
    (directory / "feedback.txt").write_text(text.rstrip("\n") + "\n")
