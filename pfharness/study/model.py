"""A study as it was made: its runs (a workload traced with a module) and where they ran."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..results import figures
from ..results.model import TraceResult
from ..values import Module
from .workloads import Workload


@dataclass
class StudyRun:
    """One workload traced with one module."""

    workload: Workload
    module: str  # "B" or "C"
    result: TraceResult
    figures: figures.Figures
    seconds: float

    @property
    def label(self) -> str:
        """How the report heads this run: "sysbench-cpu, pf_probe_B"."""
        return f"{self.workload.key}, {Module(self.module).name}"


@dataclass
class Study:
    runs: list[StudyRun] = field(default_factory=list)
    kernel_release: str = ""
    accelerator: str = ""
    smp: int = 2
    date: str = ""
    transcript: str = ""
    memory: str = ""  # the guest's memory-management settings, one line (MmSettings.describe); "": not known
