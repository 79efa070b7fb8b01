"""The console driver against a local shell on a pseudo-terminal (the VM's serial console is the same
kind of stream): commands, exit statuses, exact arguments, and what happens when it stops answering."""

from __future__ import annotations

import contextlib
import os

import pytest

from pfharness import proc
from pfharness.errors import VmLost, VmTimeout
from pfharness.guest.console import Console
from pfharness.results import notes


@pytest.fixture
def console(tmp_path):
    path = tmp_path / "console.log"
    with contextlib.closing(notes.open_transcript(path)) as transcript:
        child = proc.spawn_interactive(["sh", "-i"], logfile=transcript, timeout=10)
        c = Console(child, transcript, path)
        c.start_shell("start", timeout=10)
        yield c
        child.close(force=True)


def test_output_and_status(console):
    result = console.run(["sh", "-c", "echo out; echo err >&2; exit 7"], stage="t", timeout=10)
    assert result.status == 7
    assert "out\n" in result.output and "err\n" in result.output


def test_arguments_arrive_exactly(console):
    args = ["a b", "it's", "$HOME", "*", "x\ny", os.fsdecode(b"\xff\x01")]
    result = console.run(
        [
            "python3",
            "-c",
            "import sys; print(repr([a.encode('utf-8','surrogateescape') for a in sys.argv[1:]]))",
            *args,
        ],
        stage="t",
        timeout=20,
    )
    assert repr([a.encode("utf-8", "surrogateescape") for a in args]) in result.output


def test_timeout_kills_and_later_commands_fail_fast(console):
    with pytest.raises(VmTimeout, match="did not finish the hang within 1 s"):
        console.run(["sleep", "30"], stage="the hang", timeout=1)
    assert not console.child.isalive()
    with pytest.raises(VmLost, match="no longer running"):
        console.run(["true"], stage="after", timeout=5)
