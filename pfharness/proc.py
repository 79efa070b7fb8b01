"""The one place that starts processes. Argument lists only, never a shell."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

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
