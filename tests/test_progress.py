"""The live stage line: on stderr when it is a terminal, never with --json or when it is not.

The fast tests drive pfharness.progress with a fake terminal; the `vm` ones run `pfharness run`
under a pseudo-terminal (pexpect) and read what a user would see.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from pfharness.pipeline.events import Events
from pfharness.progress import Progress

REPO = Path(__file__).resolve().parent.parent
PFHARNESS = [sys.executable, "-m", "pfharness.cli"]
STAGE_LINE = re.compile(rb"pfharness: .*(build|boot|run|collect) \d+\.\d s")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_stage_line_names_the_stage_and_its_time():
    err, out = FakeTerminal(), io.StringIO()
    with Progress(enabled=True, stderr=err, stdout=out) as progress:
        progress.stage("build")
        progress.stage("boot")
        time.sleep(0.3)  # at least one refresh of the line
        progress.show("workload line")
    text = err.getvalue()
    assert re.search(r"build \d+\.\d s, .*boot \d+\.\d s", text), text
    assert out.getvalue() == "workload line\n"  # stdout is not a terminal: plain, and only there


def test_show_goes_above_the_status_line_when_stdout_is_the_terminal():
    err, out = FakeTerminal(), FakeTerminal()
    with Progress(enabled=True, stderr=err, stdout=out) as progress:
        progress.stage("run")
        progress.show("hello [bold]not markup[/bold]")
    assert out.getvalue() == ""
    assert "hello [bold]not markup[/bold]" in err.getvalue()  # printed as it is, no markup


def test_as_a_subscriber_it_shows_stages_output_and_notes():
    """The terminal view of a run's events: the KVM probe's note goes to stderr, as accel.py printed it."""
    err, out = io.StringIO(), io.StringIO()
    with Progress(enabled=False, stderr=err, stdout=out) as progress:
        events = Events(progress.subscriber())
        events.stage("boot")
        events.note("pfharness: KVM probe: ...; using tcg")
        events.output(1, b"to stdout\n")
        events.output(2, b"to stderr\n")
    assert out.getvalue() == "to stdout\n"
    assert err.getvalue() == "pfharness: KVM probe: ...; using tcg\nto stderr\n"
    err = io.StringIO()
    with Progress(enabled=False, stderr=err, stdout=out) as progress:
        Events(progress.subscriber(all_to_stderr=True)).output(1, b"json run\n")
    assert err.getvalue() == "json run\n", "--json: the workload's output on stderr"


def test_disabled_draws_nothing():
    err, out = FakeTerminal(), io.StringIO()
    with Progress(enabled=False, stderr=err, stdout=out) as progress:
        progress.stage("boot")
        progress.show("x")
    assert err.getvalue() == ""
    assert out.getvalue() == "x\n"


WORKLOAD = ["sh", "-c", "echo first; sleep 3; echo second"]


@pytest.mark.vm
def test_stage_line_on_a_terminal():
    child = pexpect.spawn(
        PFHARNESS[0], [*PFHARNESS[1:], "run", "--module", "B", "--", *WORKLOAD], cwd=REPO, timeout=300
    )
    child.expect(STAGE_LINE)
    seen = {child.match.group(1)}
    while True:
        i = child.expect([STAGE_LINE, pexpect.EOF])
        if i == 1:
            break
        seen.add(child.match.group(1))
    child.close()
    assert child.exitstatus == 0, child.before[-2000:]
    assert {b"boot", b"run"} <= seen, seen
    assert b"second" in child.before


@pytest.mark.vm
def test_no_stage_line_with_json_or_without_a_terminal():
    child = pexpect.spawn(
        PFHARNESS[0], [*PFHARNESS[1:], "run", "--json", "--module", "B", "--", *WORKLOAD], cwd=REPO, timeout=300
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert not STAGE_LINE.search(child.before), child.before[-2000:]
    piped = subprocess.run(
        [*PFHARNESS, "run", "--module", "B", "--", *WORKLOAD], cwd=REPO, capture_output=True, timeout=300, check=False
    )
    assert piped.returncode == 0, piped.stderr[-2000:]
    assert not STAGE_LINE.search(piped.stderr), piped.stderr[-2000:]
    assert b"first\nsecond\n" in piped.stdout
