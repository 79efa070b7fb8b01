"""Commands that read what a run left, with no VM: plot and parse."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import UsageError
from .base import Command, app, fail


@app.command("plot", cls=Command)
def plot_cmd(  # noqa: PLR0917 - typer: the parameters are the command's options
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run directory: out/runs/<stamp>-<module>/."),
    scale: str = typer.Option("folded", help="folded (the empty address space cut out) or linear."),
    page_range: str | None = typer.Option(
        None, "--range", help="Only one region (by name, e.g. [heap], libc.so.6) or pages LO-HI (e.g. 0x7f000-0x7f0ff)."
    ),
    pid: int | None = typer.Option(None, help="Only the faults of this process."),
    png: Path | None = typer.Option(None, "--png", metavar="FILE", help="Write a PNG picture (pfharness[plot])."),
    svg: Path | None = typer.Option(
        None, "--svg", metavar="FILE", help="Write an SVG picture (needs pfharness[plot])."
    ),
    color_by: str = typer.Option("region", help="Colour the picture's marks by region or by pid."),
    table: bool = typer.Option(
        False, "--table", help="Print the top-5 tables (faults by region, library, process) instead of the plot."
    ),
    trends: bool = typer.Option(
        False, "--trends", help="Under the picture: faults per second and distinct pages touched so far."
    ),
) -> None:
    """Draw a saved run again with no VM: the 30 x 70 plot (or the top-5 tables), and PNG/SVG pictures."""
    from ..plot import PlotRequest, load_drawable  # noqa: PLC0415 - what a command runs is loaded when it runs
    from ..plot import draw as draw_run  # noqa: PLC0415

    request = PlotRequest(
        scale=scale, page_range=page_range, pid=pid, png=png, svg=svg, color_by=color_by, table=table, trends=trends
    )
    request.validate()
    for path in draw_run(load_drawable(run_dir), request, typer.echo):
        typer.echo(f"picture: {path}")


@app.command("parse", cls=Command)
def parse_cmd(
    transcript_file: Path = typer.Argument(
        ..., metavar="TRANSCRIPT", help="A transcript saved by `pfharness run`, or `dmesg` output."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object, as `run --json`."),
) -> None:
    """Re-read a saved transcript (or a dmesg log) with no VM and print what `run` printed."""
    from ..results import text, transcript  # noqa: PLC0415 - what a command runs is loaded when it runs

    results = transcript.parse_transcript(transcript_file)
    result = results[-1] if results else transcript.parse_kernel_log(transcript_file)
    if not results and not result.report.lines:
        fail(
            UsageError(
                f"no pf_probe output found in {transcript_file}: pass a transcript saved by "
                "`pfharness run` (out/runs/*/transcript.log) or a `dmesg` log of a pf_probe run"
            )
        )
    raise typer.Exit(text.show(result, typer.echo, as_json=as_json, err=lambda line: typer.echo(line, err=True)))
