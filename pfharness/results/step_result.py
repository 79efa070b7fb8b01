"""A step's data (what vm/run_step.sh reported on its channel) read as a TraceResult: one reader for run and parse."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import module_output, protocol, splat
from . import step_protocol as sp
from .model import Kept, RunContext, TraceResult
from .notes import HOST_NOTE

_CONSOLE_KERNEL_LINE = re.compile(r"^\[\s*\d+\.\d+\] ")
_TIMESTAMP = re.compile(r"^\[\s*(\d+\.\d+)\] ")
PANIC_LINE = "Kernel panic - not syncing"
#: A panicking kernel prints its whole log again on the console (PANIC_PRINT_ALL_PRINTK_MSG, since 5.7; still read
#: on 7.2, where panic_console_replay= is its new name), at the loglevel panic() sets (every line): the module's
#: own info lines before the crash, which the console's loglevel=5 hid, are in the transcript (replayed_lines).
PANIC_PRINT = "panic_print=0x20"


def console_kernel_lines(text: str) -> list[str]:
    """The kernel's own lines on the console (they carry the printk timestamp); the workload's
    output is not scanned, so a program that prints "WARNING:" does not fail the run."""
    return [ln for ln in text.splitlines() if _CONSOLE_KERNEL_LINE.match(ln)]


def timestamp(line: str) -> float | None:
    """The printk timestamp (seconds since boot) a console line begins with, or None."""
    m = _TIMESTAMP.match(line)
    return float(m.group(1)) if m else None


def split_panic_replay(lines: Sequence[str]) -> tuple[list[str], list[str]]:
    """(live, replayed): the console's lines as they came, and apart the kernel log that a panicking kernel
    booted with `panic_print=0x20` printed again (every record still in its buffer, the info lines too that
    the console's loglevel hid when they were printed). The replay begins at the first kernel line after the
    panic whose timestamp is earlier than the panic's; it is the kernel lines from there (what else follows,
    the host's notes, stays live). No panic, or no replay: (lines, [])."""
    panic = next((i for i, ln in enumerate(lines) if PANIC_LINE in ln and timestamp(ln) is not None), None)
    if panic is None:
        return list(lines), []
    when = timestamp(lines[panic]) or 0.0
    start = next((i for i in range(panic + 1, len(lines)) if (t := timestamp(lines[i])) is not None and t < when), None)
    if start is None:
        return list(lines), []
    rest = lines[start:]
    return [*lines[:start], *(ln for ln in rest if timestamp(ln) is None)], [
        ln for ln in rest if timestamp(ln) is not None
    ]


def _console(transcript: Path) -> tuple[list[str], list[str]]:
    """(live, replayed) lines of the console transcript (split_panic_replay), timestamps kept."""
    if not transcript.is_file():
        return [], []
    text = transcript.read_text(errors="replace")
    return split_panic_replay([ln.rstrip("\r") for ln in text.splitlines()])


def _cut(lines: Sequence[str]) -> list[str]:
    return [_TIMESTAMP.sub("", ln) for ln in lines]


def console_lines(transcript: Path) -> list[str]:
    """The console transcript's lines as they came (not the kernel's replay at a panic), timestamps cut."""
    return _cut(_console(transcript)[0])


def replayed_lines(transcript: Path) -> list[str]:
    """The kernel log lines of the step that a panic printed again (a guest booted with panic_print=0x20:
    check's and run's), timestamps cut; empty when the kernel did not panic. The step's are those from the first
    kernel line the console showed after the step began (the kernel's taint line at the first insmod); when
    that is the crash itself, those after the last one it showed before (the boot's)."""
    live, replayed = _console(transcript)
    step = max((i for i, ln in enumerate(live) if ln.startswith(f"{HOST_NOTE} step ")), default=0)
    after = next((ln for ln in live[step:] if timestamp(ln) is not None), "")
    if after and not splat.splat_head(after):
        began = timestamp(after) or 0.0
        return _cut([ln for ln in replayed if (timestamp(ln) or 0.0) >= began])
    before = max((t for ln in live[:step] if (t := timestamp(ln)) is not None), default=-1.0)
    return _cut([ln for ln in replayed if (timestamp(ln) or 0.0) > before])


def last_before_crash(lines: Sequence[str], count: int) -> list[str]:
    """The last `count` of `lines` before the first that begins a kernel report (all of them when none does)."""
    heads = [i for i, ln in enumerate(lines) if splat.splat_head(ln)]
    return list(lines[: heads[0] if heads else len(lines)][-count:])


def read_step(
    data: protocol.StepData,
    context: RunContext,
    stage_seconds: Mapping[str, float] | None = None,
    lost_reason: str | None = None,
    kept: Kept | None = None,
) -> TraceResult:
    """Take a step's protocol lines apart and make its TraceResult. Whether the step is complete is
    the protocol's word (its StepEnd event), never the console's or the workload's."""
    step = protocol.parse_lines(data.proto_lines, data.token)
    kept = kept or Kept()
    name = context.module_name
    # Only the kernel's own records (facility 0): what user space writes to /dev/kmsg is never taken
    # for the module's output or for a splat.
    messages = [r.message for r in step.kernel_records if r.facility == protocol.KERNEL_FACILITY]
    failed = step.event(sp.Error)
    error = None if failed is None else failed.what
    started = step.event(sp.Pid) or sp.Pid()
    splats = splat.scan(messages)
    if not step.complete:
        # The step's kernel records were not all read (the VM was lost): the console's kernel lines
        # are all there is. A complete step's records already hold everything the kernel printed.
        splats += [ln for ln in splat.scan(console_kernel_lines(data.console)) if ln not in splats]
    return TraceResult(
        module=name,
        command=list(context.command),
        kernel_release=context.kernel_release,
        accelerator=context.accelerator,
        target=context.target,
        pid=started.pid,
        hold=started.hold,
        pre_exec_faults=started.prefaults,
        insmod_status=step.status(sp.Insmod),
        workload_status=step.status(sp.WorkloadEnd),
        rmmod_status=step.status(sp.Rmmod),
        oracle_insmod_status=step.status(sp.OracleInsmod),
        oracle_rmmod_status=step.status(sp.OracleRmmod),
        not_found=error == sp.NOT_FOUND,
        step_error=error if error not in (None, sp.NOT_FOUND) else None,
        step_status=step.status(sp.StepEnd),
        kmsg_lost=step.kmsg_lost,
        lost_reason=lost_reason,
        complete=step.complete,
        workload_output=data.output,
        report=module_output.ModuleReport()
        if context.own_module
        else module_output.parse_module_output(messages, name),
        kernel_messages=messages,
        splats=splats,
        oom_kills=[kill.line for kill in splat.oom_kills(messages)],
        stage_seconds=dict(stage_seconds or {}),
        transcript=context.transcript,
        run_dir=kept.run_dir,
        saved=kept.saved,
        saved_error=kept.saved_error,
        records_file=kept.records_file,
        top=kept.top,
        mm=context.mm,
        own_module=context.own_module,
    )
