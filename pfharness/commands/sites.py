"""`pfharness sites RUN_DIR`: which code made a saved run's faults, and what they cost (docs/sites.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..values import SITES_TOP
from .base import Command, app

if TYPE_CHECKING:
    from ..results import run_dir, sites

EVERY = 1 << 30  # rows: all of them (the flame picture draws every site)


def load_run(path: Path) -> run_dir.SavedRun:
    """A saved run whose records have IPs and service times, or a RecordsError that says why not."""
    from ..results import run_dir  # noqa: PLC0415 - what a command runs is loaded when it runs
    from ..results.records_file import RecordsError  # noqa: PLC0415

    run = run_dir.load_run(path)
    if run.saved.version < 2:
        raise RecordsError(
            f"{path}: its records are of version {run.saved.version}, without IPs or service times: "
            "fault sites need version 2 (run again with this pfharness)"
        )
    return run


def pictures(run: run_dir.SavedRun, view: sites.Sites, png: Path | None, svg: Path | None) -> list[Path]:
    """The histograms as a PNG and the flame-style picture of the sites as an SVG, as asked."""
    from ..results import sites, sites_pictures  # noqa: PLC0415 - what a command runs is loaded when it runs
    from ..results.pictures import picture_format  # noqa: PLC0415

    title = f"{' '.join(run.command) or run.comm} ({run.kernel_release or 'kernel not known'})"
    made = []
    if png is not None:
        picture_format(png, "png")
        made.append(sites_pictures.histograms_png(view, png, title))
    if svg is not None:
        picture_format(svg, "svg")
        everything = sites.sites(run.saved.table, run.saved.regions, EVERY).functions
        made.append(sites_pictures.flame_svg(view, everything, svg, title))
    return made


@app.command("sites", cls=Command)
def sites_cmd(
    path: Path = typer.Argument(..., metavar="RUN_DIR", help="A run directory: out/runs/<stamp>-<module>/."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    top: int = typer.Option(SITES_TOP, min=1, help="Rows in each table."),
    png: Path | None = typer.Option(
        None, "--png", metavar="FILE", help="Write the service-time histograms as a PNG (pfharness[plot])."
    ),
    svg: Path | None = typer.Option(
        None, "--svg", metavar="FILE", help="Write a flame-style picture of the sites as an SVG (pfharness[plot])."
    ),
) -> None:
    """Fault sites of a saved run: faults and service time by function and by library, log2 histograms of the
    service time (minor, major, read, write, exec) and the slowest faults."""
    from ..results import sites, sites_view  # noqa: PLC0415 - what a command runs is loaded when it runs

    run = load_run(path)
    view = sites.sites(run.saved.table, run.saved.regions, top)
    if as_json:
        typer.echo(json.dumps(view.to_json(), indent=2))
    else:
        for line in sites_view.sites_text(view):
            typer.echo(line)
    for made in pictures(run, view, png, svg):
        typer.echo(f"picture: {made}", err=as_json)
