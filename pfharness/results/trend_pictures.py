"""The scatter picture with two panels under it on its time axis: faults per second over time, and the distinct
pages touched so far (the working set's growth), computed from the records with numpy.

A page is counted once per process (a tree's processes each have their own address space), at its first fault;
a huge-page fault counts the 512 pages of its 2 MiB (and the block's small faults are not counted again), as the
study's MiB column counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import pictures
from .records_file import FaultRecord

BINS = 120  # time bins of the rate panel (about 7 pixels each)
TREND_IN = 1.6  # height of each trend panel, inches
PAGE_KIB = 4


@dataclass(frozen=True)
class Trends:
    """What the two panels draw, times in seconds from t0."""

    bin_edges: Any  # numpy array, BINS + 1 edges
    per_second: Any  # faults per second in each bin
    bin_seconds: float  # the width of a bin
    first_touch: Any  # sorted times of each (process, page or huge block)'s first fault
    touched: Any  # pages touched by then, at each of those times (a huge block: 512 at once)
    pages: int  # distinct (process, page) pairs, a huge block's 512 pages among them


def trends(records: Sequence[FaultRecord], t0_ns: int | None = None) -> Trends:
    """The rate per time bin and the first-touch times of `records` (at least one), on the clock from t0_ns (None:
    the first record)."""
    import numpy as np  # noqa: PLC0415 - comes with matplotlib (pfharness[plot])

    n = len(records)
    t_ns = np.fromiter((r.t_ns for r in records), dtype=np.int64, count=n)
    t0 = int(t_ns.min()) if t0_ns is None else t0_ns
    t = (t_ns - t0) / 1e9
    lo, hi = float(t.min()), float(t.max())
    if hi <= lo:  # one instant: one bin of a microsecond, so the rate is finite
        hi = lo + 1e-6
    edges = np.linspace(lo, hi, BINS + 1)
    counts, _ = np.histogram(t, bins=edges)
    width = (hi - lo) / BINS
    first_t, weight = _first_touches(records, t)
    touched = np.cumsum(weight)
    return Trends(edges, counts / width, width, first_t, touched, int(touched[-1]) if len(touched) else 0)


def _first_touches(records: Sequence[FaultRecord], t: Any) -> tuple[Any, Any]:
    """The sorted times of each (process, page)'s first fault, and the pages each adds: 1, or 512 for a huge
    block (whose small faults are left out)."""
    import numpy as np  # noqa: PLC0415

    huge = {(r.tgid, r.address >> 21) for r in records if r.huge}
    keep = np.fromiter((r.huge or (r.tgid, r.address >> 21) not in huge for r in records), dtype=bool, count=len(t))
    key = np.fromiter(
        (
            ((r.tgid << 52) ^ (1 << 51) ^ (r.address >> 21)) if r.huge else ((r.tgid << 52) ^ (r.address >> 12))
            for r in records
        ),
        dtype=np.uint64,
        count=len(t),
    )
    pages = np.fromiter((512 if r.huge else 1 for r in records), dtype=np.int64, count=len(t))
    key, tk, pages = key[keep], t[keep], pages[keep]
    order = np.argsort(tk, kind="stable")
    _, first = np.unique(key[order], return_index=True)
    chosen = np.sort(first)  # positions in time order
    return tk[order][chosen], pages[order][chosen]


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _rate_panel(ax: Any, found: Trends) -> None:
    import numpy as np  # noqa: PLC0415
    from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: PLC0415

    ax.stairs(found.per_second, found.bin_edges, fill=True, color="#1f77b4", alpha=0.8, linewidth=0)
    positive = found.per_second[found.per_second > 0]
    if len(positive) and positive.max() > 100 * positive.min():
        ax.set_yscale("log")  # a start-up burst beside a steady trickle: both visible
        ax.yaxis.set_minor_formatter(NullFormatter())
    # plain numbers: titles have math off (a '$' in a command), so the log axis's TeX labels would show raw
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    ax.set_title(
        f"faults per second (in bins of {_duration(found.bin_seconds)}); peak {np.max(found.per_second):,.0f}/s",
        fontsize=8,
        loc="left",
    )
    ax.tick_params(labelsize=7)


def _growth_panel(ax: Any, found: Trends) -> None:

    ax.step(found.first_touch, found.touched, where="post", color="#d95f02", linewidth=1.2)
    ax.set_ylim(0, found.pages * 1.08)
    mib = found.pages * PAGE_KIB / 1024
    ax.set_title(
        f"distinct pages touched so far (working-set growth): {found.pages:,} pages, {mib:,.1f} MiB in all",
        fontsize=8,
        loc="left",
    )
    ax.tick_params(labelsize=7)


def build_with_trends(picture: pictures.Picture) -> Any:
    """build_figure()'s picture with the two trend panels under it, all on one time axis."""
    fig = pictures.build_figure(picture)
    scatter = fig.axes[0]
    height = pictures.HEIGHT_IN + 2 * TREND_IN + 0.85
    fig.set_size_inches(pictures.WIDTH_IN, height)
    # The scatter keeps its inches; the two panels go under it, the time label under the last.
    inch = 1 / height
    bottom = 0.8 * inch
    panel = (TREND_IN - 0.45) * inch
    gap = 0.45 * inch
    left, width = scatter.get_position().x0, scatter.get_position().width
    rate = fig.add_axes((left, bottom + panel + gap, width, panel), sharex=scatter)
    growth = fig.add_axes((left, bottom, width, panel), sharex=scatter)
    scatter_bottom = bottom + 2 * panel + 2 * gap + 0.25 * inch
    scatter.set_position((left, scatter_bottom, width, 1 - 0.75 * inch - scatter_bottom))
    found = trends(picture.records, picture.t0_ns)
    _rate_panel(rate, found)
    _growth_panel(growth, found)
    growth.set_xlabel(scatter.get_xlabel())
    scatter.set_xlabel("")
    for ax in (scatter, rate):
        ax.tick_params(labelbottom=False)
    return fig
