"""The command line's help texts and argument errors (no kernel needed)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pfharness.cli import app

runner = CliRunner()
COMMANDS = [c.name for c in app.registered_commands]


def test_top_level_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_render_refuses_unknown_module(tmp_path):
    result = runner.invoke(app, ["render", "--out", str(tmp_path), "--module", "Z"])
    assert result.exit_code == 2
    assert "--module Z: not a module: use A, B or C" in result.output


def test_build_with_missing_kdir_names_the_fix(tmp_path):
    result = runner.invoke(app, ["build", "--kdir", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 126
    assert "linux-headers-" in result.output


def _help(args):
    result = runner.invoke(app, [*args, "--help"], prog_name="pfharness", env={"COLUMNS": "120"}, terminal_width=120)
    assert result.exit_code == 0, result.output
    return result.output


def test_run_help_reads_like_a_cli():
    out = _help(["run"])
    assert "Usage: pfharness run [OPTIONS] -- CMD [ARG...]" in out
    assert "{" not in out  # not "{-- CMD [ARG ...]}..."
    for choices in ("<auto|kvm|tcg>", "<vm|host>", "<A|B|C>"):
        assert choices in out
    for status in ("2 usage", "123 VM lost", "124 timeout", "127 command not found"):
        assert status in out
    assert "Not the build or the boot" in out  # what --timeout covers


@pytest.mark.parametrize("command", [[], ["kernels"], ["kernels", "fetch"], *[[c] for c in COMMANDS]])
def test_flags_are_shown_as_flags(command):
    assert "<bool>" not in _help(command)


@pytest.mark.parametrize(("option", "value"), [("--accel", "fast"), ("--target", "cloud"), ("--module", "Z")])
def test_run_refuses_a_choice_it_does_not_have(option, value):
    result = runner.invoke(app, ["run", option, value, "--", "true"])
    assert result.exit_code == 2
    assert value in result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--cwd", "/no/such/dir"], "--cwd /no/such/dir: no such directory"),
        (["--env", "NOEQUALS"], "must look like NAME=VALUE"),
        (["--env", "1BAD=x"], "must look like NAME=VALUE"),
    ],
)
def test_run_checks_cwd_and_env_before_anything_runs(tmp_path, args, words):
    result = runner.invoke(app, ["run", "--out", str(tmp_path), *args, "--", "true"])
    assert result.exit_code == 2 and words in result.output, result.output
    assert not (tmp_path / "transcripts").exists()  # nothing built, nothing booted


def test_the_workload_environment_leaves_out_what_cannot_apply_in_the_guest(tmp_path):
    from pfharness import environment

    caller = {"PATH": "/usr/bin", "DISPLAY": ":0", "SSH_AUTH_SOCK": "/run/a", "PWD": "/old", "BAD-NAME": "x", "K": "1"}
    guest = dict(environment.workload_env(caller, {"K": "2", "NEW": "v"}, tmp_path, in_guest=True))
    assert guest == {"PATH": "/usr/bin", "PWD": str(tmp_path), "K": "2", "NEW": "v"}
    host = dict(environment.workload_env(caller, {}, tmp_path, in_guest=False))
    assert host["DISPLAY"] == ":0" and host["PWD"] == str(tmp_path) and "BAD-NAME" not in host
