"""The sites view as pictures (matplotlib, pfharness[plot]): the service-time histograms as a PNG, and a
flame-style picture of the sites (all -> library -> function, widths by faults) as an SVG."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import picture_style as style
from .pictures import _pyplot
from .sites import SiteRow, Sites
from .sites_view import bucket_size, duration

ROW_HEIGHT = 1.0  # a level of the flame picture, in data units
MIN_LABEL_PX = 30  # a box narrower than this has no label


def _bucket_label(low: int) -> str:
    return f"{bucket_size(low)}-{bucket_size(2 if low == 0 else 2 * low)}"


def _common_buckets(view: Sites) -> list[int]:
    """The low bounds of every bucket from the fastest to the slowest fault of any kind (one x axis for all)."""
    lows = [b.low_ns for buckets in view.histograms.values() for b in buckets]
    if not lows:
        return []
    first, last = min(lows), max(lows)
    out, low = [first], first
    while low < last:
        low = 2 if low == 0 else 2 * low
        out.append(low)
    return out


def histograms_png(view: Sites, path: Path, title: str) -> Path:
    """One bar chart per kind (minor, major, read, write, exec): faults per log2 bucket of service time, on one
    x axis (so the kinds compare), each bar labelled with its count."""
    plt = _pyplot()
    kinds, lows = list(view.histograms), _common_buckets(view)
    fig, axes = plt.subplots(len(kinds), 1, figsize=(10, 2.0 * len(kinds)), sharex=True, constrained_layout=True)
    for ax, kind in zip(axes, kinds, strict=True):
        counts = {b.low_ns: b.count for b in view.histograms[kind]}
        heights = [counts.get(low, 0) for low in lows]
        ax.set_title(f"{kind}: {sum(heights)} faults", loc="left", fontsize=10)
        bars = ax.bar(range(len(lows)), heights, color=style.PALETTE[0])
        ax.bar_label(bars, [str(h) if h else "" for h in heights], fontsize=7)
        ax.set_ylim(0, max(max(heights, default=0), 1) * 1.2)
        ax.set_ylabel("faults")
    axes[-1].set_xticks(range(len(lows)), [_bucket_label(low) for low in lows], fontsize=8, rotation=30)
    axes[-1].set_xlabel("service time (ns, log2 buckets: [low, high))")
    fig.suptitle(f"{title}\nservice time per fault: {view.faults} faults, {duration(view.total_ns)} in all")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _color(name: str) -> tuple[float, float, float]:
    """A warm colour (flame graphs' reds, oranges and yellows), the same for a name on every run."""
    h = zlib.crc32(name.encode())
    return (0.85 + 0.15 * (h % 100) / 100, 0.35 + 0.5 * ((h >> 8) % 100) / 100, 0.1 + 0.2 * ((h >> 16) % 100) / 100)


def _box(ax: Any, x: float, level: int, width: float, label: str, *, px_per_unit: float) -> None:
    ax.add_patch(
        _pyplot().Rectangle(
            (x, level * ROW_HEIGHT),
            width,
            ROW_HEIGHT * 0.95,
            facecolor=_color(label),
            edgecolor="white",
            linewidth=0.8 if width * px_per_unit >= 4 else 0,  # a thin box's border would hide its colour
        )
    )
    if width * px_per_unit >= MIN_LABEL_PX:
        chars = int(width * px_per_unit / 7)
        text = label if len(label) <= chars else label[: max(chars - 3, 1)] + "..."
        ax.text(x + width * 0.01, (level + 0.45) * ROW_HEIGHT, text, va="center", fontsize=8, clip_on=True)


def flame_svg(view: Sites, everything: Sequence[SiteRow], path: Path, title: str) -> Path:
    """A flame-style picture: "all" at the bottom, the libraries above it, each library's functions above it
    (alphabetical, as flame graphs order a level); a box's width is its faults. `everything`: every function
    row (sites.sites(..., n=all))."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(14, 4))
    total = sum(r.faults for r in everything) or 1
    px_per_unit = 14 * 100 * 0.9 / total
    _box(ax, 0, 0, total, f"all ({view.faults} faults, {duration(view.total_ns)})", px_per_unit=px_per_unit)
    x = 0.0
    for library in sorted({r.library for r in everything}):
        rows = sorted((r for r in everything if r.library == library), key=lambda r: r.function)
        faults = sum(r.faults for r in rows)
        _box(ax, x, 1, faults, f"{library} ({faults})", px_per_unit=px_per_unit)
        inner = x
        for r in rows:
            _box(ax, inner, 2, r.faults, f"{r.function} ({r.faults}, {duration(r.total_ns)})", px_per_unit=px_per_unit)
            inner += r.faults
        x += faults
    ax.set_xlim(0, total)
    ax.set_ylim(0, 3 * ROW_HEIGHT)
    ax.set_yticks([0.5, 1.5, 2.5], ["all", "library", "function"])
    ax.set_xlabel("faults")
    ax.set_title(f"{title}\nfault sites: library -> function, width = faults", fontsize=10)
    fig.tight_layout()
    with plt.rc_context({"svg.fonttype": "none"}):  # names as text: searchable, selectable
        fig.savefig(path)
    plt.close(fig)
    return path
