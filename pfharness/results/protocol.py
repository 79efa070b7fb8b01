"""The marker lines vm/run_step.sh prints, and the kernel log records it dumps.

A step's output is split into events ("##PFH## <event> key=value ..."), the
workload's own output (between workload-begin and workload-end) and kernel
log records (between kmsg-begin and kmsg-end, in /dev/kmsg format).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MARKER = "##PFH##"
KERNEL_FACILITY = 0  # the syslog facility of the kernel's own records in /dev/kmsg
_MARKER_RE = re.compile(r"##PFH## ([a-z-]+)((?: [a-z_]+=\S*)*)[ \t]*\r?$")
# /dev/kmsg: "<prio>,<seq>,<usec>,<flags>[,...];<message>"
_KMSG_RE = re.compile(r"^(\d+),(\d+),(\d+),[^;]*;(.*)$")
_KMSG_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


@dataclass(frozen=True)
class KernelRecord:
    """One kernel log record."""

    level: int  # 0 (emerg) .. 7 (debug)
    facility: int  # 0 for the kernel's own records; user space's writes to /dev/kmsg never have 0
    seq: int  # sequence number (-1 when unknown, e.g. parsed from dmesg text)
    usec: int  # time since boot, microseconds (-1 when unknown)
    message: str  # the text, without prefix


@dataclass(frozen=True)
class Event:
    name: str  # e.g. "pid", "insmod", "workload-end"
    values: dict[str, str]  # its key=value pairs


@dataclass
class StepOutput:
    """What one run of run_step.sh printed, taken apart."""

    events: list[Event] = field(default_factory=list)
    workload_output: str = ""  # the workload's own stdout/stderr, as printed
    kernel_records: list[KernelRecord] = field(default_factory=list)
    complete: bool = False  # step-end seen
    kmsg_lost: int = 0  # times the kernel log overwrote records before they were read

    def event(self, name: str) -> Event | None:
        return next((e for e in self.events if e.name == name), None)

    def value(self, name: str, key: str) -> str | None:
        e = self.event(name)
        return None if e is None else e.values.get(key)

    def int_value(self, name: str, key: str) -> int | None:
        v = self.value(name, key)
        return int(v) if v is not None and re.fullmatch(r"-?\d+", v) else None


def parse_kmsg_line(line: str) -> KernelRecord | None:
    m = _KMSG_RE.match(line)
    if not m:
        return None
    prio, seq, usec, text = m.groups()
    # /dev/kmsg escapes every byte outside printable ASCII as \xNN: undo that, then decode UTF-8.
    raw = _KMSG_ESCAPE.sub(lambda x: chr(int(x.group(1), 16)), text).encode("latin-1", "replace")
    return KernelRecord(int(prio) & 7, int(prio) >> 3, int(seq), int(usec), raw.decode("utf-8", "replace"))


def parse_step(text: str) -> StepOutput:
    """Take apart the output of one step (from its first marker to step-end)."""
    out = StepOutput()
    workload: list[str] = []
    section = None  # None, "workload" or "kmsg"
    for raw in text.splitlines(keepends=True):
        line = raw.rstrip("\r\n")
        m = _MARKER_RE.search(line) if MARKER in line else None  # the marker that ends the line
        idx = m.start() if m else -1
        if m is None:
            if section == "workload":
                workload.append(raw.replace("\r\n", "\n"))
            elif section == "kmsg":
                rec = parse_kmsg_line(line.rstrip("\r"))
                if rec is not None:
                    out.kernel_records.append(rec)
            continue
        if section == "workload" and idx > 0:
            workload.append(line[:idx])  # output that did not end in a newline
        name = m.group(1)
        values = dict(kv.split("=", 1) for kv in m.group(2).split())
        out.events.append(Event(name, values))
        if name == "kmsg-lost":
            out.kmsg_lost += 1
        if name == "workload-begin":
            section = "workload"
        elif name == "kmsg-begin":
            section = "kmsg"
        elif name in ("workload-end", "kmsg-end"):
            section = None
        elif name == "step-end":
            out.complete = True
            break
    out.workload_output = "".join(workload)
    return out
