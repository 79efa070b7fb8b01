"""Scan kernel messages for signs that the kernel is hurt: a run whose log
shows any of these is a failed run."""

from __future__ import annotations

import re
from collections.abc import Iterable

SPLAT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("bug", r"\bBUG:"),
    ("warning", r"\bWARNING:"),
    ("oops", r"\bOops\b"),
    ("gpf", r"general protection fault"),
    ("sleep-in-atomic", r"sleeping function called from invalid context"),
    ("atomic-schedule", r"scheduling while atomic"),
    ("rcu-stall", r"rcu.*(?:detected stall|self-detected stall)|RCU Stall"),
    ("soft-lockup", r"soft lockup"),
    ("hard-lockup", r"hard LOCKUP"),
    ("lockdep", r"possible circular locking|possible recursive locking|inconsistent lock state|lockdep"),
    ("kasan", r"\bKASAN\b"),
    ("ubsan", r"\bUBSAN\b"),
    ("panic", r"Kernel panic - not syncing"),
    ("call-trace", r"^\s*Call Trace:"),
)
_COMPILED = [(kind, re.compile(pattern)) for kind, pattern in SPLAT_PATTERNS]


def scan(messages: Iterable[str]) -> list[str]:
    """The messages that show a kernel splat, in order."""
    return [msg for msg in messages if any(p.search(msg) for _, p in _COMPILED)]
