"""Commands about kernels and modules: kernels, kernels fetch, render, build, dist."""

from __future__ import annotations

from pathlib import Path

import typer

from .. import assets
from ..errors import PfhError
from ..values import DEFAULT_OUT
from .base import INSTALL_KERNEL, SERIES_HELP, Command, app, fail, kernels_app


@kernels_app.callback()
def kernels_cmd(ctx: typer.Context) -> None:
    """List the kernels this machine can build for and boot (installed and fetched); * marks the default."""
    if ctx.invoked_subcommand is not None:
        return
    from ..kmod import kernels  # noqa: PLC0415 - what a command runs is loaded when it runs

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
    from ..kmod import fetch  # noqa: PLC0415 - what a command runs is loaded when it runs

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
    from ..kmod import render  # noqa: PLC0415 - what a command runs is loaded when it runs

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
    from ..kmod import bring, kbuild, kernels, render  # noqa: PLC0415 - what a command runs is loaded when it runs

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
    from ..kmod import handin  # noqa: PLC0415 - what a command runs is loaded when it runs

    path = handin.make_dist(out, report, kernel_release)
    typer.echo(str(path))
