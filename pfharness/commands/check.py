"""`pfharness check`: a student's own module, built and run in a VM of its own per module (check/run.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..values import DEFAULT_OUT, Accelerator, Module
from .base import SERIES_HELP, Command, app

CHECK_EXIT = (
    "Exit status: 0 no error finding, 1 error findings; a harness failure keeps its own (pfharness run --help)."
)


@app.command("check", cls=Command, epilog=CHECK_EXIT)
def check_cmd(  # noqa: PLR0917 - typer: the parameters are the command's options
    source: list[Path] = typer.Option(
        ..., metavar="DIR", help="Your module's directory (with its Makefile) or .c files."
    ),
    module: list[str] = typer.Option([], "--module", "-m", help="A, B or C; repeat (default: all built)."),
    kernel_release: str | None = typer.Option(None, metavar="RELEASE", help=f"Kernel to check on. {SERIES_HELP}"),
    pid_param: str = typer.Option("tpid", metavar="NAME", help="The module's own name for the pid parameter."),
    hold: bool = typer.Option(True, help="Hold the workload before exec (--no-hold: as the course's script)."),
    out: Path = typer.Option(DEFAULT_OUT / "check", metavar="DIR", help="The build, each VM's console, the workload."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    accel: Accelerator = typer.Option(Accelerator.auto, help="auto, kvm or tcg."),
    timeout: float = typer.Option(
        120.0, min=10.0, metavar="SECONDS", help="Limit on each module's step; a module that hangs its VM: vm-lost."
    ),
) -> None:
    """Check your own pf_probe module: build it, run each module in a fresh VM, report what is wrong."""
    # Loaded by this command only: every other command starts ~0.1 s sooner.
    from ..check import run as check_run  # noqa: PLC0415
    from ..check import text as check_text  # noqa: PLC0415
    from ..pipeline.events import Events  # noqa: PLC0415
    from ..progress import Progress  # noqa: PLC0415

    request = check_run.CheckRequest(
        tuple(source),
        out,
        tuple(Module.parse(m).letter for m in module),
        kernel_release,
        pid_param,
        hold,
        accel,
        timeout,
    )
    with Progress(enabled=sys.stderr.isatty() and not as_json) as progress:
        report = check_run.check(request, Events(progress.subscriber(all_to_stderr=True)))
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        check_text.show(report, typer.echo)
    raise typer.Exit(0 if report.passed else 1)
