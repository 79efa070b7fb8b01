"""A study written out: report.txt (findings, figures, processes, regions, plots) and figures.json,
and a finished study read back from them (--report-only)."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

from .. import __version__, assets
from ..errors import PfhError
from ..results import figures, run_dir, transcript
from ..results.breakdown import breakdown_lines
from ..results.model import TraceResult, process_table_json
from ..values import Module
from .model import Study, StudyRun
from .workloads import Workload, workloads


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
    dropped = sum(run.figures.dropped for run in study.runs)
    capacities = sorted({run.result.report.capacity for run in study.runs if run.result.report.capacity})
    reports = [run.result.report for run in study.runs]
    nmissed = sum(r.counts.nmissed + r.counts.kp_nmissed for r in reports if r.counts is not None)
    unnamed = sum(r.regions_full or 0 for r in reports)
    overflow = sum(r.process_table.overflow for r in reports if r.process_table is not None)
    lines += [
        "",
        f"faults: records saved in /proc/<module>/records (dropped: {dropped or 'none'}, capacity "
        f"{', '.join(f'{c:,}' for c in capacities) or '?'};",
        f"probe misses (nmissed): {nmissed or 'none'}; faults without a region: {unnamed or 'none'}; processes "
        f"without a line in the table: {overflow or 'none'});",
        "span: first to last fault; pages: distinct virtual pages; seq: share of faults on the page right after",
        "the previous fault's page; start: share of faults in the first 10 % of the span; code/data/other: the",
        "segment class stored with each record (pf_probe_C's classes, which B stores too); run s: wall time of",
        "the traced run (under emulation).",
    ]
    return lines


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
    """One line per workload traced with fewer modules or more parameters than the others."""
    seen: dict[str, Workload] = {}
    for run in study.runs:
        seen.setdefault(run.workload.key, run.workload)
    return [
        line
        for w in seen.values()
        if w.modules or w.params
        for line in textwrap.wrap(
            f"{w.key}: "
            + ", ".join(
                ([f"traced with {', '.join(Module(m).name for m in w.modules)} only"] if w.modules else [])
                + ([f"loaded with {' '.join(w.params)}"] if w.params else [])
            )
            + (f": {w.why}" if w.why else "")
            + ".",
            width=110,
        )
    ]


def render_report(study: Study, findings: str) -> str:
    count = len({run.workload.key for run in study.runs})
    title = f"Page faults of {count} workload{'s' if count != 1 else ''}: memory-access trends"
    lines = [
        title,
        "=" * len(title),
        "",
        f"Runs made on {study.date} with pfharness {__version__}, Debian kernel {study.kernel_release} in QEMU",
        f"(accelerator {study.accelerator}, {study.smp} vCPUs), modules pf_probe_B and pf_probe_C; each workload",
        "held before exec until the module was armed; the figures come from the records each module saved in",
        "/proc/<module>/records, copied out after each run (the kernel log gives only each module's counts,",
        "process table and plots).",
        "Regenerate with: make demo && .venv/bin/pfharness study --out out/study",
        *_restricted_lines(study),
        "",
        "FINDINGS",
        "--------",
        findings.strip(),
        "",
        "FIGURES",
        "-------",
        *figures_table(study),
        "",
        "WORKLOADS",
        "---------",
    ]
    seen = set()
    for run in study.runs:
        w = run.workload
        if w.key in seen:
            continue
        seen.add(w.key)
        lines.append(f"{w.key}: {w.title} [{w.kind}]")
        lines.append(f"    command: {' '.join(w.command)}")
        if w.unseen:
            lines.append(f"    not seen: {w.unseen}")
    lines += ["", "PROCESSES", "---------", "Each workload and every process it created were traced (follow=1)."]
    for run in study.runs:
        found = process_lines(run.result)
        if found:
            lines += ["", f"== {run.label} ==", *found]
    lines += [
        "",
        "REGIONS",
        "-------",
        "From the records each module saved (/proc/<module>/records and regions): access and major/minor, then per",
        "region name (the same name in several processes counted together): faults, distinct pages, when its first",
        "and last fault came (share of the run's span), rise (share of its faults on a page above every earlier one",
        "of the same process in it: upward growth), major faults and the access mix; with several processes, the top",
        "process names and where their faults went. PNG per run: <workload>-<module>.png.",
    ]
    for run in study.runs:
        saved = run.result.saved
        if saved is not None:
            lines += [
                "",
                f"== {run.label} ==",
                *breakdown_lines(saved.records, saved.regions, saved.processes),
            ]
    lines += ["", "PLOTS", "-----"]
    for run in study.runs:
        lines.append("")
        lines.append(f"== {run.label} ==")
        for plot in run.result.report.plots:
            lines.extend(plot.lines)
        for cls in run.result.report.empty_classes:
            lines.append(f"(no faults in the {cls} class: plot left out)")
    return "\n".join(lines) + "\n"


def write_outputs(study: Study, out_dir: Path, findings_file: Path | None) -> Path:
    findings_path = findings_file or assets.study_file("findings.txt")
    findings = (
        findings_path.read_text()
        if findings_path.is_file()
        else (
            "(Write two or three paragraphs of findings here, from the figures and plots below, "
            f"and pass the file with --findings; none was found at {findings_path}.)"
        )
    )
    report = out_dir / "report.txt"
    report.write_text(render_report(study, findings))
    data = {
        "date": study.date,
        "kernel_release": study.kernel_release,
        "accelerator": study.accelerator,
        "smp": study.smp,
        "transcript": study.transcript,
        "runs": [
            {
                "workload": r.workload.key,
                "title": r.workload.title,
                "kind": r.workload.kind,
                "module": r.module,
                "command": list(r.workload.command),
                "workload_status": r.result.workload_status,
                "seconds": round(r.seconds, 2),
                "figures": r.figures.as_dict(),
                "processes": process_table_json(r.result.report),
            }
            for r in study.runs
        ],
    }
    (out_dir / "figures.json").write_text(json.dumps(data, indent=2) + "\n")
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
