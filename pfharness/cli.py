"""The command line: pfharness kernels | render | build | run | parse."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import dist, kbuild, kernels, outcome, render, runner, study, trace
from .errors import PfhError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Trace the page faults of a program with the pf_probe_A/B/C kernel modules.",
)

DEFAULT_OUT = Path("out")


def fail(error: PfhError) -> None:
    """Print a harness error and exit with its documented status."""
    typer.secho(f"pfharness: error: {error}", fg=typer.colors.RED, err=True)
    raise typer.Exit(error.exit_status)


def default_build_dir(release: str) -> Path:
    return DEFAULT_OUT / release


@app.command("kernels")
def kernels_cmd() -> None:
    """List the kernels this machine can build for and boot; * marks the default."""
    found = kernels.discover()
    default = kernels.default_kernel(found)
    if not found:
        typer.echo("no kernels found: install them with `apt-get install linux-image-amd64 linux-headers-amd64`")
        raise typer.Exit(1)
    typer.echo(f"  {'release':<24} {'usable':<7} {'image':<40} headers")
    for k in found:
        mark = "*" if default is not None and k.release == default.release else " "
        typer.echo(
            f"{mark} {k.release:<24} {'yes' if k.usable else 'no':<7} {str(k.image or '-'):<40} {k.headers or '-'}"
        )
    if default is None:
        typer.echo("no usable kernel: it needs both an image and headers (apt-get install linux-image-amd64 linux-headers-amd64)")


@app.command("render")
def render_cmd(
    out: Path = typer.Option(DEFAULT_OUT / "src", help="Directory to write the sources and Makefile into."),
    kernel_release: Optional[str] = typer.Option(None, help="Release the Makefile builds for by default (default: the running kernel's)."),
    module: List[str] = typer.Option([], "--module", "-m", help="A, B or C; repeat for several (default: all three)."),
) -> None:
    """Write pf_probe_A.c, pf_probe_B.c, pf_probe_C.c and a kbuild Makefile."""
    try:
        result = render.render(out, module, kernel_release=kernel_release)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--module")
    for path in [*result.sources.values(), result.makefile]:
        typer.echo(str(path))


@app.command("build")
def build_cmd(
    kernel_release: Optional[str] = typer.Option(None, help="Build against this release's headers (default: see `pfharness kernels`)."),
    kdir: Optional[Path] = typer.Option(None, help="Build against this kbuild directory instead."),
    module: List[str] = typer.Option([], "--module", "-m", help="A, B or C; repeat for several (default: all three)."),
    out: Optional[Path] = typer.Option(None, help="Build directory (default: out/<release>)."),
    werror: bool = typer.Option(False, help="Treat compiler warnings as errors."),
) -> None:
    """Render the modules and build them with kbuild (skipped when nothing changed)."""
    try:
        letters = render.normalize_modules(module)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--module")
    try:
        release = kernel_release
        if out is None:
            release, _ = kbuild.resolve_kdir(kbuild.BuildRequest(DEFAULT_OUT, letters, kernel_release, kdir))
            out = default_build_dir(release)
        result = kbuild.build(kbuild.BuildRequest(out, letters, kernel_release, kdir, werror))
    except PfhError as e:
        fail(e)
    state = "up to date" if result.skipped else "built"
    typer.echo(f"{state} for {result.kernel_release} in {result.seconds:.2f} s:")
    for path in result.modules.values():
        typer.echo(f"  {path}")


@app.command("run", context_settings={"allow_interspersed_args": False})
def run_cmd(
    command: List[str] = typer.Argument(..., metavar="-- CMD [ARG ...]", help="The workload to trace."),
    module: str = typer.Option("B", "--module", "-m", help="A (print each fault), B (plot) or C (plot per segment)."),
    target: str = typer.Option("vm", help="vm: boot a Debian kernel in QEMU; host: this machine's kernel (root)."),
    kernel_release: Optional[str] = typer.Option(None, help="Kernel to build for and boot (default: see `pfharness kernels`)."),
    accel: str = typer.Option("auto", help="auto (KVM only when a probe shows it works), kvm or tcg."),
    smp: int = typer.Option(2, min=1, help="Virtual CPUs."),
    memory: int = typer.Option(2048, min=256, help="Guest memory, MiB."),
    timeout: float = typer.Option(600.0, help="Seconds the traced run may take before the VM is killed."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (schema in the README)."),
    transcript: Optional[Path] = typer.Option(None, help="Where to keep the console transcript (default: out/transcripts/)."),
    hold: bool = typer.Option(True, help="Hold the workload before exec until the module is armed (--no-hold: as the course script)."),
    param: List[str] = typer.Option([], help="Extra module parameter NAME=VALUE, e.g. max_records=4096; repeatable."),
    out: Path = typer.Option(DEFAULT_OUT, help="Build modules under OUT/<release>; transcripts under OUT/transcripts."),
) -> None:
    """Trace CMD with a module: build, boot, load, run, unload, show the plot."""
    if target not in ("vm", "host"):
        raise typer.BadParameter("use vm or host", param_hint="--target")
    try:
        letter = render.normalize_modules([module])[0]
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--module")
    request = runner.RunRequest(
        module=letter, command=tuple(command), target=target, kernel_release=kernel_release, accel=accel,
        smp=smp, memory_mib=memory, timeout=timeout, transcript=transcript, hold=hold, params=tuple(param), out_dir=out,
    )
    try:
        result = runner.run(request)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--param")
    except PfhError as e:
        fail(e)
    except KeyboardInterrupt:
        typer.secho("pfharness: interrupted; the VM was stopped", fg=typer.colors.RED, err=True)
        raise typer.Exit(130)
    raise typer.Exit(outcome.show(result, typer.echo, as_json=as_json))


@app.command("parse")
def parse_cmd(
    transcript: Path = typer.Argument(..., exists=True, dir_okay=False, help="A transcript saved by `pfharness run`, or `dmesg` output."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object, as `run --json`."),
) -> None:
    """Re-read a saved transcript (or a dmesg log) with no VM and print what `run` printed."""
    results = trace.parse_transcript(transcript)
    result = results[-1] if results else trace.parse_kernel_log(transcript)
    if not results and not result.report.lines:
        typer.secho(f"pfharness: error: no pf_probe output found in {transcript}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    raise typer.Exit(outcome.show(result, typer.echo, as_json=as_json))


@app.command("study")
def study_cmd(
    out: Path = typer.Option(Path("out/study"), help="Where report.txt, figures.json and the transcript go."),
    module: List[str] = typer.Option(["B", "C"], "--module", "-m", help="B and/or C; repeat for several."),
    findings: Optional[Path] = typer.Option(None, help="Text of the findings for report.txt (default: study/findings.txt)."),
    accel: str = typer.Option("auto", help="auto, kvm or tcg."),
    workload: List[str] = typer.Option([], help="Only these workloads (by key, e.g. sysbench-cpu); repeatable."),
) -> None:
    """Trace the study's workloads with B and C in one boot and write report.txt."""
    try:
        letters = tuple(m for m in render.normalize_modules(module) if m in ("B", "C"))
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--module")
    if not letters:
        raise typer.BadParameter("the study uses B and/or C", param_hint="--module")
    try:
        result = study.run_study(out, letters, accel=accel, only=tuple(workload))
        report = study.write_outputs(result, out, findings)
    except PfhError as e:
        fail(e)
    typer.echo("\n".join(study.figures_table(result)))
    typer.echo(f"report: {report}")


@app.command("dist")
def dist_cmd(
    out: Path = typer.Option(Path("out/pf_probe.tar.gz"), help="The archive to write."),
    report: Path = typer.Option(dist.EXAMPLE_REPORT, help="report.txt to include (default: the committed example)."),
    kernel_release: Optional[str] = typer.Option(None, help="Release the Makefile falls back to (default: see `pfharness kernels`)."),
) -> None:
    """Write the hand-in tar.gz: pf_probe_A/B/C.c, Makefile, README, report.txt."""
    try:
        path = dist.make_dist(out, report, kernel_release)
    except PfhError as e:
        fail(e)
    typer.echo(str(path))


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
