"""The one place that starts processes. Argument lists only, never a shell."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
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
) -> Completed:
    """Run `argv` to completion and capture its output as text. Never raises for a non-zero status."""
    args = tuple(str(a) for a in argv)
    full_env = None if env is None else {**os.environ, **env}
    result = subprocess.run(
        args,
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )
    return Completed(args, result.returncode, result.stdout or "", result.stderr or "")


class GroupInterrupted(Exception):
    """run_group() stopped the whole process group (timeout or Ctrl-C); `output` is what it had printed."""

    def __init__(self, output: str, timed_out: bool) -> None:
        super().__init__("timed out" if timed_out else "interrupted")
        self.output = output
        self.timed_out = timed_out


def run_group(argv: Sequence[str | os.PathLike[str]], *, timeout: float | None = None) -> Completed:
    """Run `argv` in a process group of its own (stdout and stderr merged).

    On a timeout or Ctrl-C the whole group is killed, children included (a workload held
    in SIGSTOP too), and GroupInterrupted carries the output read so far.
    """
    args = tuple(str(a) for a in argv)
    child = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        out, _ = child.communicate(timeout=timeout)
    except (subprocess.TimeoutExpired, KeyboardInterrupt) as e:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        out, _ = child.communicate()
        raise GroupInterrupted(out or "", isinstance(e, subprocess.TimeoutExpired)) from None
    return Completed(args, child.returncode, out or "", "")


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
