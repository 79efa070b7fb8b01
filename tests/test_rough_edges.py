"""Rough edges of the command line (issue 27): each one's fix, with no VM."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pfharness import assets, environment
from pfharness.cli import app
from pfharness.errors import WorkloadNotFound
from pfharness.results import model, module_output, run_dir, text
from pfharness.results.model import TraceResult

runner = CliRunner()


def test_system_path_is_run_step_shs():
    """The host's look-up appends what run_step.sh appends to the workload's PATH."""
    script = assets.vm_file("run_step.sh").read_text()
    assert f"PATH=$PATH:{environment.SYSTEM_PATH}\n" in script


def test_not_found_with_json_is_the_json_object(tmp_path):
    result = runner.invoke(app, ["run", "--json", "--out", str(tmp_path), "--", "no-such-program-pfh"])
    assert result.exit_code == 127
    data = json.loads(result.stdout)
    assert data["exit_status"] == 127
    assert "command not found: no-such-program-pfh" in data["harness_error"]
    assert not (tmp_path / "runs").exists()  # nothing was built or kept


def test_a_program_found_in_the_path_passes(tmp_path):
    program = tmp_path / "prog"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o700)
    environment.check_program("prog", (("PATH", str(tmp_path)),), tmp_path)
    environment.check_program("./prog", (("PATH", ""),), tmp_path)
    environment.check_program("sh", (("PATH", "/nonexistent"),), tmp_path)  # SYSTEM_PATH's /bin
    program.chmod(0o600)
    assert re.search("command not found", _refusal("prog", str(tmp_path), tmp_path))


def _refusal(name, path, cwd) -> str:
    try:
        environment.check_program(name, (("PATH", path),), cwd)
    except WorkloadNotFound as e:
        return str(e)
    raise AssertionError(f"{name} was found")


def test_plot_of_a_directory_that_is_no_run_says_what_a_run_directory_is(tmp_path):
    result = runner.invoke(app, ["plot", str(tmp_path)])
    assert result.exit_code != 0
    assert "is not a run directory: it has no run.json and no guest/records" in result.output
    assert "out/runs/<stamp>-<module>/" in result.output and "--module B" not in result.output


def test_plot_of_a_run_of_a_advises_b(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"module": "pf_probe_A"}))
    result = runner.invoke(app, ["plot", str(tmp_path)])
    assert result.exit_code != 0
    assert "a run of pf_probe_A, which saves no records: run again with --module B" in result.output


def _commands(command, path=()):
    """Every command of the tree under `command`, with the words that invoke it."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_help_keeps_words_in_brackets():
    """typer reads help as rich markup; [heap] and pfharness[plot] must survive every --help."""
    checked = set()
    for path, command in _commands(typer.main.get_command(app)):
        texts = [command.help, command.epilog, *(getattr(p, "help", None) for p in command.params)]
        words = {w.replace("\\[", "[") for t in texts if t for w in re.findall(r"\\?\[[^\]\s]+\]", t)}
        if not words:
            continue
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"})
        assert result.exit_code == 0, result.output
        for word in words:
            assert word in result.output, (path, word)
            checked.add(word)
    assert {"[heap]", "[plot]"} <= checked


def test_summary_quotes_the_command_and_names_what_did_not_happen():
    """The command line can be pasted back into a shell; no pid or status reads as "None"."""
    command = ["sh", "-c", "gzip -c f > /dev/null", "it's"]
    lines = text.summary_lines(TraceResult(module="pf_probe_B", command=command))
    assert f"command:         {shlex.join(command)}" in lines
    assert shlex.split(lines[2].removeprefix("command:")) == command
    assert "pid:             not started" in lines
    assert "workload status: none: it did not end in the run" in lines
    assert not [line for line in lines if "None" in line]
    ran = text.summary_lines(TraceResult(module="pf_probe_B", command=["true"], pid=42, workload_status=0))
    assert "pid:             42 (held before exec)" in ran and "workload status: 0" in ran


def _keys_written() -> set[str]:
    """Every key the --json object is made of: the dict literals of the functions that build it, and the
    fields of the dataclasses it writes whole (dataclasses.asdict)."""
    sources = [
        model.TraceResult.to_json,
        model.process_table_json,
        text.json_object,
        run_dir.SavedRecords.summary,
        run_dir.records_file_summary,
    ]
    keys = {k for f in sources for k in re.findall(r'(?:"|data\[")(\w+)"\]?(?::| =)', inspect.getsource(f))}
    return keys | {f.name for c in (module_output.FaultCounts, module_output.Band) for f in dataclasses.fields(c)}


def _keys_documented() -> set[str]:
    doc = (Path(__file__).parents[1] / "docs" / "protocol.md").read_text()
    block = doc.split("## JSON", 1)[1].split("```", 2)[1]
    return set(re.findall(r'"([\w/]+)":', block))


def test_the_json_schema_names_every_key():
    written = _keys_written()
    assert {"module", "pre_exec_faults", "records", "oom_kills", "harness_error", "kp_nmissed", "pmin"} <= written
    assert written - _keys_documented() == set()
    # Keys of maps (mm settings, y_labels, stage_seconds) are examples; no other key is documented.
    examples = {"thp/enabled", "thp/defrag", "0", "10", "20", "29", "build", "boot", "run", "collect"}
    assert _keys_documented() - examples - written == set()


@pytest.mark.vm
def test_a_command_not_found_is_refused_before_the_vm_boots(tmp_path):
    """The whole command, as a user types it: exit 127 with one line on stderr, nothing on stdout, no run
    directory, and far too soon for a build or a boot (a TCG boot takes seconds)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pfharness.cli", "run", "--out", str(tmp_path), "--", "no-such-program-pfh", "x"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 127, done
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "pfharness: error: command not found: no-such-program-pfh (not in the workload's PATH): install it, "
        "or give its path"
    ]
    assert not (tmp_path / "runs").exists() and elapsed < 5, elapsed


def test_the_harness_error_line_is_on_stderr():
    """What the run showed stays on stdout; the harness's error is on stderr, as every other error."""
    result = runner.invoke(app, ["parse", str(Path(__file__).parent / "data" / "run_b_panic_mid_plot.log")])
    assert result.exit_code == 123
    assert "---- pfharness summary ----" in result.stdout and "pfharness: error" not in result.stdout
    assert result.stderr.startswith("pfharness: error: the run ended before its last step (the kernel panicked")
