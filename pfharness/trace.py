"""One traced run of a workload on a target (the VM's guest or this host),
and reading its result back from the transcript."""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

from . import assets, plots, protocol, splat
from .console import ShellResult

_PARAM = re.compile(r"^[a-z_][a-z0-9_]*=[A-Za-z0-9_.-]+$")
_HOST_NOTE = re.compile(r"^##PFH-HOST## (\S+)(.*)$")
RUN_STEP = assets.VM_ASSETS / "run_step.sh"


class Target(Protocol):
    """Where steps run: VmSession or HostTarget."""

    kind: str  # "vm" or "host"

    def run(self, argv: Sequence[str], *, stage: str, timeout: float) -> ShellResult: ...

    def note(self, text: str) -> None: ...


@dataclass(frozen=True)
class TraceRequest:
    """One workload to trace with one module."""

    module: str  # "A", "B" or "C"
    ko: Path | None  # the built module; None runs the command untraced
    command: tuple[str, ...]  # the workload's argv
    hold: bool = True  # hold the workload before exec until the module is armed
    params: tuple[str, ...] = ()  # extra module parameters, NAME=VALUE
    timeout: float = 600.0  # seconds for the whole step

    def argv(self) -> list[str]:
        """The run_step.sh command line for this request."""
        for p in self.params:
            if not _PARAM.match(p):
                raise ValueError(f"module parameter {p!r} must look like NAME=VALUE (letters, digits, _ . -)")
        argv = ["sh", str(RUN_STEP)]
        if self.ko is not None:
            argv += ["--ko", str(self.ko)]
        for p in self.params:
            argv += ["--param", p]
        if not self.hold:
            argv.append("--no-hold")
        return argv + ["--", *self.command]


@dataclass
class TraceResult:
    """Everything one traced run gave. Crosses into the CLI, JSON and tests."""

    module: str  # "pf_probe_B"
    command: list[str]
    kernel_release: str = ""
    accelerator: str = ""  # kvm, tcg, or "host"
    target: str = "vm"
    pid: int | None = None  # the workload's pid (what tpid was)
    hold: bool = True
    pre_exec_faults: int | None = None  # faults of the held process before the module was loaded (not recorded)
    insmod_status: int | None = None
    workload_status: int | None = None  # exit status; 128+N when killed by signal N
    rmmod_status: int | None = None
    not_found: bool = False  # the workload command does not exist on the target
    step_error: str | None = None  # run_step.sh could not do its job (hold, /dev/kmsg, usage)
    step_status: int | None = None  # run_step.sh's own exit status
    kmsg_lost: int = 0  # times the kernel log overwrote records before they were read
    lost_reason: str | None = None  # the harness's note when the VM was lost or timed out (parse)
    complete: bool = False  # the step ran to its end
    workload_output: str = ""
    report: plots.ModuleReport = field(default_factory=plots.ModuleReport)
    kernel_messages: list[str] = field(default_factory=list)  # this run's kernel log
    splats: list[str] = field(default_factory=list)  # kernel log lines showing a splat
    stage_seconds: dict[str, float] = field(default_factory=dict)  # build, boot, run, collect
    transcript: str = ""

    def module_errors(self) -> list[str]:
        """The module's own error lines (why it refused to load)."""
        return [m for m in self.kernel_messages if m.startswith(f"{self.module}: ")]

    def to_json(self) -> dict:
        """The --json object (schema in the README)."""
        r = self.report
        return {
            "module": self.module,
            "command": self.command,
            "kernel_release": self.kernel_release,
            "accelerator": self.accelerator,
            "target": self.target,
            "pid": self.pid,
            "hold": self.hold,
            "pre_exec_faults": self.pre_exec_faults,
            "workload_status": self.workload_status,
            "insmod_status": self.insmod_status,
            "rmmod_status": self.rmmod_status,
            "counters": {
                "recorded": r.recorded,
                "dropped": r.dropped,
                "capacity": r.capacity,
                "faults": r.faults,
                "seen": r.seen,
                "fault_lines": len(r.fault_addresses) if r.module == "pf_probe_A" else None,
            },
            "plots": [
                {
                    "class": p.plot_class,
                    "title": p.title,
                    "rows": p.rows,
                    "y_labels": {str(k): v for k, v in p.y_labels.items()},
                    "x_labels_ms": p.x_labels,
                    "faults": p.faults,
                    "t_span_ns": p.t_span_ns,
                    "page_min": p.page_min,
                    "page_max": p.page_max,
                    "outside": p.outside,
                    "complete": p.complete,
                }
                for p in r.plots
            ],
            "empty_classes": r.empty_classes,
            "records": [[rec.t_ns, rec.address, rec.fault_class] for rec in r.records],  # dump_records=1 only
            "kernel_warnings": self.splats,
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            "transcript": self.transcript,
        }


_CONSOLE_KERNEL_LINE = re.compile(r"^\[\s*\d+\.\d+\] ")


def console_kernel_lines(text: str) -> list[str]:
    """The kernel's own lines on the console (they carry the printk timestamp); the workload's
    output is not scanned, so a program that prints "WARNING:" does not fail the run."""
    return [ln for ln in text.splitlines() if _CONSOLE_KERNEL_LINE.match(ln)]


def result_from_step(step: protocol.StepOutput, module: str, command: Sequence[str]) -> TraceResult:
    """Assemble a TraceResult from a parsed step."""
    name = f"pf_probe_{module}" if len(module) == 1 else module
    messages = [r.message for r in step.kernel_records]
    result = TraceResult(module=name, command=list(command))
    result.pid = step.int_value("pid", "pid")
    hold = step.value("pid", "hold")
    result.hold = hold != "0"
    result.pre_exec_faults = step.int_value("pid", "prefaults")
    result.insmod_status = step.int_value("insmod", "status")
    result.workload_status = step.int_value("workload-end", "status")
    result.rmmod_status = step.int_value("rmmod", "status")
    error = step.value("error", "what")
    result.not_found = error == "not-found"
    result.step_error = error if error not in (None, "not-found") else None
    result.step_status = step.int_value("step-end", "status")
    result.kmsg_lost = step.kmsg_lost
    result.complete = step.complete
    result.workload_output = step.workload_output
    result.kernel_messages = messages
    result.report = plots.parse_module_output(messages, name)
    result.splats = splat.scan(messages)
    return result


def result_from_output(text: str, module: str, command: Sequence[str]) -> TraceResult:
    """A step's console output read as a TraceResult: the same code for `run` and for `parse`."""
    result = result_from_step(protocol.parse_step(text), module, command)
    result.splats += [ln for ln in splat.scan(console_kernel_lines(text)) if ln not in result.splats]
    return result


def trace(target: Target, request: TraceRequest, *, stage_seconds: dict[str, float] | None = None) -> TraceResult:
    """Run one traced workload on `target` and read the result.

    The transcript gets a note before the step (module, target, command) and one after it
    (stage timings), so that `parse` can give back what this returns.
    """
    target.note(step_note(request, target.kind))
    shell = target.run(request.argv(), stage=f"the run of {' '.join(request.command)!s}", timeout=request.timeout)
    start = time.monotonic()
    result = result_from_output(shell.output, request.module, request.command)
    result.stage_seconds = dict(stage_seconds or {})
    result.stage_seconds["run"] = shell.seconds
    result.stage_seconds["collect"] = time.monotonic() - start
    target.note("timings " + " ".join(f"{k}={v:.3f}" for k, v in result.stage_seconds.items()))
    return result


def host_notes(text: str) -> list[tuple[str, dict[str, str]]]:
    """The harness's own notes in a transcript: (name, {key: value})."""
    notes = []
    for line in text.splitlines():
        m = _HOST_NOTE.match(line.strip())
        if m:
            values = dict(kv.split("=", 1) for kv in m.group(2).split() if "=" in kv)
            notes.append((m.group(1), values))
    return notes


def parse_transcript(path: Path) -> list[TraceResult]:
    """Every traced step in a saved transcript, as `run` reported it (no VM needed)."""
    text = re.sub(r"\r+\n", "\n", path.read_bytes().decode(errors="replace"))
    results = []
    boot: dict[str, str] = {}
    pieces = re.split(r"^(##PFH-HOST## .*)$", text, flags=re.M)
    pending: dict[str, str] | None = None
    for piece in pieces:
        note = host_notes(piece) if piece.startswith("##PFH-HOST## ") else []
        if note:
            name, values = note[0]
            if name == "boot":
                boot = values
            elif name == "step":
                pending = values
            elif name == "lost" and results:
                results[-1].lost_reason = values.get("why", "lost")
            elif name == "timings" and results:
                results[-1].stage_seconds.update({k: float(v) for k, v in values.items()})
            continue
        if pending is None:
            continue
        command = decode_command(pending.get("command", ""))
        result = result_from_output(piece, pending.get("module", "?"), command)
        result.kernel_release = boot.get("release", "")
        result.accelerator = boot.get("accel", "")
        result.target = pending.get("target", "vm")
        result.transcript = str(path)
        results.append(result)
        pending = None
    return results


def parse_kernel_log(path: Path) -> TraceResult:
    """A plain kernel log (`dmesg` output, with or without timestamps) read as one run."""
    text = re.sub(r"\r+\n", "\n", path.read_bytes().decode(errors="replace"))
    lines = text.splitlines()
    report = plots.parse_module_output(lines)
    result = TraceResult(module=report.module or "?", command=[], target="log", transcript=str(path))
    result.report = report
    result.pid = report.pid
    result.kernel_messages = lines
    result.splats = splat.scan(lines)
    result.complete = all(p.complete for p in report.plots)
    return result


def encode_command(command: Sequence[str]) -> str:
    """The workload's argv as one transcript-safe word."""
    return base64.b64encode(json.dumps(list(command)).encode()).decode()


def decode_command(word: str) -> list[str]:
    try:
        return json.loads(base64.b64decode(word))
    except ValueError:
        return []


def step_note(request: TraceRequest, target: str) -> str:
    """The harness note that precedes a step's output in the transcript."""
    return f"step module={request.module} target={target} command={encode_command(request.command)}"
