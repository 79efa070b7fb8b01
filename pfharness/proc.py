"""The one place that starts processes. Argument lists only, never a shell."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pexpect

from .errors import SetupError


@dataclass(frozen=True)
class Completed:
    """What a finished command left behind."""

    argv: tuple[str, ...]  # what was run
    returncode: int  # its exit status
    stdout: str  # its standard output (and error, when merged)
    stderr: str  # its standard error ('' when merged into stdout)


def require_program(name: str, package: str) -> str:
    """Return the path of program `name`, or raise an error naming the Debian package."""
    path = shutil.which(name)
    if path is None:
        raise SetupError(f"{name} is not installed: install it with `apt-get install {package}` (or run `make demo`)")
    return path


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    merge_stderr: bool = False,
    discard_stderr: bool = False,
) -> Completed:
    """Run `argv` to completion and capture its output as text (its standard error too, unless
    merged into the output or discarded). Never raises for a non-zero status."""
    args = tuple(str(a) for a in argv)
    full_env = None if env is None else {**os.environ, **env}
    result = subprocess.run(
        args,
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.DEVNULL if discard_stderr else subprocess.PIPE,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )
    return Completed(args, result.returncode, result.stdout or "", result.stderr or "")


def start_group(
    argv: Sequence[str | os.PathLike[str]],
    *,
    stdin: int | None = None,
    stdout: int,
    stderr: int,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen:
    """Start `argv` in a session (and process group) of its own with the given descriptors (standard
    input /dev/null unless given); kill_group() ends it and every child."""
    return subprocess.Popen(
        [str(a) for a in argv],
        stdin=subprocess.DEVNULL if stdin is None else stdin,
        stdout=stdout,
        stderr=stderr,
        env=None if env is None else dict(env),
        start_new_session=True,
    )


def kill_group(child: subprocess.Popen) -> None:
    """SIGKILL the whole process group of a start_group() child (a workload held in SIGSTOP too)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def session_members(sid: int, proc_root: Path = Path("/proc")) -> list[int]:
    """The pids of the live processes in session `sid` (field 6 of /proc/PID/stat, after "(comm)"; zombies
    left out: they are dead already, waiting for their parent)."""
    members = []
    for stat in proc_root.glob("[0-9]*/stat"):
        try:
            fields = stat.read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if len(fields) > 3 and fields[3] == str(sid).encode() and fields[0] != b"Z":
            members.append(int(stat.parent.name))
    return members


def kill_session(sid: int, passes: int = 10) -> None:
    """SIGKILL every process in session `sid` (the step script's or the workload's: what left the
    step script's process group, which kill_group() does not reach). Scanned again until
    none is left (a member may fork between the scan and the kill), at most `passes` times."""
    for _ in range(passes):
        members = session_members(sid)
        if not members:
            return
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent() -> None:
    """In the child: get SIGKILL when the harness dies, so no orphan survives it.

    A failure raises OSError, so the child is never started without the promise.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(errno)}")


def spawn_interactive(argv: Sequence[str | os.PathLike[str]], *, logfile, timeout: float):
    """Start `argv` on a pseudo-terminal for pexpect, tied to the harness's life.

    Every byte it prints is written to `logfile` (a binary file). The child is
    killed when the harness process dies, however it dies.
    """
    args = [str(a) for a in argv]
    child = pexpect.spawn(
        args[0],
        args[1:],
        timeout=timeout,
        logfile=None,
        encoding=None,
        preexec_fn=die_with_parent,
        dimensions=(50, 250),
        echo=False,
    )
    child.logfile_read = logfile
    child.delaybeforesend = None  # pexpect sleeps 50 ms before every send by default: pure latency here
    return child
