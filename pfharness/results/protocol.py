"""The protocol of vm/run_step.sh: the lines it writes on its own channel, and the kernel log
records among them.

Every line on the channel is "TOKEN EVENT [key=value ...]" or "TOKEN kmsg <record>" (a
/dev/kmsg record); TOKEN is the per-step random token the harness gave run_step.sh. The reader
(pfharness/channel.py) keeps only the lines with the step's token and strips it; this module
takes those lines apart. The workload's own output travels on other streams and is never parsed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

KERNEL_FACILITY = 0  # the syslog facility of the kernel's own records in /dev/kmsg
TOKEN_RE = re.compile(r"[0-9a-f]{16,64}")  # what a token looks like
_EVENT_RE = re.compile(r"([a-z-]+)((?: [a-z_]+=\S*)*)[ \t]*")
# /dev/kmsg: "<prio>,<seq>,<usec>,<flags>[,...];<message>"
_KMSG_RE = re.compile(r"^(\d{1,9}),(\d{1,20}),(\d{1,20}),[^;]*;(.*)$")
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


@dataclass(frozen=True)
class StepData:
    """What one step sent, as the harness received it (live) or read it back from a transcript."""

    proto_lines: tuple[str, ...] = ()  # the protocol lines with the step's token, token removed
    output: str = ""  # the workload's stdout and stderr as they arrived (never parsed)
    console: str = ""  # the console's text meanwhile (kernel messages; read only if the VM was lost)


@dataclass
class StepOutput:
    """The protocol lines of one step, taken apart."""

    events: list[Event] = field(default_factory=list)
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
        return int(v) if v is not None and re.fullmatch(r"-?\d{1,12}", v) else None


def parse_kmsg_line(line: str) -> KernelRecord | None:
    m = _KMSG_RE.match(line)
    if not m:
        return None
    prio, seq, usec, text = m.groups()
    # /dev/kmsg escapes every byte outside printable ASCII as \xNN: undo that, then decode UTF-8.
    raw = _KMSG_ESCAPE.sub(lambda x: chr(int(x.group(1), 16)), text).encode("latin-1", "replace")
    return KernelRecord(int(prio) & 7, int(prio) >> 3, int(seq), int(usec), raw.decode("utf-8", "replace"))


def strip_token(line: str, token: str) -> str | None:
    """The line without its token, or None when it does not carry `token`."""
    prefix = token + " "
    return line[len(prefix) :] if token and line.startswith(prefix) else None


def parse_lines(lines: Iterable[str]) -> StepOutput:
    """Take apart one step's protocol lines (token removed), up to step-end."""
    out = StepOutput()
    in_kmsg = False
    for raw in lines:
        line = raw.rstrip("\r\n")
        name, _, rest = line.partition(" ")
        if name == "kmsg":
            rec = parse_kmsg_line(rest) if in_kmsg else None
            if rec is not None:
                out.kernel_records.append(rec)
            continue
        m = _EVENT_RE.fullmatch(line)
        if m is None:
            continue
        name = m.group(1)
        values = dict(kv.split("=", 1) for kv in m.group(2).split())
        out.events.append(Event(name, values))
        if name == "kmsg-lost":
            out.kmsg_lost += 1
        elif name == "kmsg-begin":
            in_kmsg = True
        elif name == "kmsg-end":
            in_kmsg = False
        elif name == "step-end":
            out.complete = True
            break
    return out
