"""The command line: pfharness kernels | render | build | check | run | parse | plot | study | dist.

Every failure is a PfhError with a one-line cause and fix, mapped to its exit status once, by the
commands' class (commands/base.py; docs/using.md, "Exit status"). Nothing else reaches the user: an
unexpected exception is written to a file in the cache and reported in one line. This module holds the
commands that trace (run, study) and the one place a command picks its target (`target_spec`, the seam the
tests replace); the others are in pfharness/commands/.
"""

from __future__ import annotations

import json
import sys
import tempfile
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from . import __version__, assets
from .commands import check as _check_commands  # noqa: F401 - registers check
from .commands import grade as _grade_commands  # noqa: F401 - registers grade
from .commands import kmod as _kmod_commands  # noqa: F401 - registers kernels, render, build, dist
from .commands import reading as _reading_commands  # noqa: F401 - registers plot, parse
from .commands import sites as _sites_commands  # noqa: F401 - registers sites
from .commands.base import (
    EXIT_HELP,
    SERIES_HELP,
    Command,
    RunCommand,
    TargetKind,
    ThpMode,
    app,
    fail,
)
from .errors import PfhError, UsageError
from .values import DEFAULT_OUT, Accelerator, Module

# What the commands do is imported when they run (`pfharness --help` and every command start sooner:
# tests/test_startup.py pins what the command line loads before a command runs).
if TYPE_CHECKING:
    from .pipeline.targets import TargetSpec
    from .plot import PlotRequest
    from .results.model import TraceResult

INTERNAL_ERROR = 120
__all__ = ["app", "main", "target_spec"]


def target_spec(
    kind: TargetKind,
    accel: Accelerator,
    *,
    smp: int = 2,
    memory_mib: int = 2048,
    thp: ThpMode | None = None,
    fresh_boot: bool = False,
) -> TargetSpec:
    """Where `run` and `study` trace, from their options (the one place a command picks a target).
    `thp` None: the guest kernel's own memory settings. `fresh_boot`: boot, never restore."""
    import dataclasses  # noqa: PLC0415 - what a command runs is loaded when it runs

    from . import mm_settings  # noqa: PLC0415
    from .pipeline.targets import HostSpec, VmSpec  # noqa: PLC0415

    if thp is not None:
        mm_settings.check_thp(thp.value, kind.value)
    if kind is TargetKind.host:
        return HostSpec()
    spec = VmSpec(accel=accel, smp=smp, memory_mib=memory_mib, thp=None if thp is None else thp.value)
    return dataclasses.replace(spec, snapshot=False) if fresh_boot else spec


@app.command("run", cls=RunCommand, context_settings={"allow_interspersed_args": False}, epilog=EXIT_HELP)
def run_cmd(  # noqa: PLR0917 - typer: the parameters are the command's options
    command: list[str] = typer.Argument(
        ..., metavar="CMD [ARG...]", show_default=False, help="The workload to trace, after --, as you would type it."
    ),
    module: str = typer.Option(
        "B",
        "--module",
        "-m",
        metavar="<A|B|C>",
        help="A (print each fault), B (plot) or C (plot per segment).",
    ),
    target: TargetKind = typer.Option(
        TargetKind.vm, help="vm: boot a Debian kernel in QEMU; host: this machine's kernel (root)."
    ),
    kernel_release: str | None = typer.Option(
        None, metavar="RELEASE", help=f"Kernel to build for and boot (default: see `pfharness kernels`). {SERIES_HELP}"
    ),
    accel: Accelerator = typer.Option(
        Accelerator.auto, help="auto (KVM only when a probe shows it works), kvm or tcg."
    ),
    smp: int = typer.Option(2, min=1, metavar="N", help="Virtual CPUs."),
    memory: int = typer.Option(2048, min=256, metavar="MIB", help="Guest memory, MiB."),
    fresh_boot: bool = typer.Option(
        False,
        "--fresh-boot",
        help="Boot the VM instead of starting it from the snapshot of its booted guest (kept in the cache, "
        "made by the first boot of each kernel and configuration).",
    ),
    thp: ThpMode = typer.Option(
        ThpMode.host,
        help="The VM's transparent huge pages: host (copy this machine's THP and overcommit settings, so the "
        "guest faults as it would), always, madvise or never (the rest still copied), or guest (the guest "
        "kernel's own defaults).",
    ),
    timeout: float = typer.Option(
        600.0,
        metavar="SECONDS",
        help="Limit on the traced step: loading the module, the workload, unloading and reading the kernel log. "
        "Not the build or the boot (which has its own 90 s limit). When it passes, the VM is stopped "
        "and pfharness exits with status 124.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (schema in docs/protocol.md)."),
    transcript_path: Path | None = typer.Option(
        None,
        "--transcript",
        metavar="FILE",
        help="Where to keep the transcript (default: the run directory's transcript.log).",
    ),
    hold: bool = typer.Option(
        True, help="Hold the workload before exec until the module is armed (--no-hold: as the course script)."
    ),
    param: list[str] = typer.Option(
        [], metavar="NAME=VALUE", help="Extra module parameter NAME=VALUE, e.g. max_records=4096; repeatable."
    ),
    follow: bool = typer.Option(
        False, "--follow", help="Also trace every process CMD creates (children, grandchildren, ...): follow=1."
    ),
    out: Path = typer.Option(
        DEFAULT_OUT, metavar="DIR", help="Build modules under OUT/<release>; each run's files under OUT/runs/."
    ),
    cwd: Path | None = typer.Option(
        None,
        metavar="DIR",
        help="The workload's working directory (default: the current one, which the VM sees too).",
    ),
    env: list[str] = typer.Option(
        [], metavar="NAME=VALUE", help="Set NAME=VALUE in the workload's environment (over the caller's); repeatable."
    ),
    png: Path | None = typer.Option(None, "--png", metavar="FILE", help="Also write a PNG picture of the faults."),
    svg: Path | None = typer.Option(None, "--svg", metavar="FILE", help="Also write an SVG picture of the faults."),
    source: list[Path] = typer.Option(
        [],
        metavar="DIR",
        help="Your own module's directory (with its Makefile) or .c files, instead of pfharness's: "
        "its kernel log lines are shown as printed (docs/check.md).",
    ),
    pid_param: str = typer.Option("tpid", metavar="NAME", help="With --source: your module's pid parameter."),
) -> None:
    """Trace CMD with a module: build, boot, load, run, unload, show the plot.

    The workload's output streams to stdout and stderr as it is produced (to stderr with --json).
    """
    from . import environment  # noqa: PLC0415 - what a command runs is loaded when it runs
    from .pipeline.events import Events  # noqa: PLC0415
    from .progress import Progress  # noqa: PLC0415
    from .run import RunRequest, run  # noqa: PLC0415

    picture_request = None
    if png is not None or svg is not None:
        from .plot import PlotRequest  # noqa: PLC0415 - numpy: only for pictures

        picture_request = PlotRequest(png=png, svg=svg, ascii=False)
        picture_request.validate()
    try:
        spec = target_spec(target, accel, smp=smp, memory_mib=memory, thp=thp, fresh_boot=fresh_boot)
        request = RunRequest(
            module=Module.parse(module),
            command=tuple(command),
            target=spec,
            kernel_release=kernel_release,
            timeout=timeout,
            transcript=transcript_path,
            hold=hold,
            params=tuple(param),
            follow=follow,
            out_dir=out,
            cwd=cwd,
            env=environment.overrides(env),
            source=tuple(source),
            pid_param=pid_param,
        )
        # The stage line: only on a terminal, never with --json (docs/using.md, "Live progress").
        # The workload's output streams through it: stdout to stdout, stderr to stderr; all to stderr
        # with --json, so that stdout holds only the JSON object.
        with Progress(enabled=sys.stderr.isatty() and not as_json) as progress:
            result = run(request, Events(progress.subscriber(all_to_stderr=as_json)))
    except PfhError as e:
        if as_json:
            typer.echo(json.dumps({"harness_error": str(e), "exit_status": e.exit_status}, indent=2))
            raise typer.Exit(e.exit_status) from None
        fail(e)
    except KeyboardInterrupt:
        if as_json:
            typer.echo(json.dumps({"harness_error": "interrupted; the VM was stopped", "exit_status": 130}, indent=2))
        else:
            typer.secho("pfharness: interrupted; the VM was stopped", fg=typer.colors.RED, err=True)
        raise typer.Exit(130) from None
    from .results import text  # noqa: PLC0415 - numpy: loaded while the guest worked

    status = text.show(result, typer.echo, as_json=as_json, with_output=False, err=_stderr_line)
    if picture_request is not None:
        status = _run_pictures(result, picture_request, status, quiet=as_json)
    raise typer.Exit(status)


def _run_pictures(result: TraceResult, request: PlotRequest, status: int, *, quiet: bool) -> int:
    """The pictures `run --png/--svg` asked for; a failure is reported and, after a good run, is the status."""
    from .plot import Drawable  # noqa: PLC0415
    from .plot import draw as draw_run  # noqa: PLC0415

    try:
        drawable = Drawable.of_result(result)
        if drawable is None:
            why = result.saved_error or f"{result.module} gave no /proc/{result.module}/records (B and C have one)"
            raise PfhError(f"no picture: {why}")
        for path in draw_run(drawable, request, typer.echo):
            if not quiet:
                typer.echo(f"picture: {path}")
    except PfhError as e:
        typer.secho(f"pfharness: error: {e}", fg=typer.colors.RED, err=True)
        return status or e.exit_status
    return status


@app.command("study", cls=Command)
def study_cmd(  # noqa: PLR0917 - typer: the parameters are the command's options
    out: Path = typer.Option(Path("out/study"), help="Where report.txt, figures.json and the transcript go."),
    module: list[str] = typer.Option(["B", "C"], "--module", "-m", help="B and/or C; repeat for several."),
    findings: Path | None = typer.Option(
        None, help="Notes of your own for report.txt, after the findings (which are computed from the figures)."
    ),
    accel: Accelerator = typer.Option(Accelerator.auto, help="auto, kvm or tcg."),
    workload: list[str] = typer.Option([], help="Only these workloads (by key, e.g. sysbench-cpu); repeatable."),
    kernel_release: str | None = typer.Option(
        None, help=f"Kernel to build for and boot (default: see `pfharness kernels`). {SERIES_HELP}"
    ),
    follow: bool = typer.Option(
        True, help="Trace every process a workload creates too (follow=1); --no-follow: the first process only."
    ),
    report_only: bool = typer.Option(
        False, help="Trace nothing: write report.txt and figures.json again from the study already in --out."
    ),
    thp: ThpMode = typer.Option(ThpMode.host, help="The VM's transparent huge pages, as for run (default: host)."),
) -> None:
    """Trace the study's workloads with B and C in one boot and write report.txt."""
    from . import study  # noqa: PLC0415 - loaded by this command only: every other command starts ~0.08 s sooner
    from .kmod import render  # noqa: PLC0415
    from .pipeline.events import Events, notes_to  # noqa: PLC0415

    if report_only:
        report = study.write_outputs(study.reread_study(out), out, findings, _stderr_line)
        typer.echo(f"report: {report}")
        return
    letters = tuple(m for m in render.normalize_modules(module) if m in ("B", "C"))
    if not letters:
        fail(UsageError("the study uses B and/or C: pass --module B and/or --module C"))
    result = study.run_study(
        out,
        letters,
        target=target_spec(TargetKind.vm, accel, thp=thp),
        events=Events(notes_to(_stderr_line)),
        only=tuple(workload),
        kernel_release=kernel_release,
        follow=follow,
    )
    report = study.write_outputs(result, out, findings, _stderr_line)
    typer.echo("\n".join(study.figures_table(result)))
    typer.echo(f"report: {report}")


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _report_internal_error(exc: BaseException) -> int:
    """One line for the user; the traceback goes to a file for the bug report."""
    try:
        directory = assets.cache_dir()
    except PfhError:
        directory = Path(tempfile.gettempdir())
    with tempfile.NamedTemporaryFile("w", prefix="internal-error-", suffix=".txt", dir=directory, delete=False) as f:
        f.write(f"pfharness {__version__}: {' '.join(sys.argv)}\n")
        f.write("".join(traceback.format_exception(exc)))
    print(
        f"pfharness: internal error: {type(exc).__name__}: {exc} (a bug: please report it with {f.name})",
        file=sys.stderr,
    )
    return INTERNAL_ERROR


def main() -> None:
    """The console entry point: the commands, with no traceback ever reaching the user."""
    try:
        app()
    except PfhError as e:  # raised outside a command's own handling (e.g. by a callback)
        print(f"pfharness: error: {e}", file=sys.stderr)
        sys.exit(e.exit_status)
    except Exception as e:
        sys.exit(_report_internal_error(e))


if __name__ == "__main__":  # pragma: no cover
    main()
