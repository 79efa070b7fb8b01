"""Pictures of the study that a run's own PNG cannot give: a process tree drawn per program (the largest
process of each of its busiest executables, on the run's clock), since each process has its own
address-space layout and one axis across them mixes unrelated addresses; and pf_probe_C's runs in three
panels (its code, data and other segments) on one time axis."""

from __future__ import annotations

import dataclasses
import textwrap
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ..errors import PfhError
from ..plot import Drawable, PlotRequest, draw
from ..results import figures, pictures
from .model import StudyRun
from .places import shown_command

TOP_PROGRAMS = 4  # executables drawn per tree
MIN_FAULTS = 100  # a program whose largest process has fewer faults is not drawn


def top_programs(run: StudyRun, top: int = TOP_PROGRAMS) -> list[tuple[str, int]]:
    """(comm, tgid of its process with the most faults) for the executables with the most faults."""
    saved = run.result.saved
    if saved is None or len(saved.processes) < 2:
        return []
    comm = {p.tgid: p.comm for p in saved.processes}
    per_process = Counter(r.tgid for r in saved.records)
    per_comm: Counter[str] = Counter()
    for tgid, n in per_process.items():
        per_comm[comm.get(tgid, "?")] += n
    out = []
    for name, _ in per_comm.most_common():
        tgid, n = max(((t, n) for t, n in per_process.items() if comm.get(t, "?") == name), key=lambda tn: tn[1])
        if name != "?" and n >= MIN_FAULTS:
            out.append((name, tgid))
        if len(out) == top:
            break
    return out


def _drawable(run: StudyRun, out_dir: Path) -> Drawable | None:
    """The run's records to draw, titled with its command as report.txt shows it ($OUT, $PFHARNESS)."""
    drawable = Drawable.of_result(run.result)
    if drawable is None:
        return None
    return dataclasses.replace(drawable, command=[shown_command(tuple(run.result.command), str(out_dir))])


def tree_pictures(run: StudyRun, out_dir: Path, note: Callable[[str], None]) -> list[Path]:
    """<workload>-<module>-<comm>.png per busy program of a process tree; a picture that cannot be drawn
    is told, not fatal."""
    drawable = _drawable(run, out_dir)
    if drawable is None:
        return []
    written = []
    for comm, tgid in top_programs(run):
        png = out_dir / f"{run.workload.key}-{run.module}-{comm.replace('/', '_')}.png"
        try:
            written += draw(drawable, PlotRequest(pid=tgid, png=png, ascii=False), lambda s: None)
        except (PfhError, ValueError) as e:  # matplotlib's ValueError: a picture is not worth the study
            note(f"no picture of {comm} in {run.label}: {e}")
    return written


_CLASS_NAMES = {
    "code": "code segment (the program's text)",
    "data": "data segment (the program's initialised data and bss)",
    "other": "other (libraries, heap, mappings, stack)",
}


def class_panels(run: StudyRun, png: Path) -> Path | None:
    """<workload>-C.png: a panel per segment class that has faults, on the run's clock."""
    saved = run.result.saved
    if saved is None or not saved.records:
        return None
    t0 = min(r.t_ns for r in saved.records)
    panels = []
    for cls, name in _CLASS_NAMES.items():
        records = [r for r in saved.records if figures.fault_class(r) == cls]
        if records:
            panels.append(
                pictures.Picture(
                    records=records,
                    regions=saved.regions,
                    title="",
                    subtitle=f"{name}: {len(records)} faults",
                    processes=saved.processes,
                    t0_ns=t0,
                )
            )
    command = textwrap.shorten(shown_command(tuple(run.result.command), str(png.parent)), width=70, placeholder=" ...")
    title = f"{run.result.module}'s three plots of `{command}`, kernel {run.result.kernel_release}"
    return pictures.write_figure(pictures.build_panels(panels, title), png, "png")


def trend_picture(run: StudyRun, png: Path, note: Callable[[str], None]) -> list[Path]:
    """<workload>-B.png: the run's scatter with faults per second and the pages touched so far under it (drawn
    again from the saved records, so that `study --report-only` makes it too)."""
    drawable = _drawable(run, png.parent)
    if drawable is None:
        return []
    try:
        return draw(drawable, PlotRequest(png=png, ascii=False, trends=True), lambda s: None)
    except (PfhError, ValueError) as e:  # matplotlib's ValueError: a picture is not worth the study
        note(f"no picture for {run.label}: {e}")
        return []


def study_pictures(runs: list[StudyRun], out_dir: Path, note: Callable[[str], None]) -> list[Path]:
    """Each B run's picture with its trends, and C's runs in panels."""
    written = []
    for run in runs:
        if run.module == "B":
            written += trend_picture(run, out_dir / f"{run.workload.key}-B.png", note)
        if run.module == "C":
            try:
                path = class_panels(run, out_dir / f"{run.workload.key}-C.png")
            except (PfhError, ValueError) as e:
                note(f"no panels for {run.label}: {e}")
                continue
            written += [path] if path is not None else []
    return written
