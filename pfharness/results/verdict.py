"""The verdict on a TraceResult: the harness failure it shows, if any, and the exit status it gives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import KernelSplat, ModuleLoadError, PfhError, VmLost, VmTimeout, WorkloadNotFound

if TYPE_CHECKING:
    from .model import TraceResult


@dataclass(frozen=True)
class Verdict:
    """What a result means for the harness: the failure it shows (None: the harness did its job), and
    the exit status `run` and `parse` give (the workload's own when the harness succeeded)."""

    error: PfhError | None
    exit_status: int


def judge(result: TraceResult) -> Verdict:
    """The verdict on `result` (TraceResult.verdict: computed once per result)."""
    error = _harness_error(result)
    if error is not None:
        return Verdict(error, error.exit_status)
    return Verdict(None, result.workload_status if result.workload_status is not None else 0)


def _harness_error(result: TraceResult) -> PfhError | None:
    """The harness failure this result shows, if any (the workload's own status is not one)."""
    if result.not_found:
        return WorkloadNotFound(
            f"command not found on the {result.target}: {result.command[0] if result.command else '?'} "
            "(the VM sees the host's programs: install it on the host, or give its full path)"
        )
    if result.oracle_insmod_status not in (None, 0) or result.oracle_rmmod_status not in (None, 0):
        what = "insmod" if result.oracle_insmod_status not in (None, 0) else "rmmod"
        status = result.oracle_insmod_status or result.oracle_rmmod_status
        return PfhError(
            f"{what} of pfharness's oracle (its own recorder, loaded beside {result.module}) failed with status "
            f"{status}: its kernel log lines are in the transcript {result.transcript}"
        )
    if result.insmod_status not in (None, 0):
        why = "\n".join("    " + m for m in result.module_errors()) or "    (the module printed nothing)"
        return ModuleLoadError(f"insmod {result.module} failed with status {result.insmod_status}:\n{why}")
    if result.step_error == "cwd":
        return PfhError(
            f"the workload's working directory cannot be entered on the {result.target}: pass --cwd with a "
            f"directory it can see (the VM sees the host's root read-only); transcript: {result.transcript}"
        )
    if result.step_error:
        return PfhError(
            f"the run could not start the workload properly ({result.step_error} failed, "
            f"status {result.step_status}); transcript: {result.transcript}"
        )
    if not result.complete and result.lost_reason == "timeout":
        return VmTimeout(
            f"the run did not finish within its timeout and the VM was killed; transcript: {result.transcript}"
        )
    if not result.complete and result.lost_reason == "no-step-end":
        return PfhError(
            "the step script ended without reporting its end on its protocol channel (the console shows why); "
            f"transcript: {result.transcript}"
        )
    if not result.complete:
        panic = [s for s in result.splats if "Kernel panic" in s]
        why = f"the kernel panicked: {panic[0]}" if panic else "its output is truncated"
        return VmLost(f"the run ended before its last step ({why}); transcript: {result.transcript}")
    if result.splats:
        shown = "\n".join("    " + s for s in result.splats[:40])
        return KernelSplat(
            f"the kernel log shows {len(result.splats)} splat line(s); the run is not trustworthy:\n{shown}\n"
            f"transcript: {result.transcript}"
        )
    if result.kmsg_lost:
        return PfhError(
            f"the kernel log overwrote this run's lines before they were read ({result.kmsg_lost} gap(s)): "
            "the plot or fault lines may be incomplete; trace a shorter run, or B/C without dump_records; "
            f"transcript: {result.transcript}"
        )
    if result.insmod_status == 0 and result.rmmod_status == 0 and result.report.seen is None and not result.own_module:
        return PfhError(
            f"{result.module} printed no summary at unload: its report is missing from the kernel log; "
            f"transcript: {result.transcript}"
        )
    if result.rmmod_status not in (None, 0):
        return PfhError(
            f"rmmod {result.module} failed with status {result.rmmod_status}; transcript: {result.transcript}"
        )
    return None
