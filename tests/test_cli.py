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
    assert "choose A, B or C" in result.output


def test_build_with_missing_kdir_names_the_fix(tmp_path):
    result = runner.invoke(app, ["build", "--kdir", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 126
    assert "linux-headers-" in result.output
