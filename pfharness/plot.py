"""`pfharness plot RUN_DIR`: draw a saved run again with no VM (the ASCII plot, PNG, SVG)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .results import folded, pictures, tables, trend_pictures, views
from .results.model import TraceResult
from .results.records_file import FaultRecord, ProcessEntry, Region
from .results.run_dir import load_run


@dataclass(frozen=True)
class PlotRequest:
    """What `pfharness plot` (or `run --png/--svg`) was asked to draw."""

    scale: str = "folded"  # folded or linear
    page_range: str | None = None  # a region name or LO-HI pages
    pid: int | None = None  # one process
    png: Path | None = None
    svg: Path | None = None
    color_by: str = "region"  # or pid
    ascii: bool = True  # print the 30 x 70 plot
    table: bool = False  # print the top-5 tables (by region, library, process) instead of the plot
    trends: bool = False  # pictures: panels of faults per second and distinct pages touched so far under the scatter

    def validate(self) -> None:
        if self.scale not in folded.SCALES:
            raise UsageError(f"--scale {self.scale}: use folded or linear")
        if self.color_by not in ("region", "pid"):
            raise UsageError(f"--color-by {self.color_by}: use region or pid")
        if self.png is not None:
            pictures.picture_format(self.png, "png")
        if self.svg is not None:
            pictures.picture_format(self.svg, "svg")


@dataclass(frozen=True)
class Drawable:
    """A run's records with what titles need."""

    records: list[FaultRecord]
    regions: list[Region]
    processes: list[ProcessEntry]
    command: list[str]
    kernel_release: str
    pid: int
    comm: str

    @classmethod
    def of_result(cls, result: TraceResult) -> Drawable | None:
        """What a traced run saved (its /proc records), or None when it saved nothing."""
        if result.saved is None:
            return None
        return cls(
            records=result.saved.records,
            regions=result.saved.regions,
            processes=result.saved.processes,
            command=result.command,
            kernel_release=result.kernel_release,
            pid=result.pid or 0,
            comm=result.report.comm or "",
        )


def draw(run: Drawable, request: PlotRequest, echo: Callable[[str], None]) -> list[Path]:
    """Print the ASCII plot and write the pictures asked for; returns the pictures written."""
    request.validate()
    view = views.select(run.records, run.regions, page_range=request.page_range, pid=request.pid)
    if request.table:
        if view.what:
            echo(f"(only {view.what}: {len(view.records)} of {len(run.records)} faults)")
        for line in tables.table_text(tables.top_tables(view.records, run.regions, run.processes)):
            echo(line)
    elif request.ascii:
        pid = request.pid or run.pid
        comm = next((p.comm for p in run.processes if p.tgid == pid), run.comm)
        text = folded.draw(view.records, run.regions, scale=request.scale, pid=pid, comm=comm)
        if view.what:
            echo(f"(only {view.what}: {len(view.records)} of {len(run.records)} faults)")
        for line in text.lines:
            echo(line)
    written = []
    for path, kind in ((request.png, "png"), (request.svg, "svg")):
        if path is None:
            continue
        # A long command (a shell script, say) is cut so that the whole title fits the picture's width.
        rest = f"Page faults of `` (pid {run.pid}), kernel {run.kernel_release or '?'}"
        width = max(24, pictures.TITLE_MAX_CHARS - len(rest))
        command = textwrap.shorten(" ".join(run.command) or run.comm, width=width, placeholder=" ...")
        picture = pictures.Picture(
            records=view.records,
            regions=run.regions,
            processes=run.processes,
            title=f"Page faults of `{command}` (pid {run.pid}), kernel {run.kernel_release or '?'}",
            subtitle=(
                f"{len(view.records)} faults"
                + (f" of {len(run.records)}, {view.what}" if view.what else "")
                + f"; {request.scale} page axis"
            ),
            scale=request.scale,
            color_by=request.color_by,
            # A selection keeps the run's clock (its times read as in the whole picture), its start marked.
            t0_ns=min(r.t_ns for r in run.records) if view.what else None,
            mark="first selected fault" if view.what else "",
        )
        if request.trends:
            written.append(pictures.write_figure(trend_pictures.build_with_trends(picture), path, kind))
        else:
            written.append(pictures.write_picture(picture, path, kind))
    return written


def load_drawable(path: Path) -> Drawable:
    """A run directory as a Drawable (a RecordsError when it cannot be read)."""
    run = load_run(path)
    return Drawable(
        records=run.saved.records,
        regions=run.saved.regions,
        processes=run.saved.processes,
        command=run.command,
        kernel_release=run.kernel_release,
        pid=run.pid,
        comm=run.comm,
    )
