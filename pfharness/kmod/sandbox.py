"""Run a command someone else wrote (a student's Makefile) in a bubblewrap sandbox.

The host (or a kernel's build root, :mod:`pfharness.kmod.toolchain`) is mounted read-only, only
one directory is writable, /tmp is private, there is no network (a namespace with loopback only),
no view of the host's processes and no capability (even run by root: no insmod, no mount); the
command runs in a session of its own, dies with the harness, and is killed with everything it
started when it exceeds its time or output limit."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import proc
from ..errors import SetupError

TIME_LIMIT = 120.0  # seconds a build may take
OUTPUT_LIMIT = 4 << 20  # bytes of log kept; a build printing more is stopped
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Limits:
    """What a sandboxed command may spend."""

    seconds: float = TIME_LIMIT
    output_bytes: int = OUTPUT_LIMIT


@dataclass(frozen=True)
class SandboxRun:
    """What a sandboxed command left behind."""

    argv: tuple[str, ...]  # the command inside the sandbox
    returncode: int  # its exit status (-9 when it was killed)
    log: str  # standard output and error, merged, at most the output limit (a note says when cut)
    seconds: float  # wall time
    timed_out: bool  # killed at the time limit
    output_cut: bool  # killed at the output limit

    @property
    def limit_note(self) -> str:
        """One line saying which limit stopped it ('' when none did)."""
        if self.timed_out:
            return "the build was stopped: it ran past the sandbox's time limit (a loop in the Makefile?)"
        if self.output_cut:
            return "the build was stopped: it printed more than the sandbox's output limit"
        return ""


def bwrap_argv(
    command: Sequence[str], writable: Path, *, root: Path | None = None, readable: Sequence[Path] = ()
) -> list[str]:
    """The bwrap command line running ``command`` in ``writable`` (the only writable directory).

    ``root``: a build root to use as / (read-only) instead of the host's; ``readable``: further
    directories bound read-only at their own paths (the kernel's tree under the cache).
    """
    bwrap = proc.require_program("bwrap", "bubblewrap")
    where = str(writable.resolve())
    # The host's root is bound read-only, recursively. A build root is bound writable so that bwrap can
    # make the mount points of the binds below in it (as toolchain.make_argv does), then remounted
    # read-only before the command starts (not recursively: the build directory stays writable).
    argv = [bwrap, *(["--bind", str(root), "/"] if root else ["--ro-bind", "/", "/"])]
    argv += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for path in readable:
        argv += ["--ro-bind", str(path.resolve()), str(path.resolve())]
    argv += ["--bind", where, where, *(["--remount-ro", "/"] if root else []), "--chdir", where]
    argv += ["--unshare-all", "--cap-drop", "ALL", "--die-with-parent", "--new-session", "--clearenv"]
    argv += ["--setenv", "PATH", PATH, "--setenv", "HOME", where, "--setenv", "PWD", where]
    argv += ["--setenv", "LC_ALL", "C.UTF-8", "--"]
    return [*argv, *command]


def run(argv: Sequence[str], limits: Limits = Limits()) -> SandboxRun:
    """Run a :func:`bwrap_argv` command line within ``limits``; never raises for the command's failure,
    only when bwrap itself cannot make the sandbox."""
    start = time.monotonic()
    child = proc.start_group(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert child.stdout is not None
    out = bytearray()
    timed_out = cut = False
    fd = child.stdout.fileno()
    try:
        while True:
            left = start + limits.seconds - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                timed_out = _wait(child, start + limits.seconds - time.monotonic())
                break
            out += chunk
            if len(out) > limits.output_bytes:
                cut = True
                break
    finally:
        if child.poll() is None:
            _kill(child)
        child.stdout.close()
    log = out[: limits.output_bytes].decode(errors="replace")
    if cut:
        log += f"\n[pfharness: output cut at {limits.output_bytes} bytes]\n"
    if timed_out:
        log += f"\n[pfharness: killed after {limits.seconds:.0f} s]\n"
    code = child.returncode if not (timed_out or cut) else -9
    if code != 0 and log.startswith("bwrap: "):
        first = log.splitlines()[0]
        hint = "namespace" in first or "not permitted" in first
        raise SetupError(
            f"bubblewrap cannot make the build sandbox here ({first})"
            + (": it needs user namespaces (sysctl kernel.unprivileged_userns_clone=1) or root" if hint else "")
        )
    return SandboxRun(tuple(argv), code, log, time.monotonic() - start, timed_out, cut)


def _wait(child: subprocess.Popen, seconds: float) -> bool:
    """Wait for ``child`` to end (its output closed); True when it did not within ``seconds``."""
    try:
        child.wait(timeout=max(seconds, 0.0))
    except subprocess.TimeoutExpired:
        return True
    return False


def _kill(child: subprocess.Popen, grace: float = 5.0) -> None:
    """Kill bwrap and everything in its sandbox, and wait until all of it is gone.

    The command runs in a session of its own inside a pid namespace whose first process (bwrap's
    init) is bwrap's child: killing bwrap's process group leaves the namespace to die by itself a
    moment later. That init is killed too, and waited for: it exits (a zombie until the host's init
    reaps it) only after every process of its namespace is gone (the kernel's zap_pid_ns_processes)."""
    inner = _children(child.pid)
    proc.kill_group(child)
    for pid in inner:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + grace
    while any(_alive(pid) for pid in inner) and time.monotonic() < deadline:
        time.sleep(0.02)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False
