"""One traced step on a target (the VM's guest or this host): the request, the step script's
command line, and running it into a TraceResult."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import assets
from .channel import StepChannel, StepRun
from .errors import UsageError
from .mm_settings import MmSettings
from .pipeline.events import Events
from .results import notes
from .results import step_protocol as sp
from .results.model import Kept, RunContext, TraceResult
from .results.step_result import read_step

_PARAM = re.compile(r"^([a-z_][a-z0-9_]*)=[A-Za-z0-9_.-]+$")
_HARNESS_PARAMS = ("tpid",)  # set by the harness to the workload's pid, never by the user


class Target(Protocol):
    """Where steps run: guest.session.VmSession or host.HostTarget."""

    kind: str  # "vm" or "host"
    accelerator: str  # kvm, tcg or "host"

    @property
    def kernel_release(self) -> str: ...  # the kernel the steps run on

    @property
    def transcript_path(self) -> Path: ...

    @property
    def mm(self) -> MmSettings: ...  # the memory-management settings the steps run under

    @property
    def transcript(self) -> notes.Transcript: ...

    def step(self, request: TraceRequest, *, channel: StepChannel, stage: str, timeout: float) -> StepRun: ...

    def note(self, text: str) -> None: ...


def check_params(params: Sequence[str]) -> None:
    """Module parameters must be NAME=VALUE of plain characters, and never one the harness sets."""
    for p in params:
        m = _PARAM.match(p)
        if not m:
            raise UsageError(
                f"--param {p!r} must look like NAME=VALUE (letters, digits, _ . -), e.g. --param max_records=4096"
            )
        if m.group(1) in _HARNESS_PARAMS:
            raise UsageError(
                f"--param {p!r}: {m.group(1)} is set by pfharness to the workload's pid; "
                "leave it out (trace a running process with --target host and insmod yourself)"
            )


@dataclass(frozen=True)
class TraceRequest:
    """One workload to trace with one module."""

    module: str  # "A", "B" or "C"
    ko: Path | None  # the built module; None runs the command untraced
    command: tuple[str, ...]  # the workload's argv
    hold: bool = True  # hold the workload before exec until the module is armed
    params: tuple[str, ...] = ()  # extra module parameters, NAME=VALUE
    timeout: float = 600.0  # seconds for the whole step
    follow: bool = False  # also trace every process the workload creates (module parameter follow=1)
    cwd: Path | None = None  # the workload's working directory (None: where the target's shell is)
    env: tuple[tuple[str, str], ...] | None = None  # the workload's whole environment (None: the target's)
    save_dir: str | None = None  # where the target copies /proc/<module>/{records,regions,processes} (its path)
    save_dir_host: Path | None = None  # the same directory as the host sees it (read back after the step)
    #: pfharness's own recorder (B with records, built under another name: kbuild.build_oracle), loaded before
    #: `ko` for the same pid; the save directory then holds its files, while the report is `ko`'s output
    oracle_ko: Path | None = None
    oracle_params: tuple[str, ...] = ()  # the oracle's parameters, NAME=VALUE (e.g. max_records=...)
    pid_param: str = sp.PID_PARAM  # the module's parameter for the workload's pid (a brought module's own name)
    own_module: bool = False  # a module pfharness did not write (run --source): its output is not parsed
    pid_value: int | None = None  # the module gets pid_param=<this>, not the workload's pid (check's missing-pid)

    def argv(
        self,
        token: str,
        *,
        proto: str | None = None,
        proto_fd: int | None = None,
        kmsg_fd: int | None = None,
        busybox: str | None = None,
    ) -> list[str]:
        """The run_step.sh command line for this request (step_protocol.StepCommand): its protocol lines
        carry `token` and go to the file `proto` or the inherited descriptor `proto_fd`; `kmsg_fd`: the
        kernel log is read from that inherited descriptor (the VM's shell holds one); `busybox`: its path."""
        check_params(self.params)
        check_params(self.oracle_params)
        params = list(self.params)
        if self.follow and "follow=1" not in params:
            params.append("follow=1")
        command = sp.StepCommand(
            token,
            self.command,
            proto=proto,
            proto_fd=proto_fd,
            kmsg_fd=kmsg_fd,
            busybox=busybox,
            cwd=None if self.cwd is None else str(self.cwd),
            ko=None if self.ko is None else str(Path(self.ko).resolve()),
            params=tuple(params),
            pid_param=self.pid_param,
            hold=self.hold,
            save_dir=self.save_dir,
            oracle_ko=None if self.oracle_ko is None else str(Path(self.oracle_ko).resolve()),
            oracle_params=self.oracle_params,
            pid_value=self.pid_value,
        )
        return command.argv(str(assets.vm_file(sp.SCRIPT)))


def trace(
    target: Target,
    request: TraceRequest,
    *,
    stage_seconds: Mapping[str, float] | None = None,
    events: Events | None = None,
    run_dir: Path | None = None,
) -> TraceResult:
    """Run one traced workload on `target` and read the result. `events` hears the "run" and the
    "collect" stages start and the workload's output as it arrives; `run_dir` is the run directory
    the result will be kept in (default: the save directory's parent).

    The transcript gets a note before the step (module, target, command, the step's random token),
    the step's channels as notes with that token, and a note after it (stage timings), so that
    `parse` can give back what this returns.
    """
    events = events or Events()
    token = sp.new_token()
    target.note(notes.step_note(request.module, target.kind, request.command, token))
    channel = StepChannel(token, target.transcript, events.output)
    events.stage("run")
    run: StepRun | None = None
    try:
        run = target.step(
            request, channel=channel, stage=f"the run of {' '.join(request.command)!s}", timeout=request.timeout
        )
    finally:
        received = channel.finish(run.console if run is not None else "")
    start = time.monotonic()
    events.stage("collect")
    context = RunContext(
        module=request.module,
        command=request.command,
        kernel_release=target.kernel_release,
        accelerator=target.accelerator,
        target=target.kind,
        transcript=str(target.transcript_path),
        mm=target.mm,
        own_module=request.own_module,
    )
    lost = None
    if not received.complete:
        lost = "no-step-end"
        target.note(f"lost why={lost} status={run.status}")
    kept = Kept()
    if request.save_dir_host is not None:
        kept = _read_back(request.save_dir_host, run_dir or request.save_dir_host.parent, received.complete)
        target.note(notes.saved_note(kept.run_dir, kept.records_file, kept.top))
    stages = {**(stage_seconds or {}), "run": run.seconds, "collect": time.monotonic() - start}
    target.note(notes.timings_note(stages))
    return read_step(received.data, context, stages, lost_reason=lost, kept=kept)


def _read_back(save_dir: Path, directory: Path, complete: bool) -> Kept:
    """What the target saved in `save_dir` (only after a complete step), kept in `directory`."""
    # numpy: loaded while the guest works (pipeline/targets.py), or here on a target that does not wait for one
    from .results import run_dir  # noqa: PLC0415
    from .results.records_file import RecordsError  # noqa: PLC0415
    from .results.tables import top_tables  # noqa: PLC0415

    saved, saved_error = None, None
    if complete:
        try:
            saved = run_dir.read_saved(save_dir)
        except RecordsError as e:
            saved_error = str(e)
    top = None if saved is None else top_tables(saved.table, saved.regions, saved.processes).to_json()
    return Kept(str(directory), saved, saved_error, run_dir.records_file_summary(saved, saved_error), top)
