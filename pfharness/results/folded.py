"""The 30 x 70 plot of saved records, drawn exactly as the modules draw it (FOLDED_PLOT_SPEC: folded or linear).

Pure functions, integer arithmetic only, so that the module's printed rows and these are equal for the
same records and region table (a VM test compares them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import output_format as fmt
from .records_file import FaultRecord, Region

SCALES = ("folded", "linear")
MAX_BANDS = fmt.MAX_BANDS
NAME_MAX = fmt.BAND_NAME_MAX  # a band's name beside the plot: cut to this many characters
UNKNOWN_REGION = fmt.BAND_NONE_NAME  # the band of faults with no region (the module's table was full)


@dataclass(frozen=True)
class Band:
    """A range of pages that gets rows of its own in a folded plot."""

    pmin: int  # lowest page with a fault
    pmax: int  # highest page with a fault
    faults: int
    name: str  # its label: its members' names, the program's first, then by faults (band_label())
    rows: int = 0  # rows given to it (0 until assigned)


@dataclass(frozen=True)
class PlotText:
    """One plot as text: every line from BEGIN to END, and the parts tests and pictures want."""

    lines: list[str]  # the plot as the module prints it (prefix stripped)
    rows: list[str]  # the PLOT_ROWS row lines, top first
    bands: list[Band]  # folded: bottom band first; linear: []
    faults: int
    t_span_ns: int


def scale_to_cell(value: int, lo: int, hi: int, cells: int) -> int:
    """The module's scale_to_cell(): equal bins over [lo, hi]; hi goes into the last; lo == hi: the middle."""
    span = hi - lo
    if span == 0:
        return (cells - 1) // 2
    return min((value - lo) * cells // span, cells - 1)


def cell_mark(n: int) -> str:
    for low, mark in reversed(fmt.CELL_MARKS):
        if n >= low:
            return mark
    return " "


def hex_label(page: int) -> str:
    """The kernel's "%#llx": 0 prints as "0x0" (lib/vsprintf.c, number(), writes "0x" for base 16 even for zero,
    where libc prints "0"; tests/test_plot_equal.py, case "bottom of the address space")."""
    return f"{page:#x}"


def clean_name(name: str) -> str:
    """A region name as the module prints it: printable ASCII but blank (0x21..0x7e), anything else '?'."""
    return "".join(c if "\x21" <= c <= "\x7e" else "?" for c in name) or "?"


@dataclass
class _Member:
    pmin: int
    pmax: int
    faults: int
    name: str
    key: int  # the region index (REGION_NONE for the "?" band)
    program: bool  # the traced program's own file: a region of kind code or data

    def order(self) -> tuple[bool, int, int, int]:
        """The order members are named in a label (the module's plot_member_cmp())."""
        return (not self.program, -self.faults, self.pmin, self.key)


def band_label(names: Iterable[str]) -> str:
    """A band's label from its members' names in label order: the distinct names joined by BAND_NAME_SEPARATOR
    while the label stays within NAME_MAX - 1 characters, then BAND_MORE if one was left out (a first name too
    long alone: its first NAME_MAX - 1 characters and BAND_MORE)."""
    shown: list[str] = []
    length = 0
    for name in names:
        if name in shown:
            continue
        added = len(name) + (1 if shown else 0)
        if len(shown) == NAME_MAX // 2 + 1 or length + added > NAME_MAX - 1:
            kept = shown or [name[: NAME_MAX - 1]]
            return fmt.BAND_NAME_SEPARATOR.join(kept) + fmt.BAND_MORE
        shown.append(name)
        length += added
    return fmt.BAND_NAME_SEPARATOR.join(shown)


def make_bands(records: Sequence[FaultRecord], regions: Sequence[Region]) -> list[Band]:
    """Steps 1 and 2: one band per region with faults, overlaps merged, at most MAX_BANDS (closest gaps first)."""
    return _bands_and_members(records, regions)[0]


def _bands_and_members(records: Sequence[FaultRecord], regions: Sequence[Region]) -> tuple[list[Band], dict[int, int]]:
    """The bands, and which band each region (REGION_NONE: the "?" band) went into."""
    per_region: dict[int, list[int]] = {}  # region -> [pmin, pmax, faults]
    known = len(regions)
    for _t, address, _tgid, index, *_ in records:
        page = address >> 12
        # No region (the table was full), or an index the table does not hold: the "?" band.
        region = index if index < known else fmt.REGION_NONE
        entry = per_region.get(region)
        if entry is None:
            per_region[region] = [page, page, 1]
        else:
            if page < entry[0]:
                entry[0] = page
            elif page > entry[1]:
                entry[1] = page
            entry[2] += 1
    singles = []
    for index, (pmin, pmax, faults) in per_region.items():
        name = clean_name(regions[index].name) if index < known else UNKNOWN_REGION
        program = index < known and regions[index].kind in ("code", "data")
        singles.append((pmin, index, _Member(pmin, pmax, faults, name, index, program)))
    singles.sort(key=lambda s: (s[0], s[1]))
    groups: list[list[_Member]] = []
    for _, _, member in singles:
        if groups and member.pmin <= max(m.pmax for m in groups[-1]):
            groups[-1].append(member)
        else:
            groups.append([member])
    while len(groups) > MAX_BANDS:
        gaps = [min(m.pmin for m in groups[i + 1]) - max(m.pmax for m in groups[i]) for i in range(len(groups) - 1)]
        i = gaps.index(min(gaps))
        groups[i : i + 2] = [groups[i] + groups[i + 1]]
    bands = []
    band_of = {m.key: i for i, group in enumerate(groups) for m in group}
    for group in groups:
        bands.append(
            Band(
                pmin=min(m.pmin for m in group),
                pmax=max(m.pmax for m in group),
                faults=sum(m.faults for m in group),
                name=band_label(m.name for m in sorted(group, key=_Member.order)),
            )
        )
    return bands, band_of


def assign_rows(bands: Sequence[Band], total: int = fmt.PLOT_ROWS) -> list[Band]:
    """Step 3: one row each, then one at a time to the largest faults per row (never more rows than pages)."""
    rows = [1] * len(bands)
    for _ in range(total - len(bands)):
        best = -1
        for i, b in enumerate(bands):
            if rows[i] >= b.pmax - b.pmin + 1:
                continue
            if best < 0 or b.faults * rows[best] > bands[best].faults * rows[i]:
                best = i
        if best < 0:
            break
        rows[best] += 1
    return [Band(b.pmin, b.pmax, b.faults, b.name, n) for b, n in zip(bands, rows, strict=True)]


def time_extent(records: Sequence[FaultRecord], clock: tuple[int, int] | None = None) -> tuple[int, int]:
    """The plot's time axis: from the first to the last of `records`, widened to `clock` (the first and the last
    fault of the whole run: every plot of pf_probe_C shares it, the module's plot_clock())."""
    times = [r[0] for r in records]
    if clock is None:
        return min(times), max(times)
    return min(*times, clock[0]), max(*times, clock[1])


def _grid() -> list[list[int]]:
    return [[0] * fmt.PLOT_COLS for _ in range(fmt.PLOT_ROWS)]


def _row_line(label: str, border: str, cells: Iterable[int], tail: str = "") -> str:
    marks = "".join(cell_mark(n) for n in cells)
    # A label longer than LABEL_WIDTH (a page at 2**48 or above) is cut at the end, as the module's put_text().
    return f"{label[: fmt.LABEL_WIDTH]:>{fmt.LABEL_WIDTH}} {border}{marks}|{tail}"


def folded_rows(
    records: Sequence[FaultRecord], regions: Sequence[Region], clock: tuple[int, int] | None = None
) -> tuple[list[str], list[Band]]:
    """Steps 1-5: the PLOT_ROWS row lines (top first) and the bands (bottom first); `clock`: time_extent()."""
    unassigned, band_of = _bands_and_members(records, regions)
    bands = assign_rows(unassigned)
    t_min, t_max = time_extent(records, clock)
    grid = _grid()
    base = []  # the row (from the bottom) where each band starts
    used = 0
    for b in bands:
        base.append(used)
        used += b.rows
    # scale_to_cell() inlined (a million records): the same integer arithmetic, per band its
    # (pmin, span, rows, the grid row of its bottom row, the middle cell for a span of 0).
    cols, t_span, last_col = fmt.PLOT_COLS, t_max - t_min, fmt.PLOT_COLS - 1
    mid_col = (cols - 1) // 2
    geometry = [
        (b.pmin, b.pmax - b.pmin, b.rows, fmt.PLOT_ROWS - 1 - base[i], (b.rows - 1) // 2) for i, b in enumerate(bands)
    ]
    known, none = len(regions), fmt.REGION_NONE
    for t, address, _tgid, region, *_ in records:
        pmin, span, rows, bottom, mid = geometry[band_of[region if region < known else none]]
        if span:
            within = ((address >> 12) - pmin) * rows // span
            if within >= rows:
                within = rows - 1
        else:
            within = mid
        if t_span:
            col = (t - t_min) * cols // t_span
            if col > last_col:  # noqa: PLR1730 - not min(): a call per record costs a million calls
                col = last_col
        else:
            col = mid_col
        grid[bottom - within][col] += 1
    lines = [_row_line("", "|", [0] * fmt.PLOT_COLS) for _ in range(fmt.PLOT_ROWS - used)]
    for i in reversed(range(len(bands))):
        b = bands[i]
        for k in reversed(range(b.rows)):  # k: row within the band, from its bottom
            row = fmt.PLOT_ROWS - 1 - (base[i] + k)
            top, bottom = k == b.rows - 1, k == 0
            label = hex_label(b.pmin) if bottom else hex_label(b.pmax) if top else ""
            border = fmt.BAND_CUT if top and i != len(bands) - 1 else "|"
            tail = " " + (b.name if top else fmt.BAND_CONTINUED)
            lines.append(_row_line(label, border, grid[row], tail))
    return lines, bands


def linear_rows(records: Sequence[FaultRecord], clock: tuple[int, int] | None = None) -> list[str]:
    """Today's plot: pages scaled linearly from the lowest to the highest (labels on rows 0, 10, 20, 29)."""
    t_min, t_max = time_extent(records, clock)
    p_min = min(r.address >> 12 for r in records)
    p_max = max(r.address >> 12 for r in records)
    grid = _grid()
    for r in records:
        row = fmt.PLOT_ROWS - 1 - scale_to_cell(r.address >> 12, p_min, p_max, fmt.PLOT_ROWS)
        grid[row][scale_to_cell(r.t_ns, t_min, t_max, fmt.PLOT_COLS)] += 1
    lines = []
    labelled = (0, fmt.PLOT_ROWS - 1, fmt.PLOT_ROWS // 3, 2 * fmt.PLOT_ROWS // 3)
    for row in range(fmt.PLOT_ROWS):
        label = ""
        if row == 0:
            label = hex_label(p_max)
        elif row in labelled:
            label = hex_label(p_min + (p_max - p_min) * (fmt.PLOT_ROWS - 1 - row) // fmt.PLOT_ROWS)
        lines.append(_row_line(label, "|", grid[row]))
    return lines


def time_unit(t_span_ns: int) -> str:
    """The unit of a plot's time axis: "s" from PLOT_SECONDS_S on (34017.024 ms reads as 34.017 s), else "ms"."""
    return "s" if t_span_ns >= fmt.PLOT_SECONDS_S * 1_000_000_000 else "ms"


def format_time(ns: int, unit: str = "ms") -> str:
    """`ns` in `unit` ("ms" or "s") with three decimals, as the module's format_time()."""
    per = 1_000_000_000 if unit == "s" else 1_000_000
    return f"{ns // per}.{ns % per // (per // 1000):03d}"


def axis_lines(t_span_ns: int) -> list[str]:
    """The X axis, the times under it, the caption and the legend, as the module prints them."""
    width = fmt.LABEL_WIDTH + 2 + fmt.PLOT_COLS
    rule = " " * (fmt.LABEL_WIDTH + 1) + "+" + "-" * fmt.PLOT_COLS + "+"
    times = [" "] * width
    unit = time_unit(t_span_ns)
    first, middle, last = (format_time(ns, unit) for ns in (0, t_span_ns // 2, t_span_ns))
    for text, pos in (
        (first, fmt.LABEL_WIDTH + 2),
        (middle, fmt.LABEL_WIDTH + 2 + fmt.PLOT_COLS // 2 - len(middle) // 2),
        (last, width - len(last)),
    ):
        for k, c in enumerate(text):
            if 0 <= pos + k < width:
                times[pos + k] = c
    caption = " " * (fmt.LABEL_WIDTH + 2 + fmt.PLOT_COLS // 2 - 16) + f" time since the first fault ({unit})"
    return [rule, "".join(times), caption, fmt.legend()]


def band_line(index: int, band: Band) -> str:
    return fmt.LINES["band"].template.format(
        index=index,
        name=band.name,
        pmin=hex_label(band.pmin),
        pmax=hex_label(band.pmax),
        rows=band.rows,
        faults=band.faults,
    )


def draw(
    records: Sequence[FaultRecord],
    regions: Sequence[Region],
    *,
    scale: str = "folded",
    pid: int = 0,
    comm: str = "",
    plot_class: str = "all",
    class_title: str = "",
    clock: tuple[int, int] | None = None,
) -> PlotText:
    """The whole plot of `records` (at least one) as the module prints it, from BEGIN PLOT to END PLOT.
    `clock`: the first and the last fault of the run, when `records` are one class of it (pf_probe_C)."""
    if scale not in SCALES:
        raise ValueError(f"scale {scale!r}: use folded or linear")
    if not records:
        raise ValueError("a plot needs at least one record")
    t_min, t_max = time_extent(records, clock)
    addresses = [r[1] for r in records]
    page_min, page_max = min(addresses) >> 12, max(addresses) >> 12
    if scale == "folded":
        rows, bands = folded_rows(records, regions, clock)
    else:
        rows, bands = linear_rows(records, clock), []
    title_class = f", {class_title}" if class_title else ""
    lines = [
        fmt.LINES["plot_begin"].template.format(pid=pid, comm=comm, plot_class=plot_class, scale=scale),
        f"Page faults of process {pid} ({comm}){title_class}: virtual page number over time",
        f"{'page (hex)':>{fmt.LABEL_WIDTH}}",
        *rows,
        *axis_lines(t_max - t_min),
        *([fmt.folded_legend()] if scale == "folded" else []),
        *[band_line(i, b) for i, b in enumerate(bands)],
        fmt.LINES["plot_summary"].template.format(
            pid=pid,
            comm=comm,
            plot_class=plot_class,
            faults=len(records),
            t_span_ns=t_max - t_min,
            page_min=hex_label(page_min),
            page_max=hex_label(page_max),
            outside=0,
            scale=scale,
        ),
        fmt.LINES["plot_end"].template,
    ]
    return PlotText(lines=lines, rows=rows, bands=bands, faults=len(records), t_span_ns=t_max - t_min)
