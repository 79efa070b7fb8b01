"""`pfharness grade`: a teacher's batch over hand-in tarballs, by the rubric (grade/run.py)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..errors import UsageError
from ..values import DEFAULT_OUT, Accelerator
from .base import SERIES_HELP, Command, app

if TYPE_CHECKING:
    from ..grade.model import StudentGrade

GRADE_EXIT = (
    "Exit status: 0 every submission graded (whatever its points), 1 some not graded because pfharness failed "
    "(harness_error: run again to grade them), 2 usage (a bad rubric, deadline or times CSV), 126 set-up missing."
)
ARCHIVES = ("*.tar.gz", "*.tgz", "*.tar", "*.tar.xz", "*.tar.bz2", "*.zip")


def tarballs_of(paths: list[Path]) -> tuple[Path, ...]:
    """The tarballs named, a directory standing for the archives in it (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted({p for pattern in ARCHIVES for p in path.glob(pattern) if p.is_file()})
            if not inside:
                raise UsageError(f"{path} holds no tarball ({', '.join(ARCHIVES)}): pass the hand-ins' directory")
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"{path} does not exist: pass hand-in tarballs, or a directory of them")
    return tuple(dict.fromkeys(p.resolve() for p in found))


def parse_deadline(text: str) -> datetime:
    """--deadline as an aware time: ISO 8601; one without an offset is this machine's local time."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--deadline {text!r} is not a time: write ISO 8601, e.g. 2020-03-05T23:59-05:00") from None
    return moment if moment.tzinfo else moment.astimezone()


def _times(path: Path | None) -> dict[str, str]:
    from ..grade import times as grade_times  # noqa: PLC0415 - loaded by this command only: others start sooner

    return grade_times.read_times(path) if path is not None else {}


def _jobs(jobs: int | None) -> int:
    from ..grade import execute  # noqa: PLC0415

    return execute.default_jobs() if jobs is None else jobs


def _say(grade: StudentGrade) -> None:
    shown = f"not graded: {grade.harness_error}" if grade.harness_error else f"{grade.total:g}/{grade.max:g}"
    typer.echo(f"{grade.student}: {shown}", err=True)


@app.command("grade", cls=Command, epilog=GRADE_EXIT)
def grade_cmd(  # noqa: PLR0917 - typer: the parameters are the command's options
    tarball: list[Path] = typer.Argument(None, metavar="TARBALL", help="Hand-in tarballs, or directories of them."),
    out: Path = typer.Option(DEFAULT_OUT / "grade", metavar="DIR", help="The gradebook and a directory per student."),
    kernel_release: str | None = typer.Option(None, metavar="RELEASE", help=f"The course's kernel. {SERIES_HELP}"),
    jobs: int | None = typer.Option(
        None, min=1, metavar="N", help="VMs at once (default: as many as the cores and memory allow)."
    ),
    deadline: str | None = typer.Option(None, metavar="TIME", help="ISO 8601; late days cost the rubric's penalty."),
    times: Path | None = typer.Option(None, metavar="CSV", help="student,time lines: the submission times."),
    rubric: Path | None = typer.Option(None, metavar="FILE", help="A rubric TOML (default: the assignment's)."),
    print_rubric: bool = typer.Option(False, "--print-rubric", help="Print the default rubric to copy, and exit."),
    scheduler: str | None = typer.Option(None, metavar="tcp://HOST:8786", help="Grade on a Dask cluster."),
    accel: Accelerator = typer.Option(Accelerator.auto, help="auto, kvm or tcg."),
    timeout: float = typer.Option(120.0, min=10.0, metavar="SECONDS", help="Limit on each module's step."),
) -> None:
    """Grade hand-in tarballs by the rubric: one fresh VM per module, a gradebook and feedback per student."""
    from ..grade import rubric as rubric_file  # noqa: PLC0415 - loaded by this command only: others start sooner
    from ..kmod import kernels  # noqa: PLC0415

    if print_rubric:
        typer.echo(rubric_file.default_text(), nl=False)
        raise typer.Exit(0)
    if not tarball:
        raise UsageError("no tarball given: pass hand-in tarballs, or a directory of them (or --print-rubric)")
    checked = (rubric_file.load(rubric), tarballs_of(tarball), parse_deadline(deadline) if deadline else None)
    submission_times = _times(times)
    kernel = kernels.select(kernel_release)
    kernel.require_image()
    from ..grade import run as grade_run  # noqa: PLC0415

    request = grade_run.GradeRequest(
        checked[1],
        out,
        checked[0],
        kernel.release,
        _jobs(jobs),
        checked[2],
        submission_times,
        scheduler,
        accel,
        timeout,
    )
    book = grade_run.grade_class(request, _say)
    failed = [g.student for g in book.students if g.harness_error]
    typer.echo(f"{len(book.students) - len(failed)} graded, {len(failed)} not: {out / 'gradebook.csv'}")
    raise typer.Exit(1 if failed else 0)
