"""`pfharness run` as a user runs it (real QEMU): the workload's output streams to the terminal as
it is produced, and the workload runs in the caller's directory with the caller's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

pytestmark = pytest.mark.vm
PFHARNESS = [sys.executable, "-m", "pfharness.cli"]


@pytest.fixture
def out_root(host_run_out) -> Path:
    """An --out whose build for the kernel is up to date (nothing is rebuilt)."""
    return host_run_out


def test_output_streams_to_the_terminal_as_it_is_produced(tmp_path, out_root):
    """Under a pseudo-terminal, the workload's first line shows while it still sleeps."""
    argv = [*PFHARNESS[1:], "run", "--accel", "tcg", "--out", str(out_root), "--transcript", str(tmp_path / "t.log")]
    argv += ["--", "sh", "-c", "echo first line; sleep 3; echo second line"]
    child = pexpect.spawn(PFHARNESS[0], argv, timeout=240, encoding="utf-8", codec_errors="replace")
    try:
        child.expect("first line\r\n")
        seen_first = time.monotonic()
        assert "second line" not in child.before
        child.expect("second line\r\n")
        assert time.monotonic() - seen_first > 2.0  # shown while the workload slept, not at its end
        child.expect("---- pfharness summary ----")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    # shown once: not again after the run (the summary names the command, which holds the words)
    assert "\nfirst line\r" not in (child.before or "")


PROG = """#!/bin/sh
# reads its input file by a relative path, writes beside it, reports where and with what
printf 'cwd=%s\\n' "$(pwd)"
printf 'first=%s\\n' "$(head -n 1 "$1")"
printf 'words=%s\\n' "$(wc -w <"$1")"
printf 'caller=%s display=%s extra=%s\\n' "${PFH_CALLER_VAR-unset}" "${DISPLAY-unset}" "${PFH_EXTRA-unset}"
echo written >result.txt && echo wrote=yes
echo to-stderr >&2
"""


def run_prog(cwd: Path, out_root: Path, *options: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PFH_CALLER_VAR": "from the caller", "DISPLAY": ":99"}
    argv = [
        *PFHARNESS,
        "run",
        "--accel",
        "tcg",
        "--out",
        str(out_root),
        "--json",
        *options,
        "--",
        "./prog",
        "input.txt",
    ]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def project(tmp_path: Path) -> Path:
    work = tmp_path / "project"
    work.mkdir()
    (work / "prog").write_text(PROG)
    (work / "prog").chmod(0o755)
    (work / "input.txt").write_text("alpha beta\ngamma\n")
    return work


def test_a_relative_program_and_input_in_the_callers_directory(tmp_path, out_root):
    work = project(tmp_path)
    run = run_prog(work, out_root, "--env", "PFH_EXTRA=set by --env")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)  # --json: stdout holds the JSON object only
    out = data["workload_output"]
    assert f"cwd={work}\n" in out and "first=alpha beta\n" in out and "words=3\n" in out
    assert "caller=from the caller display=unset extra=set by --env\n" in out
    assert "wrote=yes" in out and "to-stderr" in out
    assert "first=alpha beta" in run.stderr  # --json: the workload's output went to stderr, live
    assert not (work / "result.txt").exists()  # its writes went to the guest's tmpfs overlay


def test_cwd_option_overrides_the_callers_directory(tmp_path, out_root):
    work = project(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = run_prog(elsewhere, out_root, "--cwd", str(work))
    assert run.returncode == 0, run.stderr
    assert f"cwd={work}\n" in json.loads(run.stdout)["workload_output"]
