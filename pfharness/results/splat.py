"""Scan the kernel's own messages for signs that the kernel is hurt (a run whose log shows any
of these is a failed run), and find OOM kills, which are ordinary events, not splats.

Only the kernel's records are given to the scan (facility 0, see step_result.py); the modules'
own lines are left out too, so a process named "lockdep" or "BUG:" cannot fail a run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .notes import HOST_NOTE

SPLAT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("bug", r"\bBUG:"),
    ("warning", r"\bWARNING:"),
    ("oops", r"\bOops\b"),
    ("gpf", r"general protection fault"),
    ("divide-error", r"^divide error: "),  # an x86 #DE in the kernel (a division by zero): an Oops of its own
    ("invalid-opcode", r"^invalid opcode: "),  # BUG_ON()'s ud2, when no "kernel BUG at" precedes it
    ("slub", r"^BUG [\w.-]+ \(.*\): "),  # slub_debug: "BUG kmalloc-8k (Tainted: ...): Left Redzone overwritten"
    ("sleep-in-atomic", r"sleeping function called from invalid context"),
    ("atomic-schedule", r"scheduling while atomic"),
    ("rcu-stall", r"rcu.*(?:detected stall|self-detected stall)|RCU Stall"),
    ("soft-lockup", r"soft lockup"),
    ("hard-lockup", r"hard LOCKUP"),
    ("lockdep", r"possible circular locking|possible recursive locking|inconsistent lock state"),
    ("kasan", r"\bKASAN\b"),
    ("ubsan", r"\bUBSAN\b"),
    ("panic", r"Kernel panic - not syncing"),
    ("call-trace", r"^\s*Call Trace:"),
)
_COMPILED = [(kind, re.compile(pattern)) for kind, pattern in SPLAT_PATTERNS]
_MODULE_LINE = re.compile(r"^pf_probe_[ABC]: ")
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\] ")
# The OOM killer's report: from "<comm> invoked oom-killer" to "Killed process <pid> (<comm>)".
_OOM_BEGIN = re.compile(r"invoked oom-killer: ")
_OOM_KILLED = re.compile(r"(?:Out of memory|Memory cgroup out of memory): Killed process (\d+) \((.*?)\)")


@dataclass(frozen=True)
class OomKill:
    """A process the OOM killer ended."""

    pid: int
    comm: str
    line: str  # the kernel's line saying so


def _is_splat(message: str) -> bool:
    return any(p.search(message) for _, p in _COMPILED)


def scan(messages: Iterable[str]) -> list[str]:
    """The kernel messages that show a splat, in order, each once. The modules' own lines and the
    lines of an OOM killer's report (its stack dump included) are not splats."""
    found: list[str] = []
    seen: set[str] = set()
    in_oom_report = False
    for message in messages:
        text = _TIMESTAMP.sub("", message)
        if _MODULE_LINE.match(text):
            continue
        if _OOM_BEGIN.search(text):
            in_oom_report = True
        if in_oom_report:
            if _OOM_KILLED.search(text):
                in_oom_report = False
            continue
        if _is_splat(text) and text not in seen:
            seen.add(text)
            found.append(message)
    return found


def oom_kills(messages: Iterable[str]) -> list[OomKill]:
    """Every process the OOM killer ended, from the kernel's messages."""
    kills = []
    for message in messages:
        m = _OOM_KILLED.search(message)
        if m:
            kills.append(OomKill(int(m.group(1)), m.group(2), _TIMESTAMP.sub("", message)))
    return kills


_SPLAT_HEAD = re.compile(
    r"BUG:|Oops|divide error|general protection fault|WARNING:|KASAN|soft lockup|rcu.*stall|"
    r"Redzone overwritten|Poison overwritten|Object padding overwritten|kernel BUG at"
)


def splat_head(line: str) -> bool:
    """Whether `line` begins a kernel report (a splat)."""
    return bool(_SPLAT_HEAD.search(line)) and HOST_NOTE not in line
