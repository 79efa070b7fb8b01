"""The first screen of report.txt, from figures.json alone: the set-up line, one table (a row per workload,
its first run), the three paragraphs of findings, and how to read the plots."""

from __future__ import annotations

import textwrap
from typing import Any

from . import experiments, findings
from .workloads import EXPERIMENT

_CLASS_HEADS = {"program": "prog", "libraries": "libs", "heap_anon": "anon", "stack": "stack", "files": "files"}

HOW_TO_READ = (
    "HOW TO READ THE PLOTS. Time runs left to right from the first fault (ms, or seconds for a run of 10 s or "
    "more; the PNGs in seconds; pf_probe_C's three plots of a run on one clock). Up is the "
    "virtual page number, folded: each group of regions that faulted (the program, a library, the heap, an "
    "anonymous mapping, the stack) is a band of rows, bands stacked by address, the lowest at the bottom, each "
    "given rows in proportion to its faults, so that the empty address space between regions takes no rows. A "
    "'~' in the left border means the address space is cut there: pages are skipped between that band and the "
    "one above. The hex numbers on the left are a band's lowest and highest page; the name on the right of its "
    "top row lists its regions (the program first, then by faults), with '+' when more regions share the band "
    "than the label names, and '\"' on its other rows. Marks count the faults in a cell: '.' 1, 'o' 2-9, "
    "'O' 10-99, '#' 100 or more. The module prints one 'band' line per band under its plot (name, pages, rows, "
    "faults; in study-transcript.log); the PNGs draw the same bands in seconds, a dashed line between two bands, "
    "the break mark where the axis is cut, and a legend of the regions with the most faults."
)


def setup_line(data: dict[str, Any]) -> str:
    """The one line of set-up: when, where, with what."""
    d = data["derived"]
    memory = data.get("memory") or "the guest kernel's own THP setting"
    experiments = " (the experiments with B only)" if any(r.get("tag") == EXPERIMENT for r in data["runs"]) else ""
    return (
        f"Traced {data['date']} with pfharness {data.get('pfharness', '?')} on Debian {data['kernel_release']} "
        f"in QEMU ({data['accelerator']}, {data['smp']} vCPUs) with {memory}, each workload and every process it "
        f"created; first run pf_probe_B, then pf_probe_C{experiments}; {d['runs']} runs, "
        f"{d['run_seconds']:.0f} s of workload time."
    )


def _row(run: dict[str, Any]) -> str:
    f, x = run["figures"], run["facts"]
    share = x["class_share"]
    return (
        f"{run['workload']:<19} {run.get('tag', ''):<8} {x['processes']:>5} {f['faults']:>8,} {x['mib_touched']:>6.1f} "
        f"{f['faults_per_s']:>7,.0f} {f['startup_share']:>6.0%} "
        + " ".join(f"{share[c]:>5.0%}" for c in _CLASS_HEADS)
        + f" {x['major']:>5}  {run.get('trend', '')}"
    )


def workload_runs(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The first table's runs: each workload's first, the experiments left to their own table."""
    return [run for run in findings.first_runs(data) if run.get("tag") != EXPERIMENT]


def table(data: dict[str, Any]) -> list[str]:
    """One row per workload, from its first run (pf_probe_B's)."""
    head = (
        f"{'workload':<19} {'kind':<8} {'procs':>5} {'faults':>8} {'MiB':>6} {'per s':>7} {'first':>6} "
        + " ".join(f"{h:>5}" for h in _CLASS_HEADS.values())
        + f" {'major':>5}  trend"
    )
    runs = workload_runs(data)
    rows = [_row(run) for run in runs]
    other = max((run["facts"]["class_share"]["other"] for run in runs), default=0.0)
    notes = [
        "procs: processes that faulted; MiB: distinct pages x 4 KiB (a huge-page fault: 2 MiB); per s: faults "
        "per second of the span (first to last fault); first: share of the faults in its first 10 %; by region: "
        "prog (the program's file), libs (libraries, loader, vDSO), anon (heap, anonymous), stack, files (other "
        "mapped files, /dev/zero's shared memory among them); major: faults that read from disk."
        + (f" Faults without a region or in [other]: at most {other:.0%} of a run." if other >= 0.005 else "")
    ]
    return [head, "-" * len(head), *rows, *textwrap.wrap(notes[0], width=len(head))]


def first_screen(data: dict[str, Any]) -> list[str]:
    """Title, set-up, table, the three paragraphs and the note on reading the plots."""
    title = f"Page faults of {len(workload_runs(data))} kinds of workload: memory-access trends"
    lines = [title, "=" * len(title), *textwrap.wrap(setup_line(data), width=118, break_on_hyphens=False), ""]
    first = table(data)
    lines += first
    found = experiments.table(data, width=len(first[0]))
    lines += ["", *found] if found else []
    for paragraph in findings.paragraphs(data)[0]:
        lines += ["", *textwrap.wrap(paragraph, width=118, break_on_hyphens=False)]
    lines += ["", *textwrap.wrap(HOW_TO_READ, width=118)]
    return lines
