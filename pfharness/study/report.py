"""A study written out: report.txt (the first screen, then the appendices: reruns, workloads, processes,
regions, plots) and figures.json, and a finished study read back from them (--report-only)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..errors import PfhError
from ..results import figures, run_dir, transcript
from ..results.breakdown import breakdown_lines
from ..results.model import TraceResult
from ..values import Module
from . import firstpage, reruns
from .data import build
from .model import Study, StudyRun
from .pictures import study_pictures, top_programs, tree_pictures
from .places import PLACES, shown_command
from .workloads import EXPERIMENT, Workload, workloads

NEAR_EMPTY = 20  # a plot of fewer faults is left out of report.txt (a line says so)
_BAND_LINES = ("band ", "summary ")  # under each plot: its labels say the same (the transcript keeps them)


def figures_table(study: Study) -> list[str]:
    head = (
        f"{'workload':<19} {'mod':<3} {'faults':>7} {'span s':>7} {'faults/s':>9} {'pages':>6} "
        f"{'seq':>5} {'start':>5} {'code':>5} {'data':>5} {'other':>5} {'run s':>6}"
    )
    lines = [head, "-" * len(head)]
    for run in study.runs:
        f = run.figures
        seg = [f"{f.segment_share[k]:>5.0%}" for k in ("code", "data", "other")] if f.segment_share else ["    -"] * 3
        lines.append(
            f"{run.workload.key:<19} {run.module:<3} {f.faults:>7} {f.span_s:>7.2f} {f.faults_per_s:>9.0f} "
            f"{f.distinct_pages:>6} {f.sequential_share:>5.0%} {f.startup_share:>5.0%} {' '.join(seg)} "
            f"{run.seconds:>6.1f}"
        )
    lines += [
        "",
        *loss_lines(study),
        "span: first to last fault; pages: distinct virtual pages; seq: share of faults on the page right after",
        "the previous fault's page; start: share of faults in the first 10 % of the span; code/data/other: the",
        "segment class stored with each record (pf_probe_C's classes, which B stores too); run s: wall time of",
        "the traced run (under emulation).",
    ]
    return lines


def loss_lines(study: Study) -> list[str]:
    """What the modules lost over the whole study (two lines)."""
    dropped = sum(run.figures.dropped for run in study.runs)
    capacities = sorted({run.result.report.capacity for run in study.runs if run.result.report.capacity})
    reports = [run.result.report for run in study.runs]
    nmissed = sum(r.counts.nmissed + r.counts.kp_nmissed for r in reports if r.counts is not None)
    unnamed = sum(r.regions_full or 0 for r in reports)
    overflow = sum(r.process_table.overflow for r in reports if r.process_table is not None)
    return [
        f"faults: records saved in /proc/<module>/records (dropped: {dropped or 'none'}, capacity "
        f"{', '.join(f'{c:,}' for c in capacities) or '?'};",
        f"probe misses (nmissed): {nmissed or 'none'}; faults without a region: {unnamed or 'none'}; processes "
        f"without a line in the table: {overflow or 'none'});",
    ]


def losses(result: TraceResult) -> str:
    """What the module lost in a run: faults past the buffer, probe misses, faults without a region,
    processes without a line in the table."""
    r = result.report
    counts, table = r.counts, r.process_table
    nmissed = f"{counts.nmissed}/{counts.kp_nmissed}" if counts is not None else "?"
    saved = result.saved
    return (
        f"dropped {saved.dropped if saved is not None else r.dropped}, nmissed {nmissed}, "
        f"without a region {r.regions_full if r.regions_full is not None else '?'} "
        f"(regions {r.regions_used}/{r.regions_capacity}), "
        f"table overflow {table.overflow if table is not None else '-'}"
    )


def process_lines(result: TraceResult, top: int = 20) -> list[str]:
    """The traced processes of a follow=1 run: how many, and the `top` ones by faults."""
    table = result.report.process_table
    if table is None:
        return []
    by_name: dict[str, list[int]] = {}
    for p in table.processes:
        by_name.setdefault(p.comm, []).append(p.faults)
    lines = [
        f"processes traced: {table.traced} (table overflow {table.overflow}); by name among the top "
        f"{len(table.processes)}: "
        + ", ".join(f"{name} x{len(f)} {sum(f)}" for name, f in sorted(by_name.items(), key=lambda kv: -sum(kv[1])))
    ]
    lines += [f"  {p.comm:<16} tgid {p.tgid:>6} ppid {p.ppid:>6} faults {p.faults:>8}" for p in table.processes[:top]]
    hidden = table.processes[top:]
    others = table.rest_processes + len(hidden) + table.overflow
    if others:
        faults = table.rest_faults + sum(p.faults for p in hidden) + table.untabled_faults
        lines.append(f"  the other {others} processes: {faults} faults")
    return lines


def _restricted_lines(study: Study) -> list[str]:
    """One line per way a workload is traced with fewer modules or more parameters than the others (the
    workloads traced the same way named together)."""
    ways: dict[str, list[str]] = {}
    for key, w in {run.workload.key: run.workload for run in study.runs}.items():
        if w.modules or w.params:
            how = ", ".join(
                ([f"traced with {', '.join(Module(m).name for m in w.modules)} only"] if w.modules else [])
                + ([f"loaded with {' '.join(w.params)}"] if w.params else [])
            )
            ways.setdefault(how + (f": {w.why}" if w.why else ""), []).append(key)
    return [line for how, keys in ways.items() for line in textwrap.wrap(f"{', '.join(keys)}: {how}.", width=110)]


def _heading(text: str) -> list[str]:
    return ["", text, "-" * len(text)]


def _first_runs(study: Study) -> list[StudyRun]:
    """Each workload's first run (B when it was traced with B: the cold page cache)."""
    seen: dict[str, StudyRun] = {}
    for run in study.runs:
        seen.setdefault(run.workload.key, run)
    return list(seen.values())


def _trend_runs(study: Study) -> list[StudyRun]:
    """The first runs the appendices show: the experiments' figures are in the experiments table."""
    return [run for run in _first_runs(study) if run.workload.tag != EXPERIMENT]


def _workload_lines(study: Study) -> list[str]:
    lines = _heading("APPENDIX B. The workloads")
    out_dir = str(Path(study.transcript).parent) if study.transcript else ""
    for run in _first_runs(study):
        w = run.workload
        lines.append(f"{w.key}: {w.title} [{w.kind}]")
        command = shown_command(w.command, out_dir)
        lines += textwrap.wrap(command, width=114, initial_indent="    $ ", subsequent_indent="      ")
        if w.unseen:
            lines.append(f"    not seen: {w.unseen}")
    lines += _restricted_lines(study)
    lines += textwrap.wrap(PLACES, width=110)
    return [*lines, "Made with: pfharness study --out out/study; again from its saved runs: add --report-only."]


def _process_lines(study: Study) -> list[str]:
    lines = _heading("APPENDIX C. Processes (each workload's first run; every process it created was traced)")
    for run in _trend_runs(study):
        found = process_lines(run.result, top=10)
        if found and (table := run.result.report.process_table) is not None and table.traced > 1:
            lines += ["", f"== {run.label} ==", *found]
    return lines


def _region_lines(study: Study) -> list[str]:
    lines = _heading("APPENDIX D. Regions (each workload's first run)")
    lines += [
        "Per region name (the same name in several processes counted together): faults, distinct pages, when its",
        "first and last fault came (share of the run's span), rise (share of its faults on a page above every earlier",
        "one of the same process in it: upward growth), major faults and the access mix.",
    ]
    for run in _trend_runs(study):
        saved = run.result.saved
        if saved is not None:
            found = breakdown_lines(saved.records, saved.regions, saved.processes, top_regions=5, top_processes=3)
            lines += ["", f"== {run.label} ==", *found]
    return lines


def _plot_lines(study: Study) -> list[str]:
    tried = [f"{r.workload.key}-{r.module}.png" for r in _first_runs(study) if r.workload.tag == EXPERIMENT]
    left_out = f" The experiments' plots are left out (their table gives the figures): {', '.join(tried)}."
    lines = _heading("APPENDIX E. Plots (pf_probe_B's, each workload's first run)")
    lines += textwrap.wrap(
        "pf_probe_C's three plots per run (code, data, other segment) are left out: appendix A gives their shares. "
        "Under each plot the module's 'band' and 'summary' lines are left out too (the labels say the same; "
        "study-transcript.log keeps them). Pictures: <workload>-B.png (this plot in seconds), <workload>-C.png "
        "(pf_probe_C's three segments as panels on one time axis) and, for trees, one per program."
        + (left_out if tried else ""),
        width=110,
    )
    for run in _trend_runs(study):
        table = run.result.report.process_table
        lines += ["", f"== {run.label} =="]
        if like := run.workload.plot_like:
            png = f"{run.workload.key}-{run.module}.png"
            lines.append(f"(its plot left out: the same program's start-up as {like}'s plot above; {png} draws it)")
            continue
        if table is not None and table.traced > 1:
            lines.append(
                f"(a tree of {table.traced} processes on one axis: each has its own address-space layout, so a "
                "band name can recur; one picture per program: "
                + ", ".join(f"{run.workload.key}-{run.module}-{c}.png (pid {t})" for c, t in top_programs(run))
                + ")"
            )
        for plot in run.result.report.plots:
            if (plot.faults or 0) < NEAR_EMPTY:
                n = plot.faults or 0
                lines.append(f"(the {plot.plot_class} plot left out: {n} fault{'s' if n != 1 else ''})")
            else:
                lines.extend(line for line in plot.lines if not line.startswith(_BAND_LINES))
    return lines


def render_report(study: Study, notes: str = "", data: dict | None = None) -> str:
    """report.txt: the first screen (set-up, table, trends, how to read the plots), then the appendices;
    `data` is figures.json's contents (data.build(study) when not given)."""
    data = data if data is not None else build(study)
    lines = firstpage.first_screen(data)
    if notes.strip():
        lines += _heading("NOTES") + notes.strip().splitlines()
    lines += reruns.appendix(data) + textwrap.wrap("Over all runs, " + " ".join(loss_lines(study)), width=110)
    lines += _workload_lines(study) + _process_lines(study) + _region_lines(study) + _plot_lines(study)
    return "\n".join(lines) + "\n"


def write_outputs(
    study: Study, out_dir: Path, notes_file: Path | None = None, note: Callable[[str], None] = lambda s: None
) -> Path:
    """report.txt, figures.json and the per-program pictures of process trees in `out_dir`; `notes_file`:
    hand-written notes added after the trends."""
    try:
        notes = notes_file.read_text() if notes_file is not None else ""
    except OSError as exc:
        raise PfhError(f"cannot read {notes_file} ({exc.strerror or exc}): pass --findings with a text file") from exc
    data = build(study)
    (out_dir / "figures.json").write_text(json.dumps(data, indent=2) + "\n")
    report = out_dir / "report.txt"
    report.write_text(render_report(study, notes, data))
    paths = [p for run in _trend_runs(study) for p in tree_pictures(run, out_dir, note)]
    for path in paths + study_pictures(study.runs, out_dir, note):
        note(f"picture: {path}")
    return report


def reread_study(out_dir: Path, modules: tuple[str, ...] = ("B", "C")) -> Study:
    """A finished study read back from its directory (figures.json, the transcript, runs/*/guest), to write
    report.txt again (new findings) without tracing again."""
    try:
        data = json.loads((out_dir / "figures.json").read_text())
    except (OSError, ValueError) as exc:
        raise PfhError(
            f"{out_dir}/figures.json cannot be read ({exc}): run `pfharness study --out {out_dir}` first"
        ) from exc
    results = transcript.parse_transcript(out_dir / "study-transcript.log")
    by_key = {w.key: w for w in workloads(Path("."), Path("."))}
    if len(results) != len(data["runs"]):
        raise PfhError(f"{out_dir}: {len(results)} runs in the transcript, {len(data['runs'])} in figures.json")
    study = Study(
        kernel_release=data["kernel_release"],
        accelerator=data["accelerator"],
        smp=data["smp"],
        date=data["date"],
        transcript=data["transcript"],
        memory=data.get("memory") or next((r.mm.describe() for r in results if r.mm is not None), ""),
    )
    for parsed, entry in zip(results, data["runs"], strict=True):
        name = f"{entry['workload']}-{entry['module']}"
        saved = run_dir.read_saved(out_dir / "runs" / name / run_dir.GUEST_SUBDIR)
        w = by_key.get(entry["workload"]) or Workload(
            entry["workload"], entry.get("title", entry["workload"]), entry.get("kind", "?"), tuple(entry["command"])
        )
        w = replace(w, command=tuple(entry["command"]))
        if saved is None:
            raise PfhError(f"{out_dir}/runs/{name}/{run_dir.GUEST_SUBDIR} holds no saved records: run the study again")
        result = replace(parsed, saved=saved)
        fig = figures.compute(saved.records, saved.dropped)
        study.runs.append(StudyRun(w, entry["module"], result, fig, entry["seconds"]))
    return study
