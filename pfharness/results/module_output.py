"""Read what the pf_probe modules printed: plots, counters, fault lines.

Works on kernel messages from any source: /dev/kmsg records, `dmesg` output
with or without timestamps, a serial console. A message belongs to a module
when it contains "pf_probe_<X>: "; everything before that is a prefix
(timestamp, log level, syslog header) and is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import output_format

_MODULE_LINE = re.compile(r"(pf_probe_[ABC]): (.*?)\r?$")
_LINE = output_format.LINES


@dataclass(frozen=True)
class Band:
    """One band of a folded plot (its "band" line)."""

    index: int  # 0 = the bottom band
    name: str  # the region that names it, "+" when several were merged
    pmin: int  # lowest page
    pmax: int  # highest page
    rows: int
    faults: int


@dataclass(frozen=True)
class FaultCounts:
    """What the kretprobe counted (the "faults completed=..." line of A, B and C)."""

    completed: int  # completed faults of the process: records (B, C) or fault lines (A)
    retries: int  # attempts that returned VM_FAULT_RETRY (not faults)
    errors: int  # attempts that failed (VM_FAULT_ERROR): not counted by the kernel either
    remote: int  # faults another process caused in this memory (counted in that process)
    gup: int  # faults of get_user_pages() (regs == NULL), included in completed
    major: int
    minor: int
    read: int
    write: int
    exec: int
    nmissed: int  # the kretprobe's misses (no free instance)
    kp_nmissed: int  # its kprobe's misses (another probe was running)

    @property
    def exact(self) -> bool:
        """True when the probe saw every fault."""
        return self.nmissed == 0 and self.kp_nmissed == 0

    @property
    def kernel_counted(self) -> int:
        """What the process's own minflt + majflt should have grown by (its faults in other memory aside)."""
        return self.completed - self.remote


@dataclass(frozen=True)
class Reconcile:
    """B and C with follow=0: the kernel's own count of the traced process's faults, taken as it exited."""

    tgid: int
    exited: bool  # False: it had not exited at unload, so there is no count
    kernel_faults: int  # its threads' min_flt + maj_flt as they exited (getrusage(RUSAGE_SELF)'s sum)
    seen_at_exit: int  # the faults the module had seen when its last thread exited
    untraced_children: int  # processes it created, not traced (follow=0)


@dataclass(frozen=True)
class ReconcileTree:
    """B and C with follow=1: the kernel's own counts of the table's processes that exited, summed."""

    processes: int  # processes with a line in the table
    exited: int  # of those, the ones whose every thread was counted at exit (the sums are theirs)
    root_exited: bool  # the process given by tpid is one of them
    kernel_faults: int
    seen_at_exit: int  # the faults the module had seen for them by their exits
    remote_untraced: int  # faults made in traced memory by processes not traced (counted in theirs)


@dataclass
class Plot:
    """One scatter plot as a module printed it."""

    module: str  # "pf_probe_B"
    pid: int
    comm: str
    plot_class: str  # "all" (B) or "code" / "data" / "other" (C)
    scale: str = "linear"  # "folded" or "linear" (the module parameter plot_scale)
    title: str = ""
    rows: list[str] = field(
        default_factory=list
    )  # output_format.PLOT_ROWS strings of PLOT_COLS characters, top row first
    y_labels: dict[int, str] = field(default_factory=dict)  # row index -> page number label (hex)
    # times under the X axis in ms (first, middle, last), those printed in seconds (x_unit "s") converted
    x_labels: list[str] = field(default_factory=list)
    x_unit: str = "ms"  # the unit the module printed them in: "ms", or "s" for a long run
    faults: int | None = None  # faults drawn, from the summary line
    t_span_ns: int | None = None
    page_min: int | None = None
    page_max: int | None = None
    outside: int | None = None  # points that fell outside the grid (must be 0)
    bands: list[Band] = field(default_factory=list)  # folded: bottom band first
    row_bands: dict[int, str] = field(default_factory=dict)  # folded: a band's top row -> the name printed beside it
    cuts: list[int] = field(default_factory=list)  # folded: rows whose border is '~' (the axis is cut above)
    complete: bool = False  # END PLOT seen
    lines: list[str] = field(default_factory=list)  # the plot exactly as printed, prefix stripped

    def marks(self) -> int:
        """Number of non-empty cells."""
        return sum(1 for row in self.rows for c in row if c != " ")


@dataclass(frozen=True)
class Record:
    """One fault as B or C stored it (printed with dump_records=1)."""

    index: int  # slot in the buffer
    t_ns: int  # time since the earliest record
    address: int
    fault_class: str | None = None  # C: code, data or other
    tgid: int | None = None  # the process whose memory faulted
    region: int | None = None  # index in the region table (output_format.REGION_NONE: none)
    access: str | None = None  # output_format.ACCESS_KINDS
    major: bool | None = None
    # Version 2 of the records (None in a version-1 line): see output_format.RECORD.
    tid: int | None = None
    exec_seq: int | None = None
    huge: bool | None = None
    ip: int | None = None
    ip_mode: str | None = None  # output_format.IP_MODES
    service_ns: int | None = None


@dataclass(frozen=True)
class Process:
    """One line of the process table a module printed with follow=1."""

    tgid: int
    ppid: int  # the tgid of the process that created it (for the first one: its parent)
    faults: int  # its faults seen by the module
    exited: bool  # its last thread had exited by the unload
    comm: str  # its name after its last exec


@dataclass
class ProcessTable:
    """The process table (follow=1): the top processes by faults, the rest summed, the overflow."""

    traced: int = 0  # processes traced, in the table or not
    table: int = 0  # processes with a line in the module's table
    overflow: int = 0  # processes traced without a line (the table was full)
    untabled_faults: int = 0  # faults of those
    processes: list[Process] = field(default_factory=list)  # printed one per line, most faults first
    rest_processes: int = 0  # the others in the table, summed on one line
    rest_faults: int = 0
    complete: bool = False  # END PROCESSES seen


@dataclass
class ModuleReport:
    """Everything one module printed during one load."""

    module: str | None = None
    pid: int | None = None
    comm: str | None = None
    recorded: int | None = None  # B, C: records stored
    dropped: int | None = None  # B, C: faults past the capacity
    capacity: int | None = None  # B, C: max_records
    faults: int | None = None  # A: faults seen
    fault_addresses: list[int] = field(default_factory=list)  # A: one per fault line
    fault_pids: list[int] = field(default_factory=list)  # A: the tgid of each fault line (follow=1: any in the tree)
    plots: list[Plot] = field(default_factory=list)
    empty_classes: list[str] = field(default_factory=list)  # classes reported as having no faults
    records: list[Record] = field(default_factory=list)  # B, C with dump_records=1
    records_announced: int | None = None  # the count the dump announced (records lost from the log if larger)
    process_table: ProcessTable | None = None  # follow=1: the processes traced
    counts: FaultCounts | None = None  # A, B, C: the kretprobe's counts
    regions_used: int | None = None  # B, C: regions in the table
    regions_capacity: int | None = None
    regions_full: int | None = None  # faults that found the table full (no region)
    reconcile: Reconcile | None = None  # B, C with follow=0: the kernel's own count at exit
    reconcile_tree: ReconcileTree | None = None  # B, C with follow=1: the same, summed over the table
    lines: list[str] = field(default_factory=list)  # every line of the module, prefix stripped

    @property
    def seen(self) -> int | None:
        if self.faults is not None:
            return self.faults
        if self.recorded is not None and self.dropped is not None:
            return self.recorded + self.dropped
        return None


def module_lines(messages: Iterable[str], module: str | None = None) -> list[tuple[str, str]]:
    """(module, text) for each message of a pf_probe module, prefix stripped."""
    found = []
    for msg in messages:
        m = _MODULE_LINE.search(msg)
        if m and (module is None or m.group(1) == module):
            found.append((m.group(1), m.group(2)))
    return found


_X_CAPTION = re.compile(r"time since the first fault \((ms|s)\)\s*$")


def _parse_x_labels(line: str, unit: str) -> list[str]:
    """The times under the X axis, in ms: a time in seconds (three decimals) becomes ms (three decimals)."""
    found = re.findall(r"\d+\.\d{3}", line)
    if unit == "s":
        return [f"{int(whole) * 1000 + int(frac)}.000" for whole, frac in (t.split(".") for t in found)]
    return found


def _finish_plot(plot: Plot, body: list[str]) -> None:
    """Fill the plot's fields from the lines between BEGIN and END."""
    if body:
        plot.title = body[0].strip()
    rule_index = None
    row_regex, rule_regex = output_format.plot_row_regex(), output_format.plot_rule_regex()
    for i, line in enumerate(body):
        m = row_regex.match(line)
        if m and len(plot.rows) < output_format.PLOT_ROWS:
            label = m.group("label").strip()
            if label:
                plot.y_labels[len(plot.rows)] = label
            cut = m.group("border") == output_format.BAND_CUT
            # A band's top row carries its name (the topmost band's first row, and every cut row), its other rows
            # BAND_CONTINUED (a name too: a file may be called that). Older recorded plots name a band on its
            # bottom row only, with no mark on its other rows: read as names too.
            tail = m.group("band")
            if tail and (tail != output_format.BAND_CONTINUED or cut or not plot.row_bands):
                plot.row_bands[len(plot.rows)] = m.group("band")
            if cut:
                plot.cuts.append(len(plot.rows))
            plot.rows.append(m.group("cells"))
            continue
        if b := _LINE["band"].parse(line):
            plot.bands.append(Band(b["index"], b["name"], b["pmin"], b["pmax"], b["rows"], b["faults"]))
            continue
        if rule_regex.match(line):
            rule_index = i
            continue
        s = _LINE["plot_summary"].parse(line)
        if s:
            plot.faults = s["faults"]
            plot.t_span_ns = s["t_span_ns"]
            plot.page_min = s["page_min"]
            plot.page_max = s["page_max"]
            plot.outside = s["outside"]
    if rule_index is not None and rule_index + 1 < len(body):
        caption = _X_CAPTION.search(body[rule_index + 2]) if rule_index + 2 < len(body) else None
        plot.x_unit = caption.group(1) if caption else "ms"
        plot.x_labels = _parse_x_labels(body[rule_index + 1], plot.x_unit)


def parse_module_output(messages: Iterable[str], module: str | None = None) -> ModuleReport:
    """Read the counters, plots and fault lines from a module's kernel messages."""
    report = ModuleReport(module=module)
    current: Plot | None = None
    body: list[str] = []
    for mod, text in module_lines(messages, module):
        report.module = report.module or mod
        report.lines.append(text)
        if current is not None:
            current.lines.append(text)
            if _LINE["plot_end"].parse(text) is not None:
                _finish_plot(current, body)
                current.complete = True
                report.plots.append(current)
                current, body = None, []
            else:
                body.append(text)
            continue
        _read_line(report, mod, text)
        if text.startswith("---- BEGIN PLOT") and (v := _LINE["plot_begin"].parse(text)):
            current = Plot(
                module=mod, pid=v["pid"], comm=v["comm"], plot_class=v["plot_class"], scale=v["scale"], lines=[text]
            )
            body = []
    if current is not None:  # truncated: the log ended inside a plot
        _finish_plot(current, body)
        report.plots.append(current)
    return report


def _read_process_line(report: ModuleReport, text: str) -> bool:
    """A line of the process table (follow=1); False when `text` is none."""
    if not text.startswith(("process ", "---- BEGIN PROCESSES", "---- END PROCESSES")):
        return False
    if v := _LINE["processes_begin"].parse(text):
        report.process_table = ProcessTable(v["traced"], v["table"], v["overflow"], v["untabled"])
        return True
    table = report.process_table
    if table is None:
        return False
    if v := _LINE["process"].parse(text):
        table.processes.append(Process(v["tgid"], v["ppid"], v["faults"], bool(v["exited"]), v["comm"]))
    elif v := _LINE["process_rest"].parse(text):
        table.rest_processes, table.rest_faults = v["processes"], v["faults"]
    elif _LINE["processes_end"].parse(text) is not None:
        table.complete = True
    else:
        return False
    return True


_RECORD_SHAPES = (
    output_format.LINES["record"],
    output_format.LINES["record_class"],
    *output_format.LEGACY_LINES.values(),
)


def _record_values(text: str) -> dict[str, Any] | None:
    """A record line's values (version 2, or version 1 from an older transcript), or None."""
    if not text.startswith("rec "):
        return None
    return next((v for shape in _RECORD_SHAPES if (v := shape.parse(text)) is not None), None)


def _read_line(report: ModuleReport, mod: str, text: str) -> None:
    """One module line outside a plot: a record, a fault line, a summary, an empty-plot note."""
    if _read_process_line(report, text):
        return
    if v := _record_values(text):
        report.records.append(
            Record(
                v["index"],
                v["t_ns"],
                v["address"],
                v.get("fault_class"),
                v["tgid"],
                v["region"],
                v["access"],
                bool(v["major"]),
                v.get("tid"),
                v.get("exec_seq"),
                None if "huge" not in v else bool(v["huge"]),
                v.get("ip"),
                v.get("ip_mode"),
                v.get("service_ns"),
            )
        )
    elif v := _LINE["records_begin"].parse(text):
        report.records_announced = v["count"]
    elif v := _LINE["a_fault"].parse(text):
        report.fault_addresses.append(v["address"])
        report.fault_pids.append(v["pid"])
    elif v := _LINE["records_summary"].parse(text):
        report.pid, report.comm = v["pid"], v["comm"]
        report.recorded, report.dropped, report.capacity = v["recorded"], v["dropped"], v["capacity"]
    elif v := _LINE["fault_counts"].parse(text):
        report.counts = FaultCounts(**v)
    elif v := _LINE["reconcile"].parse(text):
        report.reconcile = Reconcile(**{**v, "exited": bool(v["exited"])})
    elif v := _LINE["reconcile_tree"].parse(text):
        report.reconcile_tree = ReconcileTree(**{**v, "root_exited": bool(v["root_exited"])})
    elif v := _LINE["regions_summary"].parse(text):
        report.regions_used, report.regions_capacity, report.regions_full = v["used"], v["capacity"], v["full"]
    elif v := _LINE["a_summary"].parse(text):
        report.pid, report.comm, report.faults = v["pid"], v["comm"], v["faults"]
    elif v := _LINE["plot_empty_class"].parse(text):
        report.pid = report.pid or v["pid"]
        title = str(v["class_title"])
        keys = {title: key for key, title in output_format.FAULT_CLASSES}
        report.empty_classes.append(keys.get(title, title))
    elif v := _LINE["plot_empty"].parse(text):
        report.pid = report.pid or v["pid"]
        report.empty_classes.append("all")
