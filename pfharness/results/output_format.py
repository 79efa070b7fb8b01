"""The one definition of what the pf_probe modules print: plot size, marks and every line shape.

The templates get these as render variables (kmod/render.py: `template_context()`), so the C
printf formats come from here, and the parser (results/module_output.py) matches the regular
expressions made from the same shapes. A change here changes both sides.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PLOT_ROWS = 30  # the assignment's plot: 30 lines high ...
PLOT_COLS = 70  # ... and 70 columns wide
LABEL_WIDTH = 14  # width of the Y-axis labels, e.g. "0x7ffd1234567"
LINE_MAX = 160  # longer than any plot line a module prints (the plot's line buffer)
DEFAULT_MAX_RECORDS = 1_048_576  # B, C: record buffer capacity by default
MAX_RECORDS_LIMIT = 16_777_216  # 16 Mi records: 768 MiB of vmalloc at most (48-byte records, B and C)
FOLLOW_TABLE_SIZE = 4096  # follow=1: processes the module keeps a line for (more are traced, counted as overflow)
#: A plot's X axis this long (seconds) or longer is labelled in seconds, a shorter one in ms (docs/folded-plot.md)
PLOT_SECONDS_S = 10
FOLLOW_TOP = 20  # follow=1: processes printed one per line at unload, by faults; the rest share one line

#: A cell with at least N faults shows this mark (the highest N that fits wins); empty cells are blank.
CELL_MARKS: tuple[tuple[int, str], ...] = ((1, "."), (2, "o"), (10, "O"), (100, "#"))

#: pf_probe_C's classes: (key in lines, title in the plot) in the order the module numbers them.
FAULT_CLASSES: tuple[tuple[str, str], ...] = (
    ("code", "code segment"),
    ("data", "data segment"),
    ("other", "other (stack, heap, mmap)"),
)


@dataclass(frozen=True)
class Field:
    """One value in a line: its printf conversion in C and what Python matches and makes of it."""

    c: str  # the printf conversion the module uses, e.g. "%llu"
    pattern: str  # the regular expression that matches what it prints
    convert: Callable[[str], Any] = str


INT = Field("%d", r"-?\d+", int)
S64 = Field("%lld", r"-?\d+", int)
U64 = Field("%llu", r"\d+", int)
ULONG = Field("%lu", r"\d+", int)
HEX64 = Field("%#llx", r"0x[0-9a-f]+|0", lambda s: int(s, 16))  # the kernel prints 0 as 0x0 (libc as 0): both read
ADDRESS = Field("0x%lx", r"0x[0-9a-f]+", lambda s: int(s, 16))
WORD = Field("%s", r"\S+")
TEXT = Field("%s", r".*")  # a process name: any characters but a newline


@dataclass(frozen=True)
class LineShape:
    """A line a module prints: literal text with {name} fields, in the order the C arguments follow."""

    template: str
    fields: dict[str, Field] = field(default_factory=dict)

    def names(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.template)

    def c_format(self) -> str:
        """The printf format, e.g. "summary pid=%d comm=%s ..." (no newline)."""
        parts = re.split(r"\{(\w+)\}", self.template)
        out = []
        for i, part in enumerate(parts):
            out.append(self.fields[part].c if i % 2 else part.replace("%", "%%"))
        return "".join(out)

    def c_literal(self) -> str:
        """The printf format as a C string literal, with the newline."""
        text = self.c_format().replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}\\n"'

    def regex(self) -> re.Pattern[str]:
        parts = re.split(r"\{(\w+)\}", self.template)
        out = []
        for i, part in enumerate(parts):
            out.append(f"(?P<{part}>{self.fields[part].pattern})" if i % 2 else re.escape(part))
        return re.compile("^" + "".join(out) + "$")

    def parse(self, text: str) -> dict[str, Any] | None:
        """The line's values by name, converted, or None when `text` is not this line."""
        m = _compiled(self).match(text)
        if m is None:
            return None
        return {name: self.fields[name].convert(m.group(name)) for name in self.names()}


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(shape: LineShape) -> re.Pattern[str]:
    pattern = _REGEX_CACHE.get(shape.template)
    if pattern is None:
        pattern = _REGEX_CACHE[shape.template] = shape.regex()
    return pattern


#: The fields of a record line (dump_records=1), version 1, and what version 2 adds after major=.
_REC_FIELDS = {
    "index": U64,
    "t_ns": U64,
    "address": ADDRESS,
    "tgid": U64,
    "region": U64,
    "access": WORD,
    "major": U64,
}
_REC_V2 = " tid={tid} exec={exec_seq} huge={huge} ip={ip} ipmode={ip_mode} service_ns={service_ns}"
_REC_V2_FIELDS = {
    "tid": U64,
    "exec_seq": U64,
    "huge": U64,
    "ip": HEX64,
    "ip_mode": WORD,
    "service_ns": U64,
}

LINES: dict[str, LineShape] = {
    # pf_probe_A
    "a_fault": LineShape("pid={pid} addr={address}", {"pid": INT, "address": ADDRESS}),
    "a_summary": LineShape("summary pid={pid} comm={comm} faults={faults}", {"pid": INT, "comm": TEXT, "faults": S64}),
    # pf_probe_B and pf_probe_C
    "records_summary": LineShape(
        "summary pid={pid} comm={comm} recorded={recorded} dropped={dropped} capacity={capacity}",
        {"pid": INT, "comm": TEXT, "recorded": U64, "dropped": U64, "capacity": ULONG},
    ),
    "records_begin": LineShape("---- BEGIN RECORDS count={count} ----", {"count": U64}),
    # dump_records=1, one line per record (version 2: tid ... service_ns added; version 1 in LEGACY_LINES).
    "record": LineShape(
        "rec {index} t={t_ns} addr={address} tgid={tgid} region={region} access={access} major={major}" + _REC_V2,
        {**_REC_FIELDS, **_REC_V2_FIELDS},
    ),
    "record_class": LineShape(
        "rec {index} t={t_ns} addr={address} tgid={tgid} region={region} access={access} major={major}"
        + _REC_V2
        + " class={fault_class}",
        {**_REC_FIELDS, **_REC_V2_FIELDS, "fault_class": WORD},
    ),
    "records_end": LineShape("---- END RECORDS ----"),
    # A, B and C at unload: what the kretprobe saw (issue 11). completed = records (B, C) or fault lines (A);
    # the kernel's own count of the process (minflt + majflt) is completed - remote (+ the process's faults in
    # memory that is not its own, none in the tests). nmissed > 0 (kretprobe) or kp_nmissed > 0 (its kprobe):
    # faults the probe did not see, the run is not exact.
    "fault_counts": LineShape(
        "faults completed={completed} retries={retries} errors={errors} remote={remote} gup={gup} major={major} "
        "minor={minor} read={read} write={write} exec={exec} nmissed={nmissed} kp_nmissed={kp_nmissed}",
        {
            "completed": U64,
            "retries": U64,
            "errors": U64,
            "remote": U64,
            "gup": U64,
            "major": U64,
            "minor": U64,
            "read": U64,
            "write": U64,
            "exec": U64,
            "nmissed": INT,
            "kp_nmissed": ULONG,
        },
    ),
    # B and C with follow=0, at unload: the kernel's own count of the traced process's faults (its threads'
    # min_flt + maj_flt as they exited, getrusage(RUSAGE_SELF)'s sum; exited=0: it had not exited, the count
    # is 0), the faults the module had seen when its last thread exited, and the processes it created (not
    # traced: follow=0).
    "reconcile": LineShape(
        "reconcile tgid={tgid} exited={exited} kernel_faults={kernel_faults} seen_at_exit={seen_at_exit} "
        "untraced_children={untraced_children}",
        {"tgid": INT, "exited": INT, "kernel_faults": U64, "seen_at_exit": U64, "untraced_children": U64},
    ),
    # B and C with follow=1, after the process table: the kernel's own counts of the processes of the table
    # whose every thread had exited (as "reconcile" takes it, per process), summed, beside the faults seen for
    # them by their exit; and the faults made in traced memory by processes that are not traced.
    "reconcile_tree": LineShape(
        "reconcile_tree processes={processes} exited={exited} root_exited={root_exited} "
        "kernel_faults={kernel_faults} seen_at_exit={seen_at_exit} remote_untraced={remote_untraced}",
        {
            "processes": U64,
            "exited": U64,
            "root_exited": INT,
            "kernel_faults": U64,
            "seen_at_exit": U64,
            "remote_untraced": U64,
        },
    ),
    # B and C at unload: the region table (regions used of capacity; faults left without a region, table full).
    "regions_summary": LineShape(
        "regions used={used} capacity={capacity} full={full}", {"used": U64, "capacity": U64, "full": U64}
    ),
    "plot_begin": LineShape(
        "---- BEGIN PLOT pid={pid} comm={comm} class={plot_class} scale={scale} ----",
        {"pid": INT, "comm": TEXT, "plot_class": WORD, "scale": WORD},
    ),
    # The folded plot: one line per band under the legend, bottom band first (docs/folded-plot.md).
    "band": LineShape(
        "band {index} name={name} pages={pmin}-{pmax} rows={rows} faults={faults}",
        {"index": INT, "name": WORD, "pmin": HEX64, "pmax": HEX64, "rows": INT, "faults": U64},
    ),
    "plot_summary": LineShape(
        "summary pid={pid} comm={comm} class={plot_class} faults={faults} t_span_ns={t_span_ns} "
        "page_min={page_min} page_max={page_max} outside={outside}",
        {
            "pid": INT,
            "comm": TEXT,
            "plot_class": WORD,
            "faults": U64,
            "t_span_ns": U64,
            "page_min": HEX64,
            "page_max": HEX64,
            "outside": ULONG,
        },
    ),
    "plot_end": LineShape("---- END PLOT ----"),
    # follow=1 (A, B and C): the process table, printed at unload before the plots
    "processes_begin": LineShape(
        "---- BEGIN PROCESSES traced={traced} table={table} overflow={overflow} untabled_faults={untabled} ----",
        {"traced": U64, "table": U64, "overflow": U64, "untabled": U64},
    ),
    "process": LineShape(
        "process tgid={tgid} ppid={ppid} faults={faults} exited={exited} comm={comm}",
        {"tgid": INT, "ppid": INT, "faults": S64, "exited": INT, "comm": TEXT},
    ),
    "process_rest": LineShape("process rest={processes} faults={faults}", {"processes": U64, "faults": S64}),
    "processes_end": LineShape("---- END PROCESSES ----"),
    "plot_empty": LineShape(
        "no page faults recorded for process {pid} ({comm}): plot left out", {"pid": INT, "comm": TEXT}
    ),
    "plot_empty_class": LineShape(
        "no page faults recorded for process {pid} ({comm}) in the {class_title}: plot left out",
        {"pid": INT, "comm": TEXT, "class_title": TEXT},
    ),
}


#: Lines no module prints any more, still read from older transcripts: the records version 1 (before tid,
#: exec, huge, IP and service time).
LEGACY_LINES: dict[str, LineShape] = {
    "record_v1": LineShape(
        "rec {index} t={t_ns} addr={address} tgid={tgid} region={region} access={access} major={major}", _REC_FIELDS
    ),
    "record_class_v1": LineShape(
        "rec {index} t={t_ns} addr={address} tgid={tgid} region={region} access={access} major={major} "
        "class={fault_class}",
        {**_REC_FIELDS, "fault_class": WORD},
    ),
}

# ---------------------------------------------------------------------------------------------
# Lossless records (issue 11, part 4): B and C expose read-only procfs files (mode 0400) under
# /proc/<module name>/ that the harness reads before it unloads the module. Binary records (no
# formatting cost in the kernel), text for the small tables. Little-endian, as on x86-64.
# The C side declares the same layouts (struct pfh_records_header, struct fault_record) and a
# build-time assertion of their sizes; tests/test_format_contract.py reads a real file back.
# ---------------------------------------------------------------------------------------------
PROC_FILES = ("records", "regions", "processes")  # /proc/<module>/<file>
#: The version of the records file: in its magic ("PFHREC2\0") and its record size. Version 1 (24-byte records,
#: "PFHREC1\0", before tid, exec, IP and service time) is still read: its first 24 bytes are version 2's.
RECORDS_VERSION = 2
RECORDS_MAGIC = b"PFHREC2\0"
RECORDS_MAGIC_V1 = b"PFHREC1\0"
#: magic, header_size, record_size, records in the file, records dropped (buffer full)
RECORDS_HEADER = struct.Struct("<8sIIQQ")
#: Version 2, 48 bytes, no padding (1 Mi records: 48 MiB of vmalloc):
#: time_ns (local_clock at completion), address, tgid, region index, access kind, flags (as version 1), then
#: tid (the thread that faulted), exec (which exec of the process: 0 for the image it had when the module first
#: saw it, +1 at each successful exec; EXEC_UNKNOWN: a followed process without a line in the table),
#: ip (the user instruction pointer, see the IP flags) and service_ns (from the entry of the fault's first
#: handle_mm_fault() attempt to the return of its completing one).
RECORD = struct.Struct("<QQIHBBIIQQ")
RECORD_V1 = struct.Struct("<QQIHBB")  # version 1: the first six fields
ACCESS_KINDS = ("read", "write", "exec")  # the record's access byte indexes this
RECORD_FLAG_MAJOR = 0x1  # a major fault, as the kernel counts it: VM_FAULT_MAJOR in the result, or FAULT_FLAG_TRIED
#: bits 1-2 of the flags: pf_probe_C's class of the fault (an index into FAULT_CLASSES); B stores it too
RECORD_FLAG_CLASS_SHIFT = 1
RECORD_FLAG_CLASS_MASK = 0x6
RECORD_FLAG_REMOTE = 0x8  # another process faulted in this memory (counted in that process's minflt/majflt)
RECORD_FLAG_HUGE = 0x10  # version 2: after the fault the address is mapped by a PMD-sized page (2 MiB on x86-64)
#: version 2: the fault was taken in kernel mode on the user's behalf (copy_to_user in a system call): ip is the
#: user IP where the system call was made (task_pt_regs(current)), not the faulting instruction
RECORD_FLAG_KERNEL_MODE = 0x20
#: version 2: the fault has no user IP (ip = 0): get_user_pages() (no pt_regs) or a kernel thread's
RECORD_FLAG_NO_IP = 0x40
EXEC_UNKNOWN = 0xFFFFFFFF
#: ipmode= in a record line (dump_records=1), from the two IP flags
IP_MODES = ("user", "kernel", "none")
REGION_NONE = 0xFFFF  # the region table was full: the fault has no region
#: What a region is, in the order the module numbers them (the kind word in the regions file).
REGION_KINDS = ("code", "data", "heap", "stack", "file", "anon", "vdso", "vvar", "other")
#: The module's region table (module parameter max_regions, allocated at load); a fault that needs a new region
#: when it is full gets REGION_NONE. A followed tree has regions per process: a kernel build needs thousands.
REGIONS_DEFAULT = 1024
REGIONS_LIMIT = 16384
REGION_NAME_MAX = 64  # a region's name in the table, at most (a file's basename, cut)
#: The names of the regions that are not files (code, data and file regions carry the file's basename).
REGION_FIXED_NAMES = {
    "heap": "[heap]",
    "stack": "[stack]",
    "anon": "[anon]",
    "vdso": "[vdso]",
    "vvar": "[vvar]",
    "other": "[other]",
}

# ---------------------------------------------------------------------------------------------
# The folded plot (docs/folded-plot.md): the plot_scale module parameter, and the bands.
# ---------------------------------------------------------------------------------------------
PLOT_SCALES = ("folded", "linear")  # the first is the default
MAX_BANDS = PLOT_ROWS // 2
#: A band's label (its members' names, docs/folded-plot.md) beside its top row and in its band line, at most: names
#: are listed while the label stays within BAND_NAME_MAX - 1 characters, then BAND_MORE if any was left out.
BAND_NAME_MAX = 24
BAND_NAME_SEPARATOR = ","  # between the names of a band's members (names have no blank)
BAND_MORE = "+"  # ends a band's label when some of its members' names did not fit
BAND_CONTINUED = '"'  # after a band's other rows: the same band as the row above (ditto)
BAND_CUT = "~"  # the border of a band's top row: the address space is cut between it and the band above
BAND_NONE_NAME = "?"  # the band of the faults with REGION_NONE

_REGION = "{index} {kind} {start} {end} {faults} {name}"
_REGION_FIELDS = {"index": U64, "kind": WORD, "start": ADDRESS, "end": ADDRESS, "faults": U64, "name": TEXT}
#: A regions line before issue 26 (no offset, no path), still read from older run directories.
REGION_LINE_V1 = LineShape(_REGION, _REGION_FIELDS)
#: One line of /proc/<module>/regions and one of /proc/<module>/processes.
TABLE_LINES: dict[str, LineShape] = {
    # offset: the file offset at start (0 for a region without a file); path: the file's full path, printable
    # (blanks and other bytes as in name: '?'), "-" without a file (issue 26: fault sites)
    "region": LineShape(_REGION + " offset={offset} path={path}", {**_REGION_FIELDS, "offset": HEX64, "path": WORD}),
    "process": LineShape("{tgid} {ppid} {faults} {comm}", {"tgid": INT, "ppid": INT, "faults": U64, "comm": TEXT}),
}


def legend() -> str:
    """The legend line under a plot, made from CELL_MARKS."""
    parts = []
    for i, (low, mark) in enumerate(CELL_MARKS):
        high = CELL_MARKS[i + 1][0] - 1 if i + 1 < len(CELL_MARKS) else None
        if high is None:
            what = f"{low} or more"
        elif high == low:
            what = f"{low} fault" if low == 1 else f"{low}"
        else:
            what = f"{low}-{high}"
        parts.append(f"'{mark}' {what}")
    return "legend: " + "  ".join(parts) + " (per cell)"


def folded_legend() -> str:
    """The folded plot's second legend line: what the folded axis is, and what its marks beside the rows mean."""
    return (
        f"folded axis: empty address space cut out ('{BAND_CUT}': cut above); names on a band's top row,"
        f" '{BAND_CONTINUED}' on its others; '{BAND_MORE}' more regions than named"
    )


def c_string(text: str) -> str:
    """`text` inside a C string literal (without the quotes)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def plot_row_regex() -> re.Pattern[str]:
    """A plot row: a right-aligned label, " ", the border ('|', or '~' where the folded axis is cut), PLOT_COLS
    cells, "|", and in a folded plot after a blank: the band's label on its top row, BAND_CONTINUED on the others
    (a name may be BAND_CONTINUED too: a band's top row is its '~' row, or the topmost band's first labelled row)."""
    return re.compile(
        rf"^(?P<label>.{{{LABEL_WIDTH}}}) (?P<border>[|~])(?P<cells>.{{{PLOT_COLS}}})\|"
        rf"(?: (?P<band>\S{{1,{BAND_NAME_MAX}}}))?$"
    )


def plot_rule_regex() -> re.Pattern[str]:
    """The X axis under the rows."""
    return re.compile(rf"^ {{{LABEL_WIDTH}}} \+-{{{PLOT_COLS}}}\+$")


def template_context() -> dict[str, object]:
    """What the C templates get: every constant and line shape above."""
    return {
        "plot_rows": PLOT_ROWS,
        "plot_cols": PLOT_COLS,
        "label_width": LABEL_WIDTH,
        "line_max": LINE_MAX,
        "plot_seconds_s": PLOT_SECONDS_S,
        "default_max_records": DEFAULT_MAX_RECORDS,
        "max_records_limit": MAX_RECORDS_LIMIT,
        "follow_table_size": FOLLOW_TABLE_SIZE,
        "follow_top": FOLLOW_TOP,
        "follow_hash_bits": (2 * FOLLOW_TABLE_SIZE - 1).bit_length(),
        "cell_marks": CELL_MARKS,
        "legend": legend(),
        "fault_classes": FAULT_CLASSES,
        "fmt": {name: shape.c_literal() for name, shape in LINES.items()},
        "table_fmt": {name: shape.c_literal() for name, shape in TABLE_LINES.items()},
        "records_magic": RECORDS_MAGIC,
        "records_magic_text": RECORDS_MAGIC.rstrip(b"\0").decode(),
        "records_header_size": RECORDS_HEADER.size,
        "record_size": RECORD.size,
        "access_kinds": ACCESS_KINDS,
        "record_flag_major": RECORD_FLAG_MAJOR,
        "region_none": REGION_NONE,
        "region_kinds": REGION_KINDS,
        "regions_default": REGIONS_DEFAULT,
        "regions_limit": REGIONS_LIMIT,
        "region_name_max": REGION_NAME_MAX,
        "region_fixed_names": REGION_FIXED_NAMES,
        "record_flag_class_shift": RECORD_FLAG_CLASS_SHIFT,
        "record_flag_class_mask": RECORD_FLAG_CLASS_MASK,
        "record_flag_remote": RECORD_FLAG_REMOTE,
        "record_flag_huge": RECORD_FLAG_HUGE,
        "record_flag_kernel_mode": RECORD_FLAG_KERNEL_MODE,
        "record_flag_no_ip": RECORD_FLAG_NO_IP,
        "exec_unknown": EXEC_UNKNOWN,
        "ip_modes": IP_MODES,
        "plot_scales": PLOT_SCALES,
        "max_bands": MAX_BANDS,
        "band_name_max": BAND_NAME_MAX,
        "band_none_name": BAND_NONE_NAME,
        "band_continued": BAND_CONTINUED,
        "band_continued_c": c_string(BAND_CONTINUED),
        "folded_legend_c": c_string(folded_legend()),
    }
