"""The CSV of submission times a teacher may give the grader (`student,time` per line): each student's
time as ISO 8601 UTC, the form Unpacked.submitted takes.

A first line `student,time` (any case) is a header and skipped, as are blank lines and lines starting
with `#`. A time is ISO 8601 (`2020-03-05T23:59:00-05:00`, `2020-03-05 23:59`, `...Z`; one without an
offset is UTC) or Unix seconds. Student names are made safe as the tarballs' names are (names.safe_name),
so `Alice Smith` matches `Alice_Smith.tar.gz`."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path

from ..errors import UsageError
from .names import safe_name


def iso_utc(moment: datetime) -> str:
    """`moment` as ISO 8601 UTC to the second (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def parse_time(text: str) -> str:
    """One time (ISO 8601 or Unix seconds) as ISO 8601 UTC; ValueError when it is neither."""
    text = text.strip()
    if text.isdigit():
        return iso_utc(datetime.fromtimestamp(int(text), timezone.utc))
    if text[-1:] in ("Z", "z"):  # Python 3.10's fromisoformat does not know it
        text = text[:-1] + "+00:00"
    return iso_utc(datetime.fromisoformat(text))


def parse_times(text: str, source: str = "the times CSV") -> dict[str, str]:
    """student -> ISO 8601 UTC time from the CSV's text; UsageError naming the line when one is wrong."""
    times: dict[str, str] = {}
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if n == 1 and [c.strip().lower() for c in row[:2]] == ["student", "time"]:
            continue
        if len(row) != 2:
            raise UsageError(f"{source} line {n}: expected `student,time`, got {len(row)} fields")
        student = safe_name(row[0])
        try:
            when = parse_time(row[1])
        except (ValueError, OverflowError, OSError):
            raise UsageError(
                f"{source} line {n}: {row[1].strip()!r} is not a time: write ISO 8601 (2020-03-05T23:59:00Z)"
            ) from None
        if student in times:
            raise UsageError(f"{source} line {n}: {student} appears twice: keep the time of the graded hand-in")
        times[student] = when
    return times


def read_times(path: Path) -> dict[str, str]:
    """parse_times of a file; UsageError when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the times CSV {path} ({exc}): pass a UTF-8 file of student,time lines") from exc
    return parse_times(text, str(path))
