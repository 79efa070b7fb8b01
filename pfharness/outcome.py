"""What `run` and `parse` print for a TraceResult, and the exit status it gives."""

from __future__ import annotations

import json
from typing import Callable

from .errors import KernelSplat, ModuleLoadError, PfhError, VmLost, VmTimeout, WorkloadNotFound
from .trace import TraceResult


def harness_error(result: TraceResult) -> PfhError | None:
    """The harness failure this result shows, if any (the workload's own status is not one)."""
    if result.not_found:
        return WorkloadNotFound(
            f"command not found on the {result.target}: {result.command[0] if result.command else '?'} "
            "(the VM sees the host's programs: install it on the host, or give its full path)"
        )
    if result.insmod_status not in (None, 0):
        why = "\n".join("    " + m for m in result.module_errors()) or "    (the module printed nothing)"
        return ModuleLoadError(f"insmod {result.module} failed with status {result.insmod_status}:\n{why}")
    if result.step_error:
        return PfhError(f"the run could not start the workload properly ({result.step_error} failed, "
                        f"status {result.step_status}); transcript: {result.transcript}")
    if not result.complete and result.lost_reason == "timeout":
        return VmTimeout(f"the run did not finish within its timeout and the VM was killed; transcript: {result.transcript}")
    if not result.complete:
        panic = [s for s in result.splats if "Kernel panic" in s]
        why = f"the kernel panicked: {panic[0]}" if panic else "its output is truncated"
        return VmLost(f"the run ended before its last step ({why}); transcript: {result.transcript}")
    if result.splats:
        shown = "\n".join("    " + s for s in result.splats[:40])
        return KernelSplat(f"the kernel log shows {len(result.splats)} splat line(s); the run is not trustworthy:\n{shown}\n"
                           f"transcript: {result.transcript}")
    if result.kmsg_lost:
        return PfhError(f"the kernel log overwrote this run's lines before they were read ({result.kmsg_lost} gap(s)): "
                        "the plot or fault lines may be incomplete; trace a shorter run, or B/C without dump_records; "
                        f"transcript: {result.transcript}")
    if result.insmod_status == 0 and result.rmmod_status == 0 and result.report.seen is None:
        return PfhError(f"{result.module} printed no summary at unload: its report is missing from the kernel log; "
                        f"transcript: {result.transcript}")
    if result.rmmod_status not in (None, 0):
        return PfhError(f"rmmod {result.module} failed with status {result.rmmod_status}; transcript: {result.transcript}")
    return None


def exit_status(result: TraceResult) -> int:
    """The workload's exit status when the harness succeeded, else the harness failure's status."""
    error = harness_error(result)
    if error is not None:
        return error.exit_status
    return result.workload_status if result.workload_status is not None else 0


def summary_lines(result: TraceResult) -> list[str]:
    r = result.report
    if r.recorded is not None:
        counters = f"recorded {r.recorded}, dropped {r.dropped}, capacity {r.capacity}"
    elif r.faults is not None:
        counters = f"faults {r.faults}, fault lines collected {len(r.fault_addresses)}"
    else:
        counters = "none reported"
    plots = ", ".join(f"{p.plot_class} ({p.faults} faults)" for p in r.plots) or "none"
    if r.empty_classes:
        plots += "; no faults in: " + ", ".join(r.empty_classes)
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in result.stage_seconds.items())
    return [
        "---- pfharness summary ----",
        f"module:          {result.module}",
        f"command:         {' '.join(result.command)}",
        f"kernel:          {result.kernel_release} ({result.target}, accelerator {result.accelerator})",
        f"pid:             {result.pid} ({'held before exec' if result.hold else 'started before the module was loaded'})",
        f"faults:          {counters}",
        f"plots:           {plots}",
        f"workload status: {result.workload_status}",
        f"stages:          {stages}",
        f"transcript:      {result.transcript}",
    ]


def show(result: TraceResult, echo: Callable[[str], None], *, as_json: bool = False) -> int:
    """Print the result (text or one JSON object) and return the exit status."""
    error = harness_error(result)
    if as_json:
        data = result.to_json()
        data["workload_output"] = result.workload_output
        data["harness_error"] = str(error) if error else None
        data["exit_status"] = exit_status(result)
        echo(json.dumps(data, indent=2))
        return data["exit_status"]
    if result.workload_output:
        echo(result.workload_output.rstrip("\n"))
    for line in result.report.lines:
        if not line.startswith("rec "):  # dumped records: in --json and the transcript
            echo(line)
    for line in summary_lines(result):
        echo(line)
    if error is not None:
        echo(f"pfharness: error: {error}")
    return exit_status(result)
