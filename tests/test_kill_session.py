"""proc.kill_session: a workload in a session of its own (as vm/run_step.sh starts it) and what it
started are all killed on a host-target timeout or interrupt (no VM needed)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time

from pfharness import proc


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def test_kill_session_kills_the_leader_and_what_it_started():
    # A session leader that starts a grandchild in its own process group, out of the leader's group.
    leader = subprocess.Popen(
        ["sh", "-c", "set -m; sleep 60 & echo $!; wait"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert leader.stdout is not None
    grandchild = int(leader.stdout.readline())
    try:
        members = proc.session_members(leader.pid)
        assert leader.pid in members and grandchild in members
        assert os.getpid() not in members
        proc.kill_session(leader.pid)
        leader.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(grandchild)
        assert proc.session_members(leader.pid) == []
    finally:
        for pid in (leader.pid, grandchild):
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        leader.wait()


def test_a_session_that_does_not_exist_has_no_members():
    assert proc.session_members(2**22 + 12345) == []
    proc.kill_session(2**22 + 12345)  # nothing to kill: returns at once
