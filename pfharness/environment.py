"""The workload's working directory and environment: the caller's, less what cannot apply in the
guest, with the user's --cwd and --env on top."""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import UsageError, WorkloadNotFound

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: What vm/run_step.sh appends to the workload's PATH before it looks the command up (for insmod and rmmod).
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: POSIX shell builtins: a word the shell knows but `exec` does not (named in the not-found message).
SHELL_BUILTINS = frozenset(
    {
        *("alias", "bg", "break", "cd", "command", "continue", "eval", "exec", "exit", "export", "fc", "fg"),
        *("getopts", "hash", "jobs", "read", "readonly", "return", "set", "shift", "source", "times", "trap"),
        *("type", "ulimit", "umask", "unalias", "unset", "wait", "."),
    }
)

#: Variables left out inside the VM, and why (docs/using.md, "The workload's directory, environment and output").
NOT_IN_GUEST: dict[str, str] = {
    # The host's display, agents and buses are sockets or processes the guest cannot reach.
    "DISPLAY": "the host's display server",
    "WAYLAND_DISPLAY": "the host's display server",
    "XAUTHORITY": "the host's display server",
    "SSH_AUTH_SOCK": "a socket of the host",
    "SSH_AGENT_PID": "a process of the host",
    "GPG_AGENT_INFO": "a socket of the host",
    "DBUS_SESSION_BUS_ADDRESS": "a socket of the host",
    "XDG_RUNTIME_DIR": "the host's per-login runtime directory (sockets)",
    # The caller's terminal and login session: the workload has no terminal in the guest.
    "SSH_CONNECTION": "the host's login session",
    "SSH_CLIENT": "the host's login session",
    "SSH_TTY": "the caller's terminal",
    "GPG_TTY": "the caller's terminal",
    "WINDOWID": "the caller's terminal",
    "TMUX": "the caller's terminal multiplexer",
    "TMUX_PANE": "the caller's terminal multiplexer",
    "STY": "the caller's terminal multiplexer",
    # systemd's hand-over of descriptors and sockets to the harness's own process.
    "LISTEN_FDS": "descriptors of the harness's process",
    "LISTEN_PID": "descriptors of the harness's process",
    "LISTEN_FDNAMES": "descriptors of the harness's process",
    "NOTIFY_SOCKET": "a socket of the host",
    "JOURNAL_STREAM": "a socket of the host",
    "INVOCATION_ID": "the harness's systemd unit",
    "MANAGERPID": "a process of the host",
    "SYSTEMD_EXEC_PID": "a process of the host",
    # Shell bookkeeping, set anew.
    "PWD": "set to the working directory",
    "OLDPWD": "the caller's shell history",
    "SHLVL": "the caller's shell",
    "_": "the caller's shell",
}


def working_directory(cwd: Path | None) -> Path:
    """--cwd (or the caller's current directory) as an absolute path that exists; the guest sees
    the host's root read-only, so the same path is there."""
    try:
        path = (cwd or Path(os.getcwd())).resolve()
    except OSError as exc:
        raise UsageError(f"the current directory is gone ({exc.strerror}): cd somewhere or pass --cwd DIR") from exc
    if not path.is_dir():
        raise UsageError(f"--cwd {cwd}: no such directory")
    return path


def overrides(pairs: Sequence[str]) -> dict[str, str]:
    """--env NAME=VALUE words as a mapping; a usage error for anything else."""
    result = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _NAME.fullmatch(name) or "\0" in value:
            raise UsageError(f"--env {pair!r} must look like NAME=VALUE with NAME of letters, digits and _")
        result[name] = value
    return result


def workload_env(
    caller: Mapping[str, str], extra: Mapping[str, str], cwd: Path, *, in_guest: bool
) -> tuple[tuple[str, str], ...]:
    """The workload's whole environment: the caller's (in the guest less NOT_IN_GUEST and names a
    shell cannot take), then --env's, and PWD=cwd."""
    env = {
        name: value
        for name, value in caller.items()
        if _NAME.fullmatch(name) and not (in_guest and name in NOT_IN_GUEST)
    }
    env.update(extra)
    env["PWD"] = str(cwd)
    return tuple(sorted(env.items()))


def check_program(name: str, env: Sequence[tuple[str, str]], cwd: Path) -> None:
    """Raise WorkloadNotFound when `name` is surely no program the workload could exec: a name with a '/'
    is a path from `cwd`; another is looked up in the workload's PATH (with SYSTEM_PATH after it, as
    run_step.sh does), as execvp would, so a shell builtin (cd) is not a program. The target shares this
    machine's root and runs the workload as root: any x bit will do, and a file this process may not
    stat (EACCES) is left for the target to decide."""
    path = dict(env).get("PATH", "")
    dirs = [cwd] if "/" in name else [cwd / (d or ".") for d in f"{path}:{SYSTEM_PATH}".split(":")]
    if any(_maybe_program(d / name) for d in dirs):
        return
    if "/" in name:
        raise WorkloadNotFound(f"{name}: no such program (from {cwd}): give the path of an executable file")
    if name in SHELL_BUILTINS:
        raise WorkloadNotFound(f"{name} is a shell builtin, not a program: run it in a shell: -- sh -c '{name} ...'")
    raise WorkloadNotFound(f"command not found: {name} (not in the workload's PATH): install it, or give its path")


def _maybe_program(path: Path) -> bool:
    """Whether `path` may be a program: a regular file with an x bit, or one this process cannot stat."""
    try:
        st = path.stat()
    except OSError as exc:
        return exc.errno == errno.EACCES
    return stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)
