"""The pipeline: run a sequence of steps on a target and yield one result per step.

prepared = spec.prepare(release, build_dir)        # the kernel and modules, once
for result in run_steps(spec, prepared, steps, ...):  # started once, one boot for every step
    store.keep(...)                                   # each result before the next step runs
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from pathlib import Path

from ..results.model import TraceResult
from ..step import TraceRequest, trace
from .events import Events, StepDone, StepStarted
from .prepare import Prepared
from .steps import Step
from .targets import TargetSpec


def run_steps(
    spec: TargetSpec,
    prepared: Prepared,
    steps: Sequence[Step],
    *,
    transcript: Path,
    save_dir: Path,
    events: Events,
    setup_seconds: Mapping[str, float] | None = None,
) -> Generator[TraceResult, None, None]:
    """Start the target once and run `steps` on it in order, yielding each result before the next
    step starts (the caller keeps what the step saved in `save_dir` meanwhile). `setup_seconds`
    (e.g. the build's) go into the results' stage timings with the target's start-up; None leaves
    both out. Close the iterator (contextlib.closing) to stop the target early."""
    with spec.open(prepared, transcript=transcript, save_dir=save_dir, steps=steps, events=events) as opened:
        stages = None if setup_seconds is None else {**setup_seconds, **opened.stage_seconds}
        for index, step in enumerate(steps):
            events.emit(StepStarted(index, len(steps), step))
            cwd = step.cwd
            request = TraceRequest(
                module=step.module.letter,
                ko=prepared.modules[step.module.letter],
                command=step.command,
                hold=step.hold,
                params=step.params,
                pid_param=step.pid_param,
                own_module=step.own_module,
                timeout=step.timeout,
                follow=step.follow,
                cwd=cwd,
                env=None if step.env is None or cwd is None else spec.environment(step.env, cwd),
                save_dir=spec.save_path(save_dir) if step.save else None,
                save_dir_host=save_dir if step.save else None,
                oracle_ko=step.oracle_ko,
                oracle_params=step.oracle_params,
                pid_value=step.pid_value,
            )
            result = trace(opened.target, request, stage_seconds=stages, events=events, run_dir=step.run_dir)
            events.emit(StepDone(result))
            yield result
