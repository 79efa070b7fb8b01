"""What `run` and `parse` print for a TraceResult: text for people, or one JSON object."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable
from typing import Any

from . import reconcile, records_parquet, sites, sites_view, tables
from .model import TraceResult
from .run_dir import SavedRecords

OWN_LINES = 200  # run --source: the module's own lines shown at most


def _count_lines(result: TraceResult) -> list[str]:
    """The kretprobe's counts: kinds, what was left out, and whether the run is exact."""
    c = result.report.counts
    if c is None:
        return []
    lines = [
        f"kinds:           read {c.read}, write {c.write}, exec {c.exec}; major {c.major}, minor {c.minor}",
        f"not faults:      retries {c.retries} (VM_FAULT_RETRY attempts), errors {c.errors} (VM_FAULT_ERROR)",
    ]
    if c.remote or c.gup:
        lines.append(f"of the faults:   remote {c.remote} (by another process), get_user_pages {c.gup}")
    r = result.report
    if r.regions_used is not None:
        full = f", {r.regions_full} faults without a region (table full)" if r.regions_full else ""
        lines.append(f"regions:         {r.regions_used} of {r.regions_capacity}{full}")
    if c.exact:
        lines.append("exact:           yes (the probe missed no fault: nmissed 0)")
    else:
        lines.append(
            f"exact:           NOT EXACT: the probe missed faults (nmissed {c.nmissed}, kprobe nmissed "
            f"{c.kp_nmissed}); the counts and the plot are incomplete"
        )
    return lines


def summary_lines(result: TraceResult) -> list[str]:
    r = result.report
    if r.recorded is not None:
        counters = f"recorded {r.recorded}, dropped {r.dropped}, capacity {r.capacity}"
    elif r.faults is not None:
        counters = f"faults {r.faults}, fault lines collected {len(r.fault_addresses)}"
    else:
        counters = "none reported"
    plots = ", ".join(f"{p.plot_class} ({p.faults} faults, {p.scale})" for p in r.plots) or "none"
    if r.empty_classes:
        plots += "; no faults in: " + ", ".join(r.empty_classes)
    table = r.process_table
    return [
        "---- pfharness summary ----",
        *_identity_lines(result),
        f"faults:          {counters}",
        *_count_lines(result),
        *reconcile.summary_lines(result.reconciliation()),
        f"plots:           {plots}",
        *(
            [
                f"processes:       {table.traced} traced (follow), {table.overflow} without a line in the table"
                + (f" ({table.untabled_faults} faults)" if table.untabled_faults else "")
            ]
            if table is not None
            else []
        ),
        *_end_lines(result),
        *saved_lines(result),
    ]


def _identity_lines(result: TraceResult) -> list[str]:
    held = "held before exec" if result.hold else "started before the module was loaded"
    return [
        f"module:          {result.module}",
        f"command:         {shlex.join(result.command)}",
        f"kernel:          {result.kernel_release} ({result.target}, accelerator {result.accelerator})",
        *([f"memory:          {result.mm.describe()}"] if result.mm is not None else []),
        f"pid:             {'not started' if result.pid is None else f'{result.pid} ({held})'}",
    ]


def _end_lines(result: TraceResult) -> list[str]:
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in result.stage_seconds.items())
    return [
        f"workload status: {'none: it did not end in the run' if (ws := result.workload_status) is None else ws}",
        f"stages:          {stages}",
        f"transcript:      {result.transcript}",
    ]


def own_summary_lines(result: TraceResult) -> list[str]:
    """`run --source`: pfharness cannot read a module it did not write as its own format, so it shows
    what it knows (the statuses of the step) and the module's lines as printed (the first and last
    OWN_LINES / 2 of them; all are in the transcript)."""
    lines = result.own_lines()
    half = OWN_LINES // 2
    if len(lines) > OWN_LINES:
        lines = [
            *lines[:half],
            f"... ({len(lines) - 2 * half} lines left out: the transcript has them) ...",
            *lines[-half:],
        ]
    return [
        "---- pfharness summary (your own module: its output is shown as printed, not read) ----",
        *_identity_lines(result),
        f"insmod status:   {result.insmod_status}",
        f"rmmod status:    {result.rmmod_status}",
        *_end_lines(result),
        f"its kernel log ({len(result.own_lines())} line(s), as printed):",
        *(f"  {ln}" for ln in lines),
    ]


def saved_lines(result: TraceResult) -> list[str]:
    """What came back from the module's procfs files (B, C)."""
    if result.saved is not None:
        s = result.saved
        parquet = records_parquet.available()
        files = "records.csv, records.parquet, regions.csv" if parquet else "records.csv, regions.csv"
        return [
            f"records:         {len(s.table)} saved, {len(s.regions)} regions ({files})",
            *([] if parquet else [f"note:            {records_parquet.INSTALL_HINT}"]),
            *tables.table_lines(result.top_tables()),
            *sites_line(s),
        ]
    if result.saved_error:
        return [f"records:         not saved: {result.saved_error}"]
    return []


def sites_line(saved: SavedRecords) -> list[str]:
    """The top three fault sites and the time spent in faults (records version 2: IPs and service times)."""
    if saved.version < 2 or not len(saved.table):
        return []
    return [sites_view.summary_line(sites.sites(saved.table, saved.regions, 3))]


def run_dir_line(result: TraceResult) -> str | None:
    """The last line of `run`: where the run's files are, and how to draw them again."""
    if not result.run_dir:
        return None
    where = os.path.relpath(result.run_dir)
    where = result.run_dir if where.startswith("..") else where
    if result.saved is None:
        return f"run files: {where}/"
    return f"run files: {where}/ (draw again: pfharness plot {where} [--range REGION] [--png FILE])"


def json_object(result: TraceResult) -> dict[str, Any]:
    """The --json object (also a run directory's run.json): the result and its verdict."""
    error = result.verdict.error
    data = result.to_json()
    data["harness_error"] = str(error) if error else None
    data["exit_status"] = result.verdict.exit_status
    return data


def show(
    result: TraceResult,
    echo: Callable[[str], None],
    *,
    as_json: bool = False,
    with_output: bool = True,
    err: Callable[[str], None] | None = None,
) -> int:
    """Print the result (text or one JSON object) and return the exit status. `with_output`: print
    the workload's output first (parse; `run` has streamed it already). `err`: where the harness
    error's line goes (stderr; default `echo`)."""
    error = result.verdict.error
    if as_json:
        data = json_object(result)
        echo(json.dumps(data, indent=2))
        return data["exit_status"]
    if with_output and result.workload_output:
        echo(result.workload_output.rstrip("\n"))
    for line in own_summary_lines(result) if result.own_module else summary_lines(result):
        echo(line)
    for line in result.oom_kills:
        echo(f"note: the OOM killer ended a process of the run (not a kernel fault): {line}")
    # The module's lines last, so that the output ends with its plot, then where the run's files are.
    for line in result.report.lines:
        if not line.startswith("rec "):  # dumped records: in --json and the transcript
            echo(line)
    if error is not None:
        (err or echo)(f"pfharness: error: {error}")
    if (last := run_dir_line(result)) is not None:
        echo(last)
    return result.verdict.exit_status
