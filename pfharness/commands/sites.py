"""`pfharness sites RUN_DIR`: which code made a saved run's faults, and what they cost (docs/sites.md)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..results import run_dir, sites, sites_view
from ..results.records_file import RecordsError
from .base import Command, app


def load_sites(path: Path, top: int) -> sites.Sites:
    """The sites view of a saved run, or a RecordsError that says why there is none."""
    run = run_dir.load_run(path)
    if run.saved.version < 2:
        raise RecordsError(
            f"{path}: its records are of version {run.saved.version}, without IPs or service times: "
            "fault sites need version 2 (run again with this pfharness)"
        )
    return sites.sites(run.saved.table, run.saved.regions, top)


@app.command("sites", cls=Command)
def sites_cmd(
    path: Path = typer.Argument(..., metavar="RUN_DIR", help="A run directory: out/runs/<stamp>-<module>/."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    top: int = typer.Option(sites.TOP, min=1, help="Rows in each table."),
) -> None:
    """Fault sites of a saved run: faults and service time by function and by library, log2 histograms of the
    service time (minor, major, read, write, exec) and the slowest faults."""
    view = load_sites(path, top)
    if as_json:
        typer.echo(json.dumps(view.to_json(), indent=2))
        return
    for line in sites_view.sites_text(view):
        typer.echo(line)
