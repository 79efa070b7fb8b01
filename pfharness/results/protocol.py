"""A step's protocol lines taken apart: the typed events of vm/run_step.sh and the kernel log
records among them.

Every line on the channel is "TOKEN EVENT [key=value ...]" or "TOKEN kmsg <record>" (a
/dev/kmsg record); TOKEN is the per-step random token the harness gave run_step.sh. The reader
(pfharness/channel.py) keeps only the lines with the step's token and strips it; this module
takes those lines apart. The events and the line format are defined in results/step_protocol.py.
The workload's own output travels on other streams and is never parsed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from . import step_protocol as sp

KERNEL_FACILITY = 0  # the syslog facility of the kernel's own records in /dev/kmsg
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
class StepData:
    """What one step sent, as the harness received it (live) or read it back from a transcript."""

    proto_lines: tuple[str, ...] = ()  # the protocol lines with the step's token, token removed
    output: str = ""  # the workload's stdout and stderr as they arrived (never parsed)
    console: str = ""  # the console's text meanwhile (kernel messages; read only if the VM was lost)
    token: str = ""  # the step's token: its kernel records are those after its mark (step_protocol.STEP_MARK)


@dataclass
class StepOutput:
    """The protocol lines of one step, taken apart."""

    events: list[sp.StepEvent] = field(default_factory=list)
    kernel_records: list[KernelRecord] = field(default_factory=list)
    complete: bool = False  # step-end seen
    kmsg_lost: int = 0  # times the kernel log overwrote records before they were read

    def event(self, kind: type[sp.E]) -> sp.E | None:
        """The first event of this kind, or None."""
        return next((e for e in self.events if isinstance(e, kind)), None)

    def status(self, kind: type[sp.StatusEvent]) -> int | None:
        """The status the first event of this kind carries (insmod, workload-end, rmmod, step-end)."""
        e = self.event(kind)
        return None if e is None else e.status


def parse_kmsg_line(line: str) -> KernelRecord | None:
    m = _KMSG_RE.match(line)
    if not m:
        return None
    prio, seq, usec, text = m.groups()
    # /dev/kmsg escapes every byte outside printable ASCII as \xNN: undo that, then decode UTF-8.
    raw = _KMSG_ESCAPE.sub(lambda x: chr(int(x.group(1), 16)), text).encode("latin-1", "replace")
    return KernelRecord(int(prio) & 7, int(prio) >> 3, int(seq), int(usec), raw.decode("utf-8", "replace"))


def parse_lines(lines: Iterable[str], token: str = "") -> StepOutput:
    """Take apart one step's protocol lines (token removed), up to step-end. With the step's `token`,
    the kernel records up to and including the first mark with it (step_protocol.STEP_MARK: written
    before the workload could run, so never forged in front of it) are not the step's and are dropped;
    without a mark (an older step script, or the log overwrote it) every record is kept."""
    out = StepOutput()
    out.kernel_records = _after_mark(_records_and_events(lines, out), token)
    return out


def _after_mark(records: list[KernelRecord], token: str) -> list[KernelRecord]:
    mark = f"{sp.STEP_MARK} {token}"
    for i, rec in enumerate(records):
        if token and rec.facility != KERNEL_FACILITY and rec.message == mark:
            return records[i + 1 :]
    return records


def _records_and_events(lines: Iterable[str], out: StepOutput) -> list[KernelRecord]:
    """Fill `out`'s events (up to step-end); return the kernel records among them."""
    records: list[KernelRecord] = []
    in_kmsg = False
    for raw in lines:
        line = raw.rstrip("\r\n")
        name, _, rest = line.partition(" ")
        if name == sp.KMSG:
            rec = parse_kmsg_line(rest) if in_kmsg else None
            if rec is not None:
                records.append(rec)
            continue
        event = sp.parse_event(line)
        if event is None:
            continue
        out.events.append(event)
        if isinstance(event, sp.KmsgLost):
            out.kmsg_lost += 1
        elif isinstance(event, sp.KmsgBegin | sp.KmsgEnd):
            in_kmsg = isinstance(event, sp.KmsgBegin)
        elif isinstance(event, sp.StepEnd):
            out.complete = True
            break
    return records
