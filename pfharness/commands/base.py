"""The command line's frame: the typer app, its command classes (help that reads like a CLI's, harness
errors handled once), the option choices, and the constants the commands share."""

from __future__ import annotations

import contextlib
import copy
import enum
from typing import NoReturn

import typer

from ..errors import PfhError

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


def _bare_flags(params):
    """An on/off option (--json, --help) is shown as a bare flag, with no "<bool>" after it."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _HarnessErrors:
    """A harness error ends the command with its one line and its documented status: the one place
    that handles them for every command (main() is the last resort outside a command). Its help is
    plain text: typer reads help as rich markup, which would eat words in brackets ([heap], [plot])."""

    def format_help(self, ctx, formatter):
        """Escaped only when help is shown (rich's markup module costs ~0.02 s of every command's start):
        this command's texts, its options' and, for a group, its commands'."""
        from rich.markup import escape  # noqa: PLC0415

        commands = getattr(self, "commands", {}).values()
        for owner in (self, *self.params, *commands):  # type: ignore[attr-defined]
            for name in ("help", "short_help", "epilog"):
                if isinstance(text := getattr(owner, name, None), str) and not getattr(owner, "_pfh_escaped", False):
                    setattr(owner, name, escape(text))
            with contextlib.suppress(AttributeError):
                owner._pfh_escaped = True
        return super().format_help(ctx, formatter)  # type: ignore[misc]

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
            if isinstance(param, typer.core.TyperArgument):  # no "<str>" after CMD [ARG...]
                shown = copy.copy(param.type)  # a copy: click's STRING is shared by every option
                shown.get_metavar = lambda *args, **kwargs: ""  # type: ignore[method-assign]
                param.type = shown
        return params


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


EXIT_HELP = (
    "Exit status: the workload's own when the run succeeded; otherwise 2 usage, 120 harness error, "
    "121 build failed, 122 insmod refused, 123 VM lost, 124 timeout, 125 kernel splat, "
    "126 set-up missing, 127 command not found, 130 interrupted."
)
