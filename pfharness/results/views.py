"""Which faults a picture of a saved run shows: all, one band (--range REGION|LO-HI), one process (--pid N)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UsageError
from .records_file import FaultRecord, Region


@dataclass(frozen=True)
class View:
    """The records to draw and words that say which they are (for titles)."""

    records: list[FaultRecord]
    what: str  # "" for everything, else e.g. "region [anon]" or "pages 0x7f000-0x7f0ff" or "pid 120"


def parse_page_range(spec: str) -> tuple[int, int] | None:
    """ "LO-HI" as two page numbers (hex with 0x, or decimal), or None when `spec` is not one."""
    lo, sep, hi = spec.partition("-")
    if not sep:
        return None
    try:
        low, high = int(lo.strip(), 0), int(hi.strip(), 0)
    except ValueError:
        return None
    if low < 0 or high < low:
        raise UsageError(f"--range {spec}: the range must be LO-HI with LO <= HI (page numbers)")
    return low, high


def select(
    records: Sequence[FaultRecord], regions: Sequence[Region], *, page_range: str | None = None, pid: int | None = None
) -> View:
    """The records of one process and/or one band; a UsageError naming the choices when nothing matches."""
    chosen = list(records)
    words = []
    if pid is not None:
        chosen = [r for r in chosen if r.tgid == pid]
        if not chosen:
            pids = sorted({r.tgid for r in records})
            shown = ", ".join(map(str, pids[:20])) + (" ..." if len(pids) > 20 else "")
            raise UsageError(f"--pid {pid}: no fault of that process in this run (its processes: {shown})")
        words.append(f"pid {pid}")
    if page_range is not None:
        pages = parse_page_range(page_range)
        if pages is not None:
            lo, hi = pages
            chosen = [r for r in chosen if lo <= r.address >> 12 <= hi]
            words.append(f"pages {lo:#x}-{hi:#x}")
        else:
            indexes = {g.index for g in regions if g.name == page_range}
            if not indexes:
                names = sorted({g.name for g in regions})
                raise UsageError(
                    f"--range {page_range!r}: no region of that name and not a page range LO-HI; "
                    f"regions: {', '.join(names) or 'none'}"
                )
            chosen = [r for r in chosen if r.region in indexes]
            words.append(f"region {page_range}")
        if not chosen:
            raise UsageError(f"--range {page_range}: no fault in it (see regions.csv for the regions and their pages)")
    return View(chosen, ", ".join(words))
