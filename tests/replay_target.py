"""A fake target for the pipeline's one seam (pipeline/targets.py's TargetSpec): it replays steps
recorded in transcripts (tests/data/*.log, made by tests/data/regenerate.py) instead of booting QEMU.

Each step is answered with the recording of its module: the step script's protocol lines (with the
new step's token), the workload's output on its two streams, their end markers, the console text, and,
when the recording dumped its records (dump_records=1), the module's records file in the save
directory, as run_step.sh would have copied it. Everything above the target runs for real: the step
channel, the step's reading, the verdict, the run store, the views.

Building is faked here too (a real kbuild takes ~20 s and needs the headers): prepare() names the
module files under the build directory without compiling them; the replay never loads them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pfharness.channel import StepChannel, StepRun
from pfharness.mm_settings import MmSettings
from pfharness.pipeline.events import Events
from pfharness.pipeline.prepare import Prepared
from pfharness.pipeline.steps import Step
from pfharness.pipeline.targets import Opened
from pfharness.results import module_output, notes, output_format, protocol, transcript
from pfharness.results import step_protocol as sp
from pfharness.results.records_file import FaultRecord, records_bytes
from pfharness.step import TraceRequest


def recording(path: Path) -> transcript.RecordedStep:
    """The first step recorded in `path`."""
    steps = transcript.recorded_steps(transcript.read_text(path))
    assert steps, f"{path} records no step"
    return steps[0]


def saved_of(report: module_output.ModuleReport) -> list[FaultRecord]:
    """The records a run dumped to the kernel log (dump_records=1) as the module's /proc records file
    holds them (the same records: tests/test_records_vm.py compares the two in one run)."""
    classes = [k for k, _ in output_format.FAULT_CLASSES]
    return [
        FaultRecord(
            r.t_ns,
            r.address,
            r.tgid or 0,
            output_format.REGION_NONE if r.region is None else r.region,
            output_format.ACCESS_KINDS.index(r.access or "read"),
            (output_format.RECORD_FLAG_MAJOR if r.major else 0)
            | (classes.index(r.fault_class) << output_format.RECORD_FLAG_CLASS_SHIFT if r.fault_class else 0),
        )
        for r in sorted(report.records, key=lambda r: r.index)
    ]


def recorded_report(step: transcript.RecordedStep) -> module_output.ModuleReport:
    """What the module printed in a recorded step."""
    messages = [r.message for r in protocol.parse_lines(step.proto_lines).kernel_records]
    return module_output.parse_module_output(messages, f"pf_probe_{step.values['module']}")


@dataclass
class ReplayTarget:
    """A started replay: step.Target's interface over recorded steps."""

    recordings: Mapping[str, transcript.RecordedStep]  # module letter -> its recorded step
    transcript_path: Path
    kernel_release: str
    accelerator: str
    kind: str = "vm"
    mm: MmSettings | None = None  # what the recording's boot note says
    steps_run: list[TraceRequest] = field(default_factory=list)
    _transcript: notes.Transcript | None = None

    @property
    def transcript(self) -> notes.Transcript:
        assert self._transcript is not None
        return self._transcript

    def note(self, text: str) -> None:
        self.transcript.note(text)

    def step(self, request: TraceRequest, *, channel: StepChannel, stage: str, timeout: float) -> StepRun:
        self.steps_run.append(request)
        recorded = self.recordings[request.module]
        for line in recorded.proto_lines:
            channel.proto(f"{channel.token} {line}\n".encode())
        for fd, data in recorded.output:
            channel.output(fd, data)
        parsed = protocol.parse_lines(recorded.proto_lines)
        if parsed.complete:
            for fd in (1, 2):
                channel.output(fd, sp.end_marker(channel.token))
        report = recorded_report(recorded)
        if report.records and request.save_dir_host is not None:  # what run_step.sh would have copied
            (request.save_dir_host / "records").write_bytes(records_bytes(saved_of(report), report.dropped or 0))
        return StepRun(recorded.stage_seconds.get("run", 0.0), parsed.status(sp.StepEnd), "".join(recorded.console))


@dataclass(frozen=True)
class ReplaySpec:
    """A target spec whose steps are answered from recordings: module letter -> transcript."""

    recordings: Mapping[str, Path]
    smp: int = 2
    kind = "vm"
    opened: list[ReplayTarget] = field(default_factory=list, compare=False)  # every target started, to inspect
    build_dirs: list[Path] = field(default_factory=list, compare=False)  # where prepare() was asked to build

    def check_ready(self) -> None:
        pass

    def _steps(self) -> dict[str, transcript.RecordedStep]:
        return {letter: recording(path) for letter, path in self.recordings.items()}

    def prepare(self, release: str | None, build_dir: Path) -> Prepared:
        self.build_dirs.append(build_dir)
        recorded = next(iter(self._steps().values()))
        where = build_dir / recorded.boot["release"]
        where.mkdir(parents=True, exist_ok=True)
        modules = {letter: where / f"pf_probe_{letter}.ko" for letter in "ABC"}
        return Prepared(release=recorded.boot["release"], modules=modules, kdir=where)

    def check_save_dir(self, host_dir: Path) -> None:
        pass

    def save_path(self, host_dir: Path) -> str:
        return sp.SAVE_MOUNT

    def environment(self, overrides: Mapping[str, str], cwd: Path) -> tuple[tuple[str, str], ...]:
        return tuple(sorted({**overrides, "PWD": str(cwd)}.items()))

    def check_command(self, name: str, overrides: Mapping[str, str], cwd: Path) -> None:
        """A recording's command ran where it was recorded."""

    @contextlib.contextmanager
    def open(
        self, prepared: Prepared, *, transcript: Path, save_dir: Path | None, steps: Sequence[Step], events: Events
    ) -> Iterator[Opened]:
        recordings = self._steps()
        first = next(iter(recordings.values()))
        target = ReplayTarget(
            recordings, transcript, prepared.release, first.boot.get("accel", "tcg"), mm=notes.read_mm(first.boot)
        )
        self.opened.append(target)
        events.stage("boot")
        target._transcript = notes.open_transcript(transcript)
        try:
            target.note(notes.boot_note(target.kernel_release, target.accelerator))
            yield Opened(target, {"boot": 0.0})
        finally:
            target.transcript.close()
