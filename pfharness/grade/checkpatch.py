"""The kernel's checkpatch.pl over a submission's .c files: its error and warning counts, for the rubric's
"clean" item. checkpatch comes from PFH_CHECKPATCH (a path to checkpatch.pl) when set, else from the
Debian package linux-source-6.1: its three files are extracted once from the tarball into the cache (as
tests/test_checkpatch.py does for the project's own modules)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import assets, proc

SOURCE_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
FILES = ("checkpatch.pl", "spelling.txt", "const_structs.checkpatch")
TIMEOUT = 120.0  # seconds for one file
_TOTAL = re.compile(r"^total: (\d+) errors, (\d+) warnings, (?:(\d+) checks, )?\d+ lines checked$", re.M)


@dataclass(frozen=True)
class Counts:
    """checkpatch's counts over the files it read, or why it could not count (`error`)."""

    errors: int = 0
    warnings: int = 0
    files: tuple[str, ...] = ()
    error: str = ""  # checkpatch could not be run: the check is not counted against the student
    first: tuple[str, ...] = ()  # its first reports, as evidence


def find() -> Path | None:
    """checkpatch.pl: PFH_CHECKPATCH, the cached copy, or one extracted from linux-source-6.1 (None: none)."""
    configured = os.environ.get("PFH_CHECKPATCH")
    if configured:
        return Path(configured) if Path(configured).is_file() else None
    dest = assets.cache_dir() / "checkpatch-6.1"
    path = dest / "scripts" / "checkpatch.pl"
    if path.is_file():
        return path
    if not SOURCE_TARBALL.is_file() or shutil.which("perl") is None:
        return None
    _extract(dest)
    return path if path.is_file() else None


def _extract(dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".checkpatch-", dir=dest.parent))
    try:
        argv = ["tar", "-xJf", str(SOURCE_TARBALL), "-C", str(staging), "--strip-components=1", "--wildcards"]
        result = proc.run([*argv, *(f"*/scripts/{name}" for name in FILES)])
        if result.returncode == 0 and all((staging / "scripts" / n).is_file() for n in FILES):
            with contextlib.suppress(OSError):  # a concurrent grade that got there first wins
                staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def count(sources: Sequence[Path]) -> Counts:
    """checkpatch's errors and warnings over `sources` (the default checks, not --strict)."""
    script = find()
    if script is None:
        return Counts(error=f"no checkpatch.pl: install linux-source-6.1 ({SOURCE_TARBALL}) or set PFH_CHECKPATCH")
    errors = warnings = 0
    first: list[str] = []
    for source in sources:
        argv: list[str | Path] = ["perl", script, "--no-tree", "--emacs", "--show-types", "--color=never", "-f", source]
        try:
            result = proc.run(argv, timeout=TIMEOUT, merge_stderr=True)
        except subprocess.TimeoutExpired:
            return Counts(error=f"checkpatch took longer than {TIMEOUT:.0f} s on {source.name}")
        total = _TOTAL.search(result.stdout)
        if total is None:
            return Counts(error=f"checkpatch printed no totals for {source.name} (status {result.returncode})")
        errors, warnings = errors + int(total.group(1)), warnings + int(total.group(2))
        first += [ln.replace(f"{source.parent}/", "") for ln in result.stdout.splitlines() if ": ERROR:" in ln][:3]
        first += [ln.replace(f"{source.parent}/", "") for ln in result.stdout.splitlines() if ": WARNING:" in ln][:2]
    return Counts(errors, warnings, tuple(s.name for s in sources), first=tuple(first[:6]))
