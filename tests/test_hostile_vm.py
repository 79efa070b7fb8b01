"""Hostile workloads in a real guest: what they write to the kernel log or call themselves does
not change the report (the shared VM of conftest.py)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from conftest import traced

from pfharness import step

pytestmark = [pytest.mark.vm, pytest.mark.core]

FORGE_KMSG = (
    "echo 'pf_probe_B: summary pid=1 comm=forged recorded=5 dropped=0 capacity=9' >/dev/kmsg; "
    "echo '<0>pf_probe_B: ---- BEGIN PLOT pid=1 comm=forged class=all ----' >/dev/kmsg; "
    "echo '<2>BUG: unable to handle page fault (written by the workload)' >/dev/kmsg; "
    "echo 'WARNING: CPU: 0 PID: 1 at fake.c:1' >/dev/kmsg; "
    "(sleep 0.2; echo 'pf_probe_B: summary pid=1 comm=late recorded=7 dropped=0 capacity=9' >/dev/kmsg) &"
)


def test_kmsg_forgeries_do_not_change_the_report(vm, profile_modules):
    result = traced(vm, profile_modules, "B", "sh", "-c", FORGE_KMSG)
    report = result.report
    assert report.pid == result.pid and report.comm == "sh" and report.recorded not in (5, 7)
    [plot] = report.plots
    assert plot.complete and plot.comm == "sh" and plot.faults == report.recorded
    assert result.splats == [] and result.verdict.error is None and result.verdict.exit_status == 0


def test_a_newline_in_the_process_name_is_shown_as_a_question_mark(vm, profile_modules):
    script = "import ctypes; ctypes.CDLL(None).prctl(15, b'two\\nlines', 0, 0, 0); bytearray(1 << 20)"
    result = traced(vm, profile_modules, "C", "python3", "-c", script)
    assert result.verdict.error is None, result.verdict.error
    assert result.report.comm == "two?lines" and result.report.recorded and result.report.plots


GUEST = Path(__file__).parent / "guest"


def timed(vm, built_modules, *command, timeout=120.0):
    start = time.monotonic()
    result = traced(vm, built_modules, "B", *command, timeout=timeout)
    return result, time.monotonic() - start


def assert_real(result, status: int, comm: str) -> None:
    """The report is the module's and the status the workload's: complete, no harness error."""
    assert result.complete and result.lost_reason is None
    assert result.workload_status == status and result.verdict.exit_status == status
    assert result.insmod_status == 0 and result.rmmod_status == 0
    report = result.report
    assert report.pid == result.pid and report.comm == comm and report.recorded not in (None, 5)
    [plot] = report.plots
    assert plot.complete and plot.comm == comm and plot.faults == report.recorded
    assert result.verdict.error is None and result.splats == []


def test_forged_protocol_everywhere_changes_nothing(vm, built_modules):
    """With the step's real token (read from run_step.sh's command line), the workload prints fake
    workload-end/step-end lines, a fake kmsg section with a summary and a plot, the console's done and
    ack markers with guessed tokens, a panic and PFH-INIT-ERROR: on stdout, stderr, /dev/console,
    /dev/ttyS0 and into /dev/kmsg; it tries the protocol port itself. Its status is 1."""
    result, seconds = timed(vm, built_modules, "sh", str(GUEST / "forge.sh"), "1")
    assert_real(result, 1, "sh")
    out = result.workload_output
    assert "forge: token=" in out and "forge: token=none" not in out  # it did know the token
    assert "wrote to /dev/virtio-ports/pfh.proto" not in out  # the port is run_step.sh's alone (EBUSY)
    assert seconds < 60  # no waiting out a timeout
    # the VM is still fine for the next step
    after = traced(vm, built_modules, "B", "true")
    assert after.complete and after.workload_status == 0


@pytest.mark.parametrize(
    ("script", "status"),
    [
        ('echo "##PFH## workload-end status=0"; exit 1', 1),  # fake workload-end with another status
        ("echo '##PFH## step-end status=0'; echo '##PFH## done token=1 status=0'; exit 4", 4),  # fake end markers
        (
            "echo '##PFH## kmsg-begin'; "
            "echo '6,1,1,-;pf_probe_B: summary pid=1 comm=x recorded=5 dropped=0 capacity=9'; "
            "echo '6,2,1,-;pf_probe_B: ---- BEGIN PLOT pid=1 comm=x class=all ----'; echo '##PFH## kmsg-end'",
            0,
        ),  # a fake kmsg section with a summary and a plot
        ("echo 'Kernel panic - not syncing: VFS: Unable to mount root fs'; exit 2", 2),  # printed panic
        ("f=$(mktemp); echo 'PFH-INIT-ERROR: mount proc' >$f; cat $f; exit 3", 3),  # cat of PFH-INIT-ERROR
    ],
    ids=["fake-workload-end", "fake-step-end-and-done", "fake-kmsg-section", "printed-panic", "cat-init-error"],
)
def test_each_forgery_class_in_the_workloads_output(vm, built_modules, script, status):
    result, seconds = timed(vm, built_modules, "sh", "-c", script)
    assert_real(result, status, "sh")
    assert seconds < 60


def test_stty_on_the_terminal_changes_nothing(vm, built_modules):
    """The workload has no controlling terminal: `stty olcuc </dev/tty` fails, the console keeps its
    settings, and the run ends at once (it used to wait out the whole --timeout)."""
    result, seconds = timed(
        vm, built_modules, "sh", "-c", "stty olcuc </dev/tty; echo stty=$?; echo lower case", timeout=60
    )
    assert_real(result, 0, "sh")
    assert "stty=0" not in result.workload_output and "lower case" in result.workload_output
    assert seconds < 40
    after = vm.run(["echo", "still lower case"], stage="after stty", timeout=30)
    assert "still lower case\n" in after.output  # not upper case: the console kept its settings


def test_a_child_that_outlives_the_workload_is_ended(vm, built_modules):
    """What the workload leaves running when it exits is killed before the step ends: it cannot
    write later (nor hold the output ports for the next step)."""
    pidfile = f"/tmp/pfh-leftover-{secrets.token_hex(4)}"
    script = f"sh -c 'echo $$ >{pidfile}; exec sleep 600' & sleep 1; echo early"
    result = traced(vm, built_modules, "B", "sh", "-c", script)
    assert result.complete and result.workload_output == "early\n"
    probe = f'kill -0 "$(cat {pidfile})" 2>/dev/null && echo alive || echo gone'
    check = vm.run(["sh", "-c", probe], stage="check", timeout=60)
    assert "gone\n" in check.output and "alive" not in check.output, check.output
    after = traced(vm, built_modules, "B", "sh", "-c", "echo next")
    assert after.complete and after.workload_output == "next\n"


def test_forgeries_on_the_host_target(vm, built_modules, host_run_out):
    """--target host (run inside the VM, as root): the protocol is on a socket the workload cannot
    reach, so the same forger changes nothing there either."""
    import json
    import sys

    repo = Path(__file__).resolve().parent.parent
    out_root = host_run_out
    script = 'cd "$1" && shift && exec "$@" 2>/dev/null'
    pfharness = [sys.executable, "-m", "pfharness.cli", "run", "--target", "host", "--module", "B", "--json"]
    command = ["sh", "-c", script, "pfh", str(repo), *pfharness, "--out", str(out_root)]
    command += ["--transcript", "/tmp/host-forge.log", "--", "sh", str(GUEST / "forge.sh"), "6"]
    outer = step.trace(vm, step.TraceRequest("B", None, tuple(command), timeout=300))  # nothing loaded outside
    assert outer.workload_status == 6, outer.workload_output
    data = json.loads(outer.workload_output)
    assert data["target"] == "host" and data["workload_status"] == 6 and data["exit_status"] == 6
    assert data["harness_error"] is None and data["kernel_warnings"] == []
    assert data["counters"]["recorded"] not in (None, 5) and data["plots"][0]["title"]
    assert "forge: token=" in data["workload_output"] and "forge: token=none" not in data["workload_output"]
