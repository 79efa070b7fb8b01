"""One traced step on a target (the VM's guest or this host): the request, the step script's
command line, and running it into a TraceResult."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from . import assets
from .errors import UsageError
from .guest.console import ShellResult
from .results import notes
from .results.model import RunContext, TraceResult
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

    def run(self, argv: Sequence[str], *, stage: str, timeout: float) -> ShellResult: ...

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

    def argv(self) -> list[str]:
        """The run_step.sh command line for this request."""
        check_params(self.params)
        argv = ["sh", str(assets.vm_file("run_step.sh"))]
        if self.ko is not None:
            argv += ["--ko", str(self.ko)]
        params = list(self.params)
        if self.follow and "follow=1" not in params:
            params.append("follow=1")
        for p in params:
            argv += ["--param", p]
        if not self.hold:
            argv.append("--no-hold")
        return [*argv, "--", *self.command]


def trace(target: Target, request: TraceRequest, *, stage_seconds: dict[str, float] | None = None) -> TraceResult:
    """Run one traced workload on `target` and read the result.

    The transcript gets a note before the step (module, target, command) and one after it
    (stage timings), so that `parse` can give back what this returns.
    """
    argv = request.argv()
    target.note(notes.step_note(request.module, target.kind, request.command))
    shell = target.run(argv, stage=f"the run of {' '.join(request.command)!s}", timeout=request.timeout)
    start = time.monotonic()
    context = RunContext(
        module=request.module,
        command=request.command,
        kernel_release=target.kernel_release,
        accelerator=target.accelerator,
        target=target.kind,
        transcript=str(target.transcript_path),
    )
    stages = {**(stage_seconds or {}), "run": shell.seconds}
    result = read_step(shell.output, context, stages)
    stages["collect"] = time.monotonic() - start
    target.note(notes.timings_note(stages))
    return replace(result, stage_seconds=stages)
