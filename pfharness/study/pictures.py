"""Pictures of the study that a run's own PNG cannot give: a process tree drawn per program (the largest
process of each of its busiest executables, on the run's clock), since each process has its own
address-space layout and one axis across them mixes unrelated addresses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ..errors import PfhError
from ..plot import Drawable, PlotRequest, draw
from .model import StudyRun

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


def tree_pictures(run: StudyRun, out_dir: Path, note: Callable[[str], None]) -> list[Path]:
    """<workload>-<module>-<comm>.png per busy program of a process tree; a picture that cannot be drawn
    is told, not fatal."""
    drawable = Drawable.of_result(run.result)
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
