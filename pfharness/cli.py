"""The command line: pfharness kernels | render | build | check | run | parse | plot | study | dist.

Every failure is a PfhError with a one-line cause and fix; this module maps it to its exit
status (docs/using.md, "Exit status"). Nothing else reaches the user: an unexpected exception is
written to a file in the cache and reported in one line.
"""

from __future__ import annotations

import enum
import json
import sys
import tempfile
import traceback
from pathlib import Path
from typing import NoReturn

import typer

from . import __version__, assets, environment, mm_settings, study
from .check import run as check_run
from .check import text as check_text
from .errors import PfhError, UsageError
from .kmod import bring, fetch, handin, kbuild, kernels, render
from .pipeline.events import Events, notes_to
from .pipeline.targets import HostSpec, TargetSpec, VmSpec
from .plot import Drawable, PlotRequest, load_drawable
from .plot import draw as draw_run
from .progress import Progress
from .results import text, transcript
from .results.model import TraceResult
from .run import DEFAULT_OUT, RunRequest, run
from .values import Accelerator, Module

INTERNAL_ERROR = 120
INSTALL_KERNEL = "apt-get install linux-image-amd64 linux-headers-amd64"
SERIES_HELP = "An exact release, or a series (5.10, 6.1, 6.1-rt, 6.12, 7.2) of one installed or fetched."


class TargetKind(str, enum.Enum):
    vm = "vm"
    host = "host"


class ThpMode(str, enum.Enum):
    host = "host"
    always = "always"
    madvise = "madvise"
    never = "never"
    guest = "guest"


class ModuleLetter(str, enum.Enum):
    A = "A"
    B = "B"
    C = "C"


def _bare_flags(params):
    """An on/off option (--json, --help) is shown as a bare flag, with no "<bool>" after it."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _HarnessErrors:
    """A harness error ends the command with its one line and its documented status: the one place
    that handles them for every command (main() is the last resort outside a command)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except PfhError as e:
            fail(e)


class Command(_HarnessErrors, typer.core.TyperCommand):
    """Help that reads like a CLI's: flags shown as flags."""

    def get_params(self, ctx):
        return _bare_flags(super().get_params(ctx))


class Group(_HarnessErrors, typer.core.TyperGroup):
    """As Command, for a command with subcommands."""

    def get_params(self, ctx):
        return _bare_flags(super().get_params(ctx))


class RunCommand(Command):
    """`run`'s usage line names the workload as it is typed: -- CMD [ARG...]."""

    def collect_usage_pieces(self, ctx):
        return ["[OPTIONS]", "-- CMD [ARG...]"]

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if isinstance(param, typer.core.TyperArgument):
                param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]  # no "<list[str]>"
        return params


def target_spec(
    kind: TargetKind, accel: Accelerator, *, smp: int = 2, memory_mib: int = 2048, thp: ThpMode | None = None
) -> TargetSpec:
    """Where `run` and `study` trace, from their options (the one place a command picks a target).
    `thp` None: the guest kernel's own memory settings (the study's)."""
    if thp is not None:
        mm_settings.check_thp(thp.value, kind.value)
    if kind is TargetKind.host:
        return HostSpec()
    return VmSpec(accel=accel, smp=smp, memory_mib=memory_mib, thp=None if thp is None else thp.value)


def fail(error: PfhError) -> NoReturn:
    """Print a harness error and exit with its documented status."""
    typer.secho(f"pfharness: error: {error}", fg=typer.colors.RED, err=True)
    raise typer.Exit(error.exit_status)


app = typer.Typer(
    cls=Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Trace the page faults of a program with the pf_probe_A/B/C kernel modules.",
)

kernels_app = typer.Typer(
    cls=Group, invoke_without_command=True, help="List the kernels this machine can build for and boot; fetch others."
)
app.add_typer(kernels_app, name="kernels")


@kernels_app.callback()
def kernels_cmd(ctx: typer.Context) -> None:
    """List the kernels this machine can build for and boot (installed and fetched); * marks the default."""
    if ctx.invoked_subcommand is not None:
        return
    found = kernels.available(cache=assets.cache_dir())
    default = kernels.default_kernel(found)
    if not found:
        typer.echo(
            "no kernels found: install them with `apt-get install linux-image-amd64 linux-headers-amd64` "
            "or fetch one with `pfharness kernels fetch 6.1`"
        )
        raise typer.Exit(1)
    typer.echo(f"  {'release':<26} {'where':<10} {'usable':<7} {'image':<40} headers")
    for k in found:
        mark = "*" if default is not None and k.release == default.release else " "
        where = "installed" if k.installed else "fetched"
        typer.echo(
            f"{mark} {k.release:<26} {where:<10} {'yes' if k.usable else 'no':<7} "
            f"{k.image or '-'!s:<40} {k.headers or '-'}"
        )
    if default is None:
        typer.echo(f"no usable kernel: it needs both an image and headers ({INSTALL_KERNEL})")


@kernels_app.command("fetch", cls=Command)
def kernels_fetch_cmd(
    spec: str = typer.Argument(..., help="5.10, 6.1, 6.1-rt, 6.12, 7.2 or an exact release (6.12.48+deb12-amd64)."),
) -> None:
    """Download a Debian kernel (image, modules, headers) into the cache, or find it there."""
    got = fetch.fetch(spec, assets.cache_dir())
    k = got.kernel
    typer.echo(f"{k.release}: {'cached' if got.cached else 'fetched'} in {got.seconds:.2f} s")
    typer.echo(f"  root     {k.origin.root}\n  image    {k.image}\n  headers  {k.headers}")


@app.command("render", cls=Command)
def render_cmd(
    out: Path = typer.Option(DEFAULT_OUT / "src", help="Directory to write the sources and Makefile into."),
    kernel_release: str | None = typer.Option(
        None, help="Release the Makefile builds for by default (default: the running kernel's)."
    ),
    module: list[str] = typer.Option([], "--module", "-m", help="A, B or C; repeat for several (default: all three)."),
) -> None:
    """Write pf_probe_A.c, pf_probe_B.c, pf_probe_C.c and a kbuild Makefile."""
    letters = render.normalize_modules(module)
    try:
        out.mkdir(parents=True, exist_ok=True)
        result = render.render(out, letters, kernel_release=kernel_release)
    except OSError as e:
        fail(PfhError(f"cannot write into {out} ({e.strerror or e}): pass --out with a writable directory"))
    for path in [*result.sources.values(), result.makefile]:
        typer.echo(str(path))


@app.command("build", cls=Command)
def build_cmd(  # noqa: PLR0917 - typer: the parameters are the command's options
    kernel_release: str | None = typer.Option(
        None, help=f"Build against this release's headers (default: see `pfharness kernels`). {SERIES_HELP}"
    ),
    kdir: Path | None = typer.Option(None, help="Build against this kbuild directory instead."),
    module: list[str] = typer.Option([], "--module", "-m", help="A, B or C; repeat for several (default: all three)."),
    out: Path | None = typer.Option(None, help="Build directory (default: out/<release>)."),
    werror: bool = typer.Option(False, help="Treat compiler warnings as errors."),
    source: list[Path] = typer.Option(
        [],
        metavar="DIR",
        help="Build your own module instead: its directory (with its Makefile) or its .c files (repeat). "
        "Built in a sandbox in a copy under --out (default out/foreign/<release>); a failure is explained.",
    ),
) -> None:
    """Render the modules and build them with kbuild (skipped when nothing changed)."""
    letters = render.normalize_modules(module)
    kernel = kernels.from_kdir(kdir, kernel_release) if kdir is not None else kernels.select(kernel_release)
    if source:
        others = kernels.available(cache=assets.cache_dir())
        built = bring.build(source, kernel, out or DEFAULT_OUT / "foreign" / kernel.release, others)
        typer.echo(f"built for {built.kernel_release} in {built.seconds:.2f} s (log: {built.log_path}):")
        for path in built.modules.values():
            typer.echo(f"  {path}")
        if built.warnings:
            typer.echo(f"{len(built.warnings)} compiler warning(s), the first: {built.warnings[0]}")
        return
    result = kbuild.build(kbuild.BuildRequest(out or DEFAULT_OUT / kernel.release, kernel, letters, werror))
    state = "up to date" if result.skipped else "built"
    typer.echo(f"{state} for {result.kernel_release} in {result.seconds:.2f} s:")
    for path in result.modules.values():
        typer.echo(f"  {path}")


@app.command("check", cls=Command, epilog="Exit status: 0 no error finding, 1 error findings, else a harness error's.")
def check_cmd(  # noqa: PLR0917 - typer: the parameters are the command's options
    source: list[Path] = typer.Option(
        ..., metavar="DIR", help="Your module's directory (with its Makefile) or .c files."
    ),
    module: list[ModuleLetter] = typer.Option([], "--module", "-m", help="A, B or C; repeat (default: all built)."),
    kernel_release: str | None = typer.Option(None, metavar="RELEASE", help=f"Kernel to check on. {SERIES_HELP}"),
    pid_param: str = typer.Option("tpid", metavar="NAME", help="The module's own name for the pid parameter."),
    hold: bool = typer.Option(True, help="Hold the workload before exec (--no-hold: as the course's script)."),
    out: Path = typer.Option(DEFAULT_OUT / "check", metavar="DIR", help="The build, each VM's console, the workload."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    accel: Accelerator = typer.Option(Accelerator.auto, help="auto, kvm or tcg."),
) -> None:
    """Check your own pf_probe module: build it, run each module in a fresh VM, report what is wrong."""
    request = check_run.CheckRequest(
        tuple(source), out, tuple(m.value for m in module), kernel_release, pid_param, hold, accel
    )
    with Progress(enabled=sys.stderr.isatty() and not as_json) as progress:
        report = check_run.check(request, Events(progress.subscriber(all_to_stderr=True)))
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        check_text.show(report, typer.echo)
    raise typer.Exit(0 if report.passed else 1)


EXIT_HELP = (
    "Exit status: the workload's own when the run succeeded; otherwise 2 usage, 120 harness error, "
    "121 build failed, 122 insmod refused, 123 VM lost, 124 timeout, 125 kernel splat, "
    "126 set-up missing, 127 command not found, 130 interrupted."
)


@app.command("run", cls=RunCommand, context_settings={"allow_interspersed_args": False}, epilog=EXIT_HELP)
def run_cmd(  # noqa: PLR0917 - typer: the parameters are the command's options
    command: list[str] = typer.Argument(
        ..., metavar="CMD [ARG...]", show_default=False, help="The workload to trace, after --, as you would type it."
    ),
    module: ModuleLetter = typer.Option(
        ModuleLetter.B,
        "--module",
        "-m",
        case_sensitive=False,
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
) -> None:
    """Trace CMD with a module: build, boot, load, run, unload, show the plot.

    The workload's output streams to stdout and stderr as it is produced (to stderr with --json).
    """
    picture_request = PlotRequest(png=png, svg=svg, ascii=False)
    picture_request.validate()
    try:
        spec = target_spec(target, accel, smp=smp, memory_mib=memory, thp=thp)
        request = RunRequest(
            module=Module(module.value),
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
    status = text.show(result, typer.echo, as_json=as_json, with_output=False)
    if png is not None or svg is not None:
        status = _run_pictures(result, picture_request, status, quiet=as_json)
    raise typer.Exit(status)


def _run_pictures(result: TraceResult, request: PlotRequest, status: int, *, quiet: bool) -> int:
    """The pictures `run --png/--svg` asked for; a failure is reported and, after a good run, is the status."""
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


@app.command("plot", cls=Command)
def plot_cmd(  # noqa: PLR0917 - typer: the parameters are the command's options
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run directory: out/runs/<stamp>-<module>/."),
    scale: str = typer.Option("folded", help="folded (the empty address space cut out) or linear."),
    page_range: str | None = typer.Option(
        None, "--range", help="Only one region (by name, e.g. [heap], libc.so.6) or pages LO-HI (e.g. 0x7f000-0x7f0ff)."
    ),
    pid: int | None = typer.Option(None, help="Only the faults of this process."),
    png: Path | None = typer.Option(None, "--png", metavar="FILE", help="Write a PNG picture (pfharness[plot])."),
    svg: Path | None = typer.Option(
        None, "--svg", metavar="FILE", help="Write an SVG picture (needs pfharness[plot])."
    ),
    color_by: str = typer.Option("region", help="Colour the picture's marks by region or by pid."),
) -> None:
    """Draw a saved run again with no VM: the 30 x 70 plot, and PNG/SVG pictures."""
    request = PlotRequest(scale=scale, page_range=page_range, pid=pid, png=png, svg=svg, color_by=color_by)
    request.validate()
    for path in draw_run(load_drawable(run_dir), request, typer.echo):
        typer.echo(f"picture: {path}")


@app.command("parse", cls=Command)
def parse_cmd(
    transcript_file: Path = typer.Argument(
        ..., metavar="TRANSCRIPT", help="A transcript saved by `pfharness run`, or `dmesg` output."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object, as `run --json`."),
) -> None:
    """Re-read a saved transcript (or a dmesg log) with no VM and print what `run` printed."""
    results = transcript.parse_transcript(transcript_file)
    result = results[-1] if results else transcript.parse_kernel_log(transcript_file)
    if not results and not result.report.lines:
        fail(
            UsageError(
                f"no pf_probe output found in {transcript_file}: pass a transcript saved by "
                "`pfharness run` (out/runs/*/transcript.log) or a `dmesg` log of a pf_probe run"
            )
        )
    raise typer.Exit(text.show(result, typer.echo, as_json=as_json))


@app.command("study", cls=Command)
def study_cmd(  # noqa: PLR0917 - typer: the parameters are the command's options
    out: Path = typer.Option(Path("out/study"), help="Where report.txt, figures.json and the transcript go."),
    module: list[str] = typer.Option(["B", "C"], "--module", "-m", help="B and/or C; repeat for several."),
    findings: Path | None = typer.Option(
        None, help="Text of the findings for report.txt (default: study/findings.txt)."
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
        False, help="Trace nothing: write report.txt again from the study already in --out (e.g. new findings)."
    ),
) -> None:
    """Trace the study's workloads with B and C in one boot and write report.txt."""
    if report_only:
        report = study.write_outputs(study.reread_study(out), out, findings)
        typer.echo(f"report: {report}")
        return
    letters = tuple(m for m in render.normalize_modules(module) if m in ("B", "C"))
    if not letters:
        fail(UsageError("the study uses B and/or C: pass --module B and/or --module C"))
    result = study.run_study(
        out,
        letters,
        target=target_spec(TargetKind.vm, accel),
        events=Events(notes_to(_stderr_line)),
        only=tuple(workload),
        kernel_release=kernel_release,
        follow=follow,
    )
    report = study.write_outputs(result, out, findings)
    typer.echo("\n".join(study.figures_table(result)))
    typer.echo(f"report: {report}")


@app.command("dist", cls=Command)
def dist_cmd(
    out: Path = typer.Option(Path("out/pf_probe.tar.gz"), help="The archive to write."),
    report: Path | None = typer.Option(
        None, help="report.txt to include (default: the committed example study/report.txt)."
    ),
    kernel_release: str | None = typer.Option(
        None, help=f"Release the Makefile falls back to (default: see `pfharness kernels`). {SERIES_HELP}"
    ),
) -> None:
    """Write the hand-in tar.gz: pf_probe_A/B/C.c, Makefile, README, report.txt."""
    path = handin.make_dist(out, report, kernel_release)
    typer.echo(str(path))


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
