"""The result of one traced run (TraceResult) and its --json object."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..mm_settings import MmSettings
from .module_output import ModuleReport, Record
from .reconcile import Reconciliation, reconcile

if TYPE_CHECKING:
    from .run_dir import SavedRecords
    from .tables import TopTables
    from .verdict import Verdict


@dataclass(frozen=True)
class RunContext:
    """Where and how a step ran: known before its output is read."""

    module: str  # "pf_probe_B" (or the letter "B")
    command: tuple[str, ...]  # the workload's argv
    kernel_release: str = ""
    accelerator: str = ""  # kvm, tcg, or "host"
    target: str = "vm"  # vm, host, or "log" for a plain kernel log read by `parse`
    transcript: str = ""  # where the console transcript is kept
    mm: MmSettings | None = None  # the target's memory-management settings (None: not known)
    own_module: bool = False  # the user's own module (run --source): its output is not pfharness's format

    @property
    def module_name(self) -> str:
        return f"pf_probe_{self.module}" if len(self.module) == 1 else self.module


@dataclass(frozen=True)
class Kept:
    """What was kept of a step beside its channels: its run directory and the records read back."""

    run_dir: str = ""  # out/runs/<stamp>-<module>/ (results/run_dir.py), "" when there is none
    saved: SavedRecords | None = None  # what the module's procfs files held (B, C), read back losslessly
    saved_error: str | None = None  # why they could not be read back (the run itself stands)
    records_file: dict[str, Any] | None = None  # run.json's summary of the above (kept in the transcript too)
    top: dict[str, Any] | None = None  # the top-5 tables of the saved records as JSON (kept in the transcript too)


@dataclass(frozen=True)
class TraceResult:
    """Everything one traced run gave. Crosses into the CLI, JSON and tests; made once, never patched."""

    module: str  # "pf_probe_B"
    command: list[str]
    kernel_release: str = ""
    accelerator: str = ""  # kvm, tcg, or "host"
    target: str = "vm"
    pid: int | None = None  # the workload's pid (what tpid was)
    hold: bool = True
    pre_exec_faults: int | None = None  # faults of the held process before the module was loaded (not recorded)
    insmod_status: int | None = None
    workload_status: int | None = None  # exit status; 128+N when killed by signal N
    rmmod_status: int | None = None
    oracle_insmod_status: int | None = None  # the oracle's (TraceRequest.oracle_ko), None when there was none
    oracle_rmmod_status: int | None = None
    not_found: bool = False  # the workload command does not exist on the target
    step_error: str | None = None  # run_step.sh could not do its job (hold, /dev/kmsg, usage)
    step_status: int | None = None  # run_step.sh's own exit status
    kmsg_lost: int = 0  # times the kernel log overwrote records before they were read
    lost_reason: str | None = None  # the harness's note when the VM was lost or timed out (parse)
    complete: bool = False  # the step ran to its end
    workload_output: str = ""
    report: ModuleReport = field(default_factory=ModuleReport)
    kernel_messages: list[str] = field(default_factory=list)  # this run's kernel log
    splats: list[str] = field(default_factory=list)  # kernel log lines showing a splat
    oom_kills: list[str] = field(default_factory=list)  # the kernel's lines for processes the OOM killer ended
    stage_seconds: dict[str, float] = field(default_factory=dict)  # build, boot, run, collect
    transcript: str = ""
    run_dir: str = ""  # out/runs/<stamp>-<module>/ (results/run_dir.py), "" when there is none
    saved: SavedRecords | None = None  # what the module's procfs files held (B, C), read back losslessly
    saved_error: str | None = None  # why they could not be read back (the run itself stands)
    records_file: dict[str, Any] | None = None  # run.json's summary of the above (kept in the transcript too)
    top: dict[str, Any] | None = None  # the top-5 tables (results/tables.py) as JSON; from the transcript for parse
    mm: MmSettings | None = None  # THP and overcommit settings the workload ran under (None: not known)
    own_module: bool = False  # the user's own module (run --source): its lines are shown as printed, not parsed

    @functools.cached_property
    def verdict(self) -> Verdict:
        """The harness failure this result shows, if any, and its exit status (results/verdict.py)."""
        from .verdict import judge  # noqa: PLC0415 - the verdict reads the model

        return judge(self)

    def own_lines(self) -> list[str]:
        """The module's kernel log lines as it printed them (those starting with its name, else the whole
        log): what `run --source` shows of a module pfharness did not write."""
        prefixed = [m for m in self.kernel_messages if m.startswith(f"{self.module}: ")]
        return prefixed or list(self.kernel_messages)

    def module_errors(self) -> list[str]:
        """The module's own error lines (why it refused to load)."""
        return [m for m in self.kernel_messages if m.startswith(f"{self.module}: ")]

    def exact(self) -> bool | None:
        """False when the probe missed faults (nmissed > 0): the counts and the plot are not exact.
        None when the module printed no counts."""
        counts = self.report.counts
        return None if counts is None else counts.exact

    def to_json(self) -> dict[str, Any]:
        """The --json object (schema in docs/protocol.md, "JSON"), without the verdict (results/verdict.py adds it)."""
        r = self.report
        return {
            "module": self.module,
            "own_module": self.own_module,
            "module_lines": self.own_lines() if self.own_module else None,  # run --source: as printed
            "command": self.command,
            "comm": r.comm,
            "kernel_release": self.kernel_release,
            "accelerator": self.accelerator,
            "target": self.target,
            "mm": None if self.mm is None else {"settings": self.mm.fields(), "source": self.mm.source},
            "pid": self.pid,
            "hold": self.hold,
            "pre_exec_faults": self.pre_exec_faults,
            "workload_status": self.workload_status,
            "insmod_status": self.insmod_status,
            "rmmod_status": self.rmmod_status,
            "counters": {
                "recorded": r.recorded,
                "dropped": r.dropped,
                "capacity": r.capacity,
                "faults": r.faults,
                "seen": r.seen,
                "fault_lines": len(r.fault_addresses) if r.module == "pf_probe_A" else None,
            },
            "fault_counts": dataclasses.asdict(r.counts) if r.counts else None,  # the kretprobe's counts
            "exact": self.exact(),
            "regions": {"used": r.regions_used, "capacity": r.regions_capacity, "full": r.regions_full},
            "plots": [
                {
                    "class": p.plot_class,
                    "scale": p.scale,
                    "title": p.title,
                    "rows": p.rows,
                    "y_labels": {str(k): v for k, v in p.y_labels.items()},
                    "x_labels_ms": p.x_labels,
                    "faults": p.faults,
                    "t_span_ns": p.t_span_ns,
                    "page_min": p.page_min,
                    "page_max": p.page_max,
                    "outside": p.outside,
                    "bands": [dataclasses.asdict(b) for b in p.bands],
                    "complete": p.complete,
                }
                for p in r.plots
            ],
            "empty_classes": r.empty_classes,
            "processes": process_table_json(r),  # follow=1 only, else null
            "records": [record_json(rec) for rec in r.records],  # dump_records=1 only
            "kernel_warnings": self.splats,
            "oom_kills": self.oom_kills,
            "workload_output": self.workload_output,
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            "transcript": self.transcript,
            "run_dir": self.run_dir or None,
            "records_file": self.records_file,
            "reconcile": None if (rec := self.reconciliation()) is None else rec.to_json(),
            "top": self.top,
        }

    def reconciliation(self) -> Reconciliation | None:
        """The kernel's own count beside what was recorded (results/reconcile.py); None without the line."""
        return reconcile(self.report, self.pre_exec_faults, self.pid)

    def top_tables(self) -> TopTables:
        """The top-5 tables of the saved records (results/tables.py); empty when none were saved."""
        from .tables import top_tables  # noqa: PLC0415 - numpy: a run loads it while the guest works

        if self.saved is None:
            return top_tables([], [])
        return top_tables(self.saved.table, self.saved.regions, self.saved.processes)


#: The fields of a --json "records" entry (a dump_records=1 line), in order; a version-1 line has null from tid on.
RECORD_JSON_FIELDS = (
    "t_ns",
    "address",
    "fault_class",
    "tgid",
    "region",
    "access",
    "major",
    "tid",
    "exec_seq",
    "huge",
    "ip",
    "ip_mode",
    "service_ns",
)


def record_json(rec: Record) -> list[Any]:
    """One dumped record as the --json "records" list gives it: RECORD_JSON_FIELDS' values."""
    return [getattr(rec, name) for name in RECORD_JSON_FIELDS]


def process_table_json(report: ModuleReport) -> dict[str, Any] | None:
    """The process table of a follow=1 run as JSON, or None."""
    table = report.process_table
    if table is None:
        return None
    return {
        "traced": table.traced,
        "table": table.table,
        "overflow": table.overflow,
        "untabled_faults": table.untabled_faults,
        "top": [
            {"tgid": p.tgid, "ppid": p.ppid, "faults": p.faults, "exited": p.exited, "comm": p.comm}
            for p in table.processes
        ],
        "rest": {"processes": table.rest_processes, "faults": table.rest_faults},
        "complete": table.complete,
    }
