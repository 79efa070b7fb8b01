"""A student's name: from a hand-in's file name (alice.tar.gz -> alice), made safe to be a directory name
and a gradebook key (letters, digits, `.`, `_`, `-`; nothing hidden, nothing empty, nothing too long)."""

from __future__ import annotations

import re

SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2", ".txz", ".tar", ".zip", ".gz")
MAX_LENGTH = 64
UNNAMED = "student"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """`name` with every run of other characters one `_`, no leading dots or `-`, at most MAX_LENGTH long;
    "student" when nothing is left."""
    safe = _UNSAFE.sub("_", name.strip()).lstrip(".-")[:MAX_LENGTH].strip("_")
    return safe if safe and safe not in (".", "..") else UNNAMED


def student_of(filename: str) -> str:
    """The student's name from a hand-in's file name: its archive suffix (any case) removed, made safe."""
    base = filename.rsplit("/", 1)[-1]
    for suffix in SUFFIXES:
        if base.lower().endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
            break
    return safe_name(base)
