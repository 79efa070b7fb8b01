"""`pfharness run`: one workload traced with one module on one target, kept as a run directory."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import environment
from .errors import UsageError, VmLost, VmTimeout
from .pipeline import store
from .pipeline.core import Step, run_steps
from .pipeline.events import Events
from .pipeline.prepare import prepare_own
from .pipeline.targets import TargetSpec, VmSpec
from .results import run_layout, step_result
from .step import check_params
from .values import DEFAULT_OUT, Module

if TYPE_CHECKING:
    from .results.model import TraceResult

PID_PARAM = "tpid"  # the pid parameter's name in pfharness's modules and the course's script
LAST_LINES = 5  # the module's own kernel lines before a crash that took the VM down, quoted in the error


@dataclass(frozen=True)
class RunRequest:
    """Everything `pfharness run` was asked to do, parsed (the CLI makes it)."""

    module: Module
    command: tuple[str, ...]  # the workload
    target: TargetSpec = field(default_factory=VmSpec)  # where it runs, and how
    kernel_release: str | None = None  # default: see `pfharness kernels` (vm) or `uname -r` (host)
    timeout: float = 600.0  # seconds for the traced step
    transcript: Path | None = None  # default: the run directory's transcript.log
    hold: bool = True
    params: tuple[str, ...] = ()
    follow: bool = False  # trace the workload's children, grandchildren, ... too (follow=1)
    out_dir: Path = DEFAULT_OUT  # builds go to out_dir/<release>, the run to out_dir/runs/
    cwd: Path | None = None  # the workload's working directory (default: the caller's)
    env: Mapping[str, str] = field(default_factory=dict)  # --env NAME=VALUE, over the caller's environment
    source: tuple[Path, ...] = ()  # --source: the user's own module (directory or .c files) instead of pfharness's
    pid_param: str = PID_PARAM  # --pid-param: that module's name for the pid parameter

    def validate(self) -> None:
        """Every option checked before anything is built or booted."""
        if not self.command or not self.command[0]:
            raise UsageError("no workload: give the command after --, e.g. pfharness run -- sysbench cpu run")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise UsageError(f"--timeout {self.timeout} is not a number of seconds above 0: e.g. --timeout 600")
        check_params(self.params)
        if self.source and not isinstance(self.target, VmSpec):
            raise UsageError("--source runs your own module in a VM only (it may crash its kernel): leave out --target")
        if self.pid_param != PID_PARAM and not self.source:
            raise UsageError("--pid-param names your own module's pid parameter: give its source with --source DIR")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", self.pid_param):
            raise UsageError(f"--pid-param {self.pid_param!r} must be a plain identifier, e.g. --pid-param process_id")
        self.target.check_command(self.command[0], self.env, environment.working_directory(self.cwd))


def run(request: RunRequest, events: Events | None = None) -> TraceResult:
    """Do one traced run; raises PfhError subclasses for harness failures. `events` hears of each
    stage as it starts (build, boot, run, collect), the workload's output and the result."""
    events = events or Events()
    request.validate()
    spec = request.target
    if isinstance(spec, VmSpec):  # a panic prints the kernel's log again, as in check (step_result.PANIC_PRINT)
        spec = dataclasses.replace(spec, extra_append=(*spec.extra_append, step_result.PANIC_PRINT))
    spec.check_ready()
    events.stage("build")
    if request.source:
        prepared = prepare_own(request.kernel_release, request.out_dir, request.source, request.module.name)
    else:
        prepared = spec.prepare(request.kernel_release, request.out_dir)
    directory = store.new_run(request.out_dir, request.module.name)
    guest = store.guest_dir(directory)
    spec.check_save_dir(guest)
    step = Step(
        module=request.module,
        command=request.command,
        params=request.params,
        pid_param=request.pid_param,
        own_module=bool(request.source),
        timeout=request.timeout,
        follow=request.follow,
        hold=request.hold,
        cwd=environment.working_directory(request.cwd),
        env=request.env,
        run_dir=directory,
    )
    transcript = (request.transcript or directory / run_layout.TRANSCRIPT).resolve()
    setup = {"build": prepared.build_seconds}
    try:
        with closing(
            run_steps(spec, prepared, [step], transcript=transcript, save_dir=guest, events=events, setup_seconds=setup)
        ) as results:
            (result,) = results
    except VmTimeout:
        raise  # a hang killed at the timeout: no panic, no replay
    except VmLost as e:
        raise with_last_lines(e, transcript, request.module.name) from e
    return store.keep(result)


def with_last_lines(error: VmLost, transcript: Path, name: str) -> VmLost:
    """`error` (the VM died) with the module's own last kernel lines before the crash, from the kernel's replay
    of its log at the panic (its `name:` lines when it has any, else the step's whole log); `error` itself when
    there was no replay."""
    replayed = step_result.replayed_lines(transcript)
    own = [ln for ln in replayed if ln.startswith(f"{name}: ")] or replayed
    last = step_result.last_before_crash(own, LAST_LINES)
    if not last:
        return error
    shown = "\n".join(f"    {ln.strip()}" for ln in last)
    return VmLost(f"{error}\nthe module's last kernel lines before the crash (replayed by the panic):\n{shown}")
