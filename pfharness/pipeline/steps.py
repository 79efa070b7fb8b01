"""A step as a client of the pipeline asks for it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..values import Module


@dataclass(frozen=True)
class Step:
    """One workload to trace with one module, as a client asks for it (the target fills in the rest)."""

    module: Module
    command: tuple[str, ...]  # the workload's argv
    params: tuple[str, ...] = ()  # more module parameters, NAME=VALUE (checked at the edge)
    timeout: float = 600.0  # seconds for the whole step
    follow: bool = False  # trace every process the workload creates too (follow=1)
    hold: bool = True  # hold the workload before exec until the module is armed
    cwd: Path | None = None  # the workload's working directory (None: where the target's shell is)
    env: Mapping[str, str] | None = None  # over the caller's environment (None: the target's own)
    run_dir: Path | None = None  # the run directory its result will be kept in (default: the save dir's parent)
    oracle_ko: Path | None = None  # pfharness's own recorder loaded beside the module for the same pid (a check)
    oracle_params: tuple[str, ...] = ()  # the oracle's parameters, NAME=VALUE
    pid_param: str = "tpid"  # the module's parameter for the workload's pid (a brought module may name it otherwise)
    own_module: bool = False  # a module pfharness did not write (run --source): its output is shown, not parsed
    pid_value: int | None = None  # the module gets pid_param=<this>, not the workload's pid (check's missing-pid)
    save: bool = True  # copy the module's /proc files to the save directory (False: leave the earlier step's there)
