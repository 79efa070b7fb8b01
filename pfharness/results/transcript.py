"""Read a saved transcript (or a plain kernel log) back into TraceResults, with no VM."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PfhError
from . import module_output, notes, protocol, splat
from .model import Kept, RunContext, TraceResult
from .step_result import read_step

MAX_BYTES = 512 * 1024 * 1024  # a transcript larger than this is not one pfharness wrote


class UnreadableTranscript(PfhError):
    """`parse` was given a file it cannot read (missing, too large, not a transcript)."""

    exit_status = 2


def read_text(path: Path) -> str:
    """The file's text, lines ending in "\\n"; bounded, and every byte decoded (bad ones replaced)."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise UnreadableTranscript(
                f"{path} is {size >> 20} MiB, more than a transcript can be "
                f"({MAX_BYTES >> 20} MiB): pass the transcript `pfharness run` saved"
            )
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UnreadableTranscript(
            f"cannot read {path} ({exc.strerror or exc}): pass a transcript saved by `pfharness run` or a `dmesg` log"
        ) from exc
    return re.sub(r"\r+\n", "\n", data.decode(errors="replace"))


@dataclass
class RecordedStep:
    """A step found in a transcript: its note, its channels' notes (with its token) and the console."""

    values: dict[str, str]
    boot: dict[str, str] = field(default_factory=dict)  # the note of the boot it ran in
    proto_lines: list[str] = field(default_factory=list)
    output: list[tuple[int, bytes]] = field(default_factory=list)  # (stream 1 or 2, bytes), in order
    console: list[str] = field(default_factory=list)
    lost_reason: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    saved: tuple[str, dict | None, dict | None] = ("", None, None)  # run directory, records file, top tables

    @property
    def token(self) -> str:
        return self.values.get("token", "")

    def data(self) -> protocol.StepData:
        return protocol.StepData(
            tuple(self.proto_lines),
            b"".join(d for _, d in self.output).decode(errors="replace"),
            "".join(self.console),
            self.token,
        )


def recorded_steps(text: str) -> list[RecordedStep]:
    """Every step in a transcript's text, with what its channels carried. Only the harness's notes
    are read as such, and a step's channel notes only with that step's token."""
    boot: dict[str, str] = {}
    steps: list[RecordedStep] = []
    current: RecordedStep | None = None
    for piece in re.split(r"^(" + notes.NOTE_START + re.escape(notes.HOST_NOTE) + r" .*)$", text, flags=re.M):
        if not notes.is_note(piece):
            if current is not None:  # the console's text during the step
                current.console.append(notes.console_text(piece))
            continue
        proto = notes.read_proto(piece)
        if proto is not None:
            if current is not None and proto[0] == current.token:
                current.proto_lines.append(proto[1])
            continue
        output = notes.read_output(piece)
        if output is not None:
            if current is not None and output[0] == current.token:
                current.output.append((output[1], output[2]))
            continue
        note = notes.read_note(piece)
        if note is None:
            continue
        name, values = note
        if name == "boot":
            boot = values
            current = None
        elif name == "step":
            current = RecordedStep(values, boot)
            steps.append(current)
        elif name == "lost" and steps:
            steps[-1].lost_reason = values.get("why", "lost")
        elif name == "saved" and steps:
            steps[-1].saved = notes.read_saved_note(values)
        elif name == "timings" and steps:
            for key, value in values.items():
                with contextlib.suppress(ValueError):
                    steps[-1].stage_seconds[key] = float(value)
    return steps


def parse_transcript(path: Path) -> list[TraceResult]:
    """Every traced step in a saved transcript, as `run` reported it."""
    results = []
    for step in recorded_steps(read_text(path)):
        context = RunContext(
            module=step.values.get("module", "?"),
            command=tuple(notes.decode_command(step.values.get("command", ""))),
            kernel_release=step.boot.get("release", ""),
            accelerator=step.boot.get("accel", ""),
            target=step.values.get("target", "vm"),
            transcript=str(path),
            mm=notes.read_mm(step.boot),
        )
        kept = Kept(run_dir=step.saved[0], records_file=step.saved[1], top=step.saved[2])
        results.append(read_step(step.data(), context, step.stage_seconds, step.lost_reason, kept))
    return results


def parse_kernel_log(path: Path) -> TraceResult:
    """A plain kernel log (`dmesg` output, with or without timestamps) read as one run."""
    lines = read_text(path).splitlines()
    report = module_output.parse_module_output(lines)
    return TraceResult(
        module=report.module or "?",
        command=[],
        target="log",
        transcript=str(path),
        report=report,
        pid=report.pid,
        kernel_messages=lines,
        splats=splat.scan(lines),
        complete=all(p.complete for p in report.plots),
    )
