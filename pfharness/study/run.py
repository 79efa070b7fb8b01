"""Trace every workload of the study with every module in one boot, keeping each run."""

from __future__ import annotations

import datetime
import sys
import time
from contextlib import closing
from pathlib import Path

from ..errors import PfhError
from ..pipeline import store
from ..pipeline.core import run_steps
from ..pipeline.events import Event, Events, StepStarted, notes_to
from ..pipeline.prepare import Prepared
from ..pipeline.steps import Step
from ..pipeline.targets import TargetSpec, VmSpec
from ..plot import Drawable, PlotRequest
from ..plot import draw as draw_run
from ..results import figures
from ..results.model import TraceResult
from ..values import Module
from .model import Study, StudyRun
from .report import losses, process_lines
from .workloads import Workload, mods_of, workloads

TRANSCRIPT = "study-transcript.log"
SAVE_DIR = "guest-save"  # where the target writes each run's procfs files (moved into runs/NAME/guest)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_study(
    out_dir: Path,
    modules: tuple[str, ...],
    *,
    target: TargetSpec | None = None,
    events: Events | None = None,
    only: tuple[str, ...] = (),
    kernel_release: str | None = None,
    follow: bool = True,
) -> Study:
    """Trace every workload with every module in one boot; everything (the builds too) goes under
    `out_dir`. The progress lines are Note events (default: printed on stderr)."""
    target = target or VmSpec(thp="host")
    events = events or Events(notes_to(_stderr))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PfhError(
            f"cannot create {out_dir} ({exc.strerror or exc}): pass --out with a writable directory"
        ) from exc
    target.check_ready()
    prepared = target.prepare(kernel_release, out_dir)
    pairs = _chosen(prepared, modules, only, events)
    runs = (out_dir / "runs").resolve()
    steps = [_step(w, m, follow=follow, run_dir=runs / f"{w.key}-{m}") for w, m in pairs]
    transcript = (out_dir / TRANSCRIPT).resolve()
    today = datetime.date.today().isoformat()
    study = Study(kernel_release=prepared.release, smp=target.smp, date=today, transcript=str(transcript))
    transcript.unlink(missing_ok=True)
    save_dir = (out_dir / SAVE_DIR).resolve()
    save_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    events.subscribe(_announcer(pairs, start, events))
    results = run_steps(target, prepared, steps, transcript=transcript, save_dir=save_dir, events=events)
    with closing(results):
        for (workload, module), result in zip(pairs, results, strict=True):
            study.accelerator = result.accelerator
            study.memory = result.mm.describe() if result.mm is not None else study.memory
            study.runs.append(_keep(workload, module, result, out_dir=out_dir, save_dir=save_dir, events=events))
    events.note(f"study done in {time.monotonic() - start:.0f} s")
    return study


def _chosen(
    prepared: Prepared, modules: tuple[str, ...], only: tuple[str, ...], events: Events
) -> list[tuple[Workload, str]]:
    """The (workload, module) pairs to trace, in order: `only` those workloads when given, each with the
    study's modules it is not limited away from; the kbuild workload left out when the kernel's kbuild
    tools do not run on this machine (its build root is not in the guest)."""
    left_out = ""
    if not prepared.tools_run_here:
        events.note(f"kbuild workload left out: {prepared.release}'s kbuild tools do not run on this machine")
        left_out = "kbuild"
    chosen = [
        w
        for w in workloads(prepared.modules["B"].parent, prepared.kdir, prepared.make_vars)
        if (not only or w.key in only) and w.key != left_out
    ]
    return [(w, m) for w in chosen for m in mods_of(w, modules)]


def _step(workload: Workload, module: str, *, follow: bool, run_dir: Path) -> Step:
    return Step(
        Module(module),
        workload.command,
        params=workload.params,
        timeout=workload.timeout,
        follow=follow and workload.follow,
        run_dir=run_dir,
    )


def _announcer(pairs: list[tuple[Workload, str]], start: float, events: Events):
    """A subscriber that tells, as each step starts, which it is and how long the study has taken."""

    def announce(event: Event) -> None:
        if isinstance(event, StepStarted):
            workload, _ = pairs[event.index]
            elapsed = time.monotonic() - start
            where = f"[{event.index + 1}/{event.total}] {workload.key} with {event.step.module.name}"
            events.note(f"{where} ... (elapsed {elapsed:.0f} s)")

    return announce


def _keep(workload: Workload, module: str, result: TraceResult, *, out_dir: Path, save_dir: Path, events: Events):
    """A study run checked (the same verdict as `run`), told, kept as out_dir/runs/<key>-<module>/ and drawn."""
    name = f"{workload.key}-{module}"
    what = f"the study run {workload.key} with {Module(module).name}"
    error = result.verdict.error
    if error is not None:  # a run `run` would fail, the study fails
        raise type(error)(f"{what} failed: {error}")
    if result.saved is None:  # the figures come from the saved records: no records, no study
        raise PfhError(f"{what} saved no records ({result.saved_error or 'no records file'}): see {result.transcript}")
    fig = figures.compute(result.saved.records, result.saved.dropped)
    seconds = sum(result.stage_seconds.get(stage, 0.0) for stage in ("run", "collect"))
    events.note(f"      {fig.faults} faults in {seconds:.1f} s, workload status {result.workload_status}")
    events.note(f"      {losses(result)}")
    for line in process_lines(result, top=5):
        events.note(f"      {line}")
    result = store.keep(result, saved_from=save_dir)
    _picture(result, out_dir / f"{name}.png", name, events)
    return StudyRun(workload, module, result, fig, seconds)


def _picture(result: TraceResult, png: Path, name: str, events: Events) -> None:
    """out_dir/NAME.png from the run's saved records; a picture that cannot be drawn is told, not fatal."""
    drawable = Drawable.of_result(result)
    assert drawable is not None  # the records were checked
    try:
        for path in draw_run(drawable, PlotRequest(png=png, ascii=False, trends=True), lambda s: None):
            events.note(f"      picture: {path}")
    except (PfhError, ValueError) as e:  # matplotlib's ValueError: a picture is not worth the study
        events.note(f"      no picture for {name}: {e}")
