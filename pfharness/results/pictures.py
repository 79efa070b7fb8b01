"""Pictures of a run's faults (PNG, SVG) with matplotlib, the optional extra `pfharness[plot]`.

Time on X; on Y the page axis folded as in the ASCII plot (results/folded.py: the same bands, each as
tall as its rows there), drawn broken-axis style: bands stacked with a gap and break marks between them,
each labelled with its first and last page and its name. Marks are coloured by region (or by process),
translucent so that dense places look dense.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SetupError, UsageError
from . import folded
from . import picture_style as style
from .records_file import FaultRecord, ProcessEntry, Region

FORMATS = ("png", "svg")
WIDTH_IN, HEIGHT_IN, DPI = 12.0, 7.5, 100  # 1200 x 750 pixels
GAP = 0.8  # the space between two bands, in rows
LEGEND_MAX = len(style.PALETTE)  # groups named in the legend, each with a colour of its own; the rest are grey
LEGEND_MARGIN = 0.005  # between the legend and the picture's right edge, in picture widths
LABEL_GAP_PX = 8  # at least this between a band's name and the legend
BAND_LABEL_GID = "band-label"  # the gid of a band's name beside the axes (to find them again)
LEGEND_NAME_MAX = 30  # a region's name in the legend, at most (longer ones end in "...")
PANEL_ROW_PX = 14  # build_panels: pixels per row of the ASCII plot
PANEL_MIN_ROWS = 1.7  # build_panels: a band at least this many rows tall (its two page labels apart)
PANEL_RIGHT = 0.6  # build_panels: the axes end here; band names, then each panel's legend, to the right
PANEL_LEGEND_X = 0.79
#: Under every picture with a folded axis: what it is, in one line.
FOLDED_CAPTION = (
    "Folded page axis: only the address ranges with faults are drawn, as bands (named at the right, with their "
    "faults); break marks and dotted lines: empty address space cut out."
)
TITLE_MAX_CHARS = 112  # the longest first title line that fits the picture's width (measured: 123 was cut)
INSTALL_HINT = "pip install 'pfharness[plot]'"


def _pyplot() -> Any:
    try:
        import matplotlib  # noqa: PLC0415 - optional: only pictures need it

        matplotlib.use("Agg")
        # Titles and labels carry the workload's command and names: a '$' in them is text, not TeX math.
        matplotlib.rcParams["text.parse_math"] = False
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        raise SetupError(f"pictures need matplotlib, which is not installed: {INSTALL_HINT}") from None
    return plt


def picture_format(path: Path, wanted: str) -> str:
    """Check that `path` ends in .png or .svg as asked (a UsageError otherwise)."""
    if path.suffix.lower() != f".{wanted}":
        raise UsageError(f"--{wanted} {path}: the file name must end in .{wanted}")
    return wanted


@dataclass(frozen=True)
class Picture:
    """What to draw."""

    records: Sequence[FaultRecord]
    regions: Sequence[Region]
    title: str  # first line: the command and the kernel
    subtitle: str = ""  # second line: what is shown
    scale: str = "folded"  # or "linear"
    color_by: str = "region"  # or "pid"
    processes: Sequence[ProcessEntry] = ()
    t0_ns: int | None = None  # the run's first fault (a selection's times count from it); None: the first shown
    mark: str = ""  # with t0_ns: a line at the first shown fault, labelled with this ("first fault of ...")


@dataclass(frozen=True)
class _Layout:
    """Where each band sits on the picture's Y axis (folded): bottom y and height, in rows."""

    bands: list[folded.Band]
    bottoms: list[float]
    heights: list[float]  # its rows in the ASCII plot, or min_rows when that is more

    @property
    def top(self) -> float:
        return self.bottoms[-1] + self.heights[-1]


def _layout(records: Sequence[FaultRecord], regions: Sequence[Region], min_rows: float = 1.0) -> _Layout:
    """The bands, each as tall as its rows in the ASCII plot but at least `min_rows` (panels: room for the labels
    of its first and last page and its name), GAP apart."""
    bands = folded.assign_rows(folded.make_bands(records, regions))
    bottoms, heights, y = [], [], 0.0
    for b in bands:
        bottoms.append(y)
        heights.append(max(float(b.rows), min_rows if b.pmax > b.pmin else min(min_rows, 1.0)))
        y += heights[-1] + GAP
    return _Layout(bands, bottoms, heights)


def _groups(picture: Picture) -> tuple[list[Any], list[str]]:
    """Per record its group key, and the group keys in legend order (most faults first)."""
    if picture.color_by == "pid":
        keys: list[Any] = [r.tgid for r in picture.records]
    else:
        names = [g.name for g in picture.regions]
        keys = [names[r.region] if r.region < len(names) else folded.UNKNOWN_REGION for r in picture.records]
    order = [k for k, _ in Counter(keys).most_common()]
    return keys, order


def _label(picture: Picture, key: Any, count: int) -> str:
    if picture.color_by == "pid":
        comm = next((p.comm for p in picture.processes if p.tgid == key), "")
        return f"pid {key}{f' ({comm})' if comm else ''}: {count}"
    name = str(key)
    if len(name) > LEGEND_NAME_MAX:  # a long file name would run off the picture's right edge
        name = name[: LEGEND_NAME_MAX - 3] + "..."
    return f"{name}: {count}"


def _check(picture: Picture) -> None:
    if picture.scale not in folded.SCALES:
        raise UsageError(f"--scale {picture.scale}: use folded or linear")
    if picture.color_by not in ("region", "pid"):
        raise UsageError(f"--color-by {picture.color_by}: use region or pid")
    if not picture.records:
        raise UsageError("nothing to draw: no faults were selected")


def _draw_on(ax: Any, picture: Picture, min_rows: float = 1.0) -> float:
    """The marks of `picture` on `ax`, its page axis and its time axis; returns the marker size."""
    plt = _pyplot()
    import numpy as np  # noqa: PLC0415 - comes with matplotlib

    records = picture.records
    n = len(records)
    t0 = min(r.t_ns for r in records) if picture.t0_ns is None else picture.t0_ns
    t = np.fromiter((r.t_ns - t0 for r in records), dtype=np.float64, count=n) / 1e9
    pages = np.fromiter((r.address >> 12 for r in records), dtype=np.float64, count=n)
    layout = None
    if picture.scale == "folded":
        layout = _layout(records, picture.regions, min_rows)
        pmin = np.array([b.pmin for b in layout.bands], dtype=np.float64)
        span = np.array([b.pmax - b.pmin + 1 for b in layout.bands], dtype=np.float64)
        rows = np.array(layout.heights, dtype=np.float64)
        bottom = np.array(layout.bottoms)
        which = np.searchsorted(pmin, pages, side="right") - 1
        y = bottom[which] + (pages - pmin[which] + 0.5) / span[which] * rows[which]
    else:
        which = np.zeros(n, dtype=np.int64)
        y = pages
    size = _scatter(ax, picture, t, y, which)
    if layout is not None:
        _draw_bands(ax, layout)
    else:
        ax.set_ylabel("virtual page number (linear)")
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _pos: f"{int(v):#x}"))
        ax.tick_params(axis="y", labelsize=7)
        for label in ax.get_yticklabels():
            label.set_family("monospace")
    _time_axis(ax, picture, t)
    return size


def build_figure(picture: Picture) -> Any:
    """The matplotlib Figure of `picture` (tests read its text objects)."""
    _check(picture)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    fig.subplots_adjust(left=0.1, right=0.68, top=0.9, bottom=0.09)
    size = _draw_on(ax, picture)
    title = picture.title + (f"\n{picture.subtitle}" if picture.subtitle else "")
    ax.set_title(title, fontsize=11)
    legend = _legend(fig, ax, picture, size)
    _fit_band_labels(fig, ax, legend)
    if picture.scale == "folded":
        folded_caption(fig)
    return fig


def build_panels(panels: Sequence[Picture], title: str) -> Any:
    """One figure of several pictures stacked on one time axis (pf_probe_C's code, data and other segments):
    each panel its own folded page axis, named by its subtitle, with its own legend of regions at the right;
    every panel's t0_ns should be the same. Rows are PANEL_ROW_PX tall and a band at least PANEL_MIN_ROWS, so
    that no band's page labels or name run into its neighbour's."""
    for picture in panels:
        _check(picture)
    plt = _pyplot()
    px = [_panel_px(p) for p in panels]
    head, foot, title_px = 0.75 * DPI, 0.8 * DPI, 0.3 * DPI  # the title; the time axis and the caption
    height_px = head + foot + sum(px) + title_px * len(panels)
    fig = plt.figure(figsize=(WIDTH_IN, height_px / DPI), dpi=DPI)
    axes: list[Any] = []
    y = height_px - head
    for picture, h in zip(panels, px, strict=True):
        y -= title_px + h
        box = (0.1, y / height_px, PANEL_RIGHT - 0.1, h / height_px)
        ax = fig.add_axes(box, sharex=axes[0] if axes else None)
        axes.append(ax)
        size = _draw_on(ax, picture, PANEL_MIN_ROWS)
        ax.set_title(picture.subtitle, fontsize=9, loc="left")
        ax.set_ylabel("")
        legend = _legend(fig, ax, picture, size, anchor=(PANEL_LEGEND_X, (y + h) / height_px), loc="upper left")
        _fit_band_labels(fig, ax, legend)
    for ax in axes[:-1]:
        ax.set_xlabel("")
        ax.tick_params(labelbottom=False)
    lo = min(float(ax.get_xlim()[0]) for ax in axes)
    hi = max(float(ax.get_xlim()[1]) for ax in axes)
    axes[0].set_xlim(lo, hi)
    fig.suptitle(title, fontsize=11, y=1 - 0.25 * DPI / height_px)
    fig.supylabel("virtual page number (folded: the empty address space is cut out)", fontsize=9)
    folded_caption(fig)
    return fig


def _panel_px(picture: Picture) -> float:
    """A panel's height in pixels: its rows (and gaps), or its legend's entries when that is more."""
    layout = _layout(picture.records, picture.regions, PANEL_MIN_ROWS)
    groups = len(_groups(picture)[1])
    entries = min(groups, LEGEND_MAX) + (groups > LEGEND_MAX) + 1  # the title too
    return max((layout.top + GAP) * PANEL_ROW_PX, entries * 15 + 10, 90)


def folded_caption(fig: Any) -> None:
    """The folded axis explained in one line at the foot of the picture."""
    fig.text(
        0.01,
        0.004,
        FOLDED_CAPTION,
        fontsize=8,
        color="#404040",
        ha="left",
        va="bottom",
    )


def _scatter(ax: Any, picture: Picture, t: Any, y: Any, band: Any) -> float:
    """The marks, one scatter per group (legend order); returns the marker size. `band`: each mark's band."""
    import numpy as np  # noqa: PLC0415 - comes with matplotlib
    from matplotlib.colors import to_rgba  # noqa: PLC0415

    n = len(picture.records)
    keys, order = _groups(picture)
    key_index = {k: i for i, k in enumerate(order)}
    group_of = np.fromiter((key_index[k] for k in keys), dtype=np.int64, count=n)
    size = 14.0 if n < 2000 else 6.0 if n < 50000 else 2.0
    counts = Counter(keys)
    for i, key in enumerate(order):
        mask = group_of == i
        shown = i < LEGEND_MAX
        color = style.PALETTE[i] if shown else style.OTHER_COLOR
        label = _label(picture, key, counts[key]) if shown else None
        # Translucent by how many marks the group has in the band: dense places look dense, and a few faults
        # beside thousands still show (one alpha for the whole picture made them vanish on the band background).
        _, where, in_band = np.unique(band[mask], return_inverse=True, return_counts=True)
        rgba = np.tile(to_rgba(color), (int(mask.sum()), 1))
        rgba[:, 3] = np.clip(25 / np.sqrt(in_band[where]), 0.06, 0.9)
        ax.scatter(t[mask], y[mask], s=size, color=rgba, linewidths=0, label=label, rasterized=n > 5000)
    if len(order) > LEGEND_MAX:
        ax.scatter([], [], s=size, color=style.OTHER_COLOR, label=f"{len(order) - LEGEND_MAX} more")
    return size


def _time_axis(ax: Any, picture: Picture, t: Any) -> None:
    """X: seconds on the run's clock; a selection's first fault marked by a dashed line, named in the legend
    (a label beside the line ran over the marks of the first moments)."""
    lo, hi = float(t.min()), float(t.max())
    pad = 0.01 * (hi - lo) + 1e-6
    ax.set_xlim(lo - pad, hi + pad)
    if picture.t0_ns is None:
        ax.set_xlabel("time since the first fault (s)")
        return
    ax.set_xlabel("time since the run's first fault (s)")
    if picture.mark:
        ax.axvline(lo, color="k", linewidth=0.8, linestyle=(0, (4, 2)), zorder=0.5, label=f"{picture.mark}: {lo:.3f} s")


def _legend(
    fig: Any,
    ax: Any,
    picture: Picture,
    size: float,
    *,
    anchor: tuple[float, float] = (1.0 - LEGEND_MARGIN, 0.9),
    loc: str = "upper right",
) -> Any:
    """The legend at the picture's right edge (or at `anchor`, in figure coordinates), outside the axes and
    clear of the band names."""
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i].startswith(picture.mark or "\0"))  # mark last
    legend = ax.legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        title="process" if picture.color_by == "pid" else "region: faults",
        loc=loc,
        bbox_to_anchor=anchor,
        bbox_transform=fig.transFigure,
        fontsize=8,
        title_fontsize=9,
        frameon=False,
        markerscale=2.5 if size < 14 else 1.0,
    )
    for handle in legend.legend_handles if hasattr(legend, "legend_handles") else legend.legendHandles:
        handle.set_alpha(1.0)
    return legend


def _fit_band_labels(fig: Any, ax: Any, legend: Any) -> None:
    """Cut each band's name (keeping its count) to the room between the axes and the legend."""
    renderer = fig.canvas.get_renderer()
    room = legend.get_window_extent(renderer).x0 - LABEL_GAP_PX
    for text in ax.texts:
        if text.get_gid() == BAND_LABEL_GID:
            left = text.get_window_extent(renderer).x0
            count = text.get_text().rpartition("  ")[2]
            style.fit_text(text, renderer, room - left, keep=f"  {count}")


def _draw_bands(ax: Any, layout: _Layout) -> None:
    """Band shading, page labels (the ends and round pages inside a tall band), names beside the axis and
    break marks between bands."""
    ticks, labels = [], []
    top = layout.top
    ax.set_ylim(-GAP / 2, top + GAP / 2)
    px_per_row = ax.get_window_extent().height / (top + GAP)
    for i, (b, y0, height) in enumerate(zip(layout.bands, layout.bottoms, layout.heights, strict=True)):
        y1 = y0 + height
        ax.axhspan(y0, y1, color=style.BAND_BACKGROUNDS[i % 2], zorder=0, linewidth=0)
        span = b.pmax - b.pmin + 1
        pages = [b.pmin, *style.page_ticks(b.pmin, b.pmax, height * px_per_row)]
        pages += [b.pmax] if b.pmax != b.pmin else []
        for page in pages:  # the page's own row position, as the marks: its middle, ends at the band's edges
            ticks.append(y0 if page == b.pmin else y1 if page == b.pmax else y0 + (page - b.pmin + 0.5) / span * height)
            labels.append(folded.hex_label(page))
        ax.text(
            1.01,
            (y0 + y1) / 2,
            f"{b.name}  ({b.faults})",
            transform=ax.get_yaxis_transform(),
            va="center",
            fontsize=8,
            clip_on=False,
            gid=BAND_LABEL_GID,
        )
        if i + 1 < len(layout.bands):  # the address space is cut here: break marks on both spines
            _break_marks(ax, y1 + GAP / 2)
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=7, family="monospace")
    ax.set_ylabel("virtual page number (folded: the empty address space is cut out)")
    ax.tick_params(axis="y", length=2)


def _break_marks(ax: Any, mid: float) -> None:
    for x in (0.0, 1.0):
        ax.plot(
            [x - 0.006, x + 0.006],
            [mid - GAP / 4, mid + GAP / 4],
            transform=ax.get_yaxis_transform(),
            color="k",
            linewidth=1,
            clip_on=False,
        )
    ax.axhline(mid, color=(0.6, 0.6, 0.6), linewidth=0.6, linestyle=(0, (2, 3)))


def write_picture(picture: Picture, path: Path, kind: str) -> Path:
    """Draw `picture` into `path` as PNG or SVG."""
    if kind not in FORMATS:
        raise UsageError(f"picture format {kind!r}: use png or svg")
    return write_figure(build_figure(picture), path, kind)


def write_figure(fig: Any, path: Path, kind: str) -> Path:
    """Save a figure of build_figure or build_panels into `path` as PNG or SVG."""
    plt = _pyplot()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # SVG: text as <text> elements (searchable, selectable), not as drawn glyph paths.
        with plt.rc_context({"svg.fonttype": "none"}):
            fig.savefig(path, format=kind, dpi=DPI)
    except OSError as e:
        raise UsageError(f"cannot write {path} ({e.strerror or e}): pass a writable file name") from None
    finally:
        plt.close(fig)
    return path
