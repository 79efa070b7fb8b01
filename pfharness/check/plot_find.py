"""Find the plot(s) in a module's output, whatever its format, and place the oracle's faults on its grid.

A plot is a block of consecutive lines of equal width (at least MIN_ROWS): the width is where the row's last
'|' is when it has one (a right border, with perhaps a band name after it, as pfharness's own plot), else its
length. Rules ("+-----+") end a block. Its grid is what lies between the border columns every row has ('|' or
'~'), or right of the rows' labels. A title is a line of words just above; axis labels are labels on the
rows (numbers), or short lines above or below naming an axis (time, page, address, ...) or giving numbers."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .oracle_faults import PAGE_SHIFT, OracleFault

MIN_ROWS = 5
SPACE_SHARE = 0.3  # a line with no '|' is a row only when this much of it is blank
WINDOW = 3  # lines looked at above and below a plot for its title and labels
BORDERS = "|~"
_PREFIX = re.compile(r"^(?:<\d>)?\s*(?:\[\s*\d+\.\d+\]\s?)?")
_MODULE_PREFIX = re.compile(r"^[A-Za-z_]\w*: ")
_ROW_LABEL = re.compile(r"^\s*(?:0[xX])?(?=[0-9a-fA-F]*\d)[0-9a-fA-F]+\s+")
_LABEL_WORDS = re.compile(r"\b(time|ms|msec|ns|us|usec|sec|seconds|page|pages|address|addr|vpn|axis)\b", re.I)
_AXIS_LINE = re.compile(r"\baxis\b|^\s*[xyXY]\s*[:=]")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
#: The highest x86-64 user page: 2**44 - 1 with 5-level page tables (56-bit user addresses; e.g. 7.2 in the VM,
#: booted through its decompressor, which turns LA57 on under QEMU's `-cpu max`), 2**35 - 1 with 4-level ones.
USER_PAGE_MAX = (1 << 44) - 1


def strip_prefixes(lines: Sequence[str]) -> list[str]:
    """The lines without the kernel's prefix (a dmesg timestamp) and, when most lines share one, the module's
    "name: " prefix."""
    bare = [_PREFIX.sub("", line.rstrip("\r\n"), count=1) for line in lines]
    prefixes = Counter(m.group() for line in bare if (m := _MODULE_PREFIX.match(line)))
    if prefixes:
        prefix, n = prefixes.most_common(1)[0]
        if n >= 0.8 * len(bare):
            bare = [line[len(prefix) :] if line.startswith(prefix) else line for line in bare]
    return bare


@dataclass(frozen=True)
class FoundPlot:
    """A plot found in a module's output (lines with prefixes stripped)."""

    first: int  # index of its first row in the lines
    grid: tuple[str, ...]  # each row's cells (between its borders), padded to `columns`
    row_labels: tuple[str, ...]  # the label left of each row ("" when none)
    title: str | None  # the line of words above it
    labels: tuple[str, ...]  # its axis labels: "rows" (labelled rows) and the label lines
    after: tuple[str, ...]  # the lines after it, up to the next plot (counts, legends)

    @property
    def rows(self) -> int:
        return len(self.grid)

    @property
    def columns(self) -> int:
        return max((len(r) for r in self.grid), default=0)

    @property
    def marked(self) -> set[tuple[int, int]]:
        """(row, column) of every marked cell."""
        return {(r, c) for r, row in enumerate(self.grid) for c, ch in enumerate(row) if not ch.isspace()}

    @property
    def marks(self) -> int:
        return len(self.marked)


def _is_rule(line: str) -> bool:
    s = line.strip()
    dashes = sum(ch in "-=_+" for ch in s)
    return dashes >= 10 and dashes >= 0.8 * len(s)


def _key(line: str) -> tuple[str, int] | None:
    """What rows of one plot share; None for a line that cannot be a row."""
    bar = line.rfind("|")
    if len(line) < 10 or _is_rule(line) or (bar < 0 and line.count(" ") < SPACE_SHARE * len(line)):
        return None  # short, a rule, or text (a plot's cells are mostly blank; its rows have borders or space)
    return ("bar", bar) if bar >= 0 else ("len", len(line))


def _blocks(lines: Sequence[str]) -> list[tuple[int, int]]:
    """(first, end) of each run of at least MIN_ROWS lines with the same key."""
    found, start = [], 0
    for i in range(1, len(lines) + 1):
        if i == len(lines) or _key(lines[i]) != _key(lines[start]) or _key(lines[start]) is None:
            if _key(lines[start]) is not None and i - start >= MIN_ROWS:
                found.append((start, i))
            start = i
    return found


def _grid(rows: Sequence[str]) -> tuple[list[str], list[str]]:
    """(cells, labels) of each row."""
    width = max(len(r) for r in rows)
    padded = [r.ljust(width) for r in rows]
    bars = [c for c in range(width) if all(r[c] in BORDERS for r in padded)]
    if len(bars) >= 2:
        left, right = bars[0], bars[-1]
        return [r[left + 1 : right] for r in padded], [r[:left].strip() for r in padded]
    label_width = max((len(m.group()) for r in padded if (m := _ROW_LABEL.match(r))), default=0)
    if bars and bars[0] < width / 2:
        label_width = bars[0] + 1
    end = bars[0] if bars and bars[0] >= width / 2 else width
    return [r[label_width:end] for r in padded], [r[:label_width].strip(" |") for r in padded]


def _is_label_line(line: str) -> bool:
    return bool(_AXIS_LINE.search(line)) or (
        len(line.split()) <= 6 and (bool(_LABEL_WORDS.search(line)) or len(_NUMBER.findall(line)) >= 2)
    )


def find_plots(lines: Sequence[str]) -> list[FoundPlot]:
    """Every plot in `lines` (prefixes stripped: strip_prefixes), in order."""
    blocks = _blocks(lines)
    plots = []
    for n, (first, end) in enumerate(blocks):
        next_first = blocks[n + 1][0] - WINDOW if n + 1 < len(blocks) else len(lines)
        cells, row_labels = _grid(lines[first:end])
        above = [ln for ln in lines[max(0, first - WINDOW) : first] if ln.strip() and not _is_rule(ln)][::-1]
        title = next(
            (ln.strip() for ln in above if len(re.findall(r"[A-Za-z]{2,}", ln)) >= 3 and not _AXIS_LINE.search(ln)),
            None,
        )
        after = [ln for ln in lines[end : max(end, next_first)] if ln.strip() and not _is_rule(ln)]
        labels = ["rows"] if sum(1 for lb in row_labels if re.search(r"\d", lb)) >= 2 else []
        labels += [ln.strip() for ln in [*above, *after[:WINDOW]] if ln.strip() != title and _is_label_line(ln)]
        plots.append(
            FoundPlot(
                first,
                tuple(c.ljust(max(map(len, cells))) for c in cells),
                tuple(row_labels),
                title,
                tuple(labels),
                tuple(after),
            )
        )
    return plots


def find_plot(lines: Sequence[str]) -> FoundPlot | None:
    """The largest plot in `lines` (the first of the largest), or None."""
    plots = find_plots(lines)
    return max(plots, key=lambda p: p.rows) if plots else None


@dataclass(frozen=True)
class Agreement:
    """How the marks of a plot agree with the oracle's faults placed on its grid (a cell agrees when the other
    plot marks it or a neighbour: one cell of rounding either way)."""

    student_cells: int
    oracle_cells: int
    student_in_oracle: float  # of the plot's marked cells, the fraction the oracle marks too
    oracle_in_student: float  # and the other way round
    y_scale: str  # where the page scale came from: "row labels" or the faults' own extent (and which way up)

    def figures(self) -> dict:
        return {
            "student_cells": self.student_cells,
            "oracle_cells": self.oracle_cells,
            "student_in_oracle": round(self.student_in_oracle, 3),
            "oracle_in_student": round(self.oracle_in_student, 3),
            "y_scale": self.y_scale,
        }


def _label_value(label: str) -> int | None:
    m = re.fullmatch(r"(?:0[xX])?([0-9a-fA-F]+)", label.strip())
    return None if m is None else int(m.group(1), 16)


def _label_fits(plot: FoundPlot) -> list[tuple[float, float]] | bool | None:
    """(a, b) of page = a + b * row from the row labels, for each reading of them they lie on a straight line
    in: all pages (when none is above USER_PAGE_MAX), all addresses (page = label >> PAGE_SHIFT). The reading is
    the plot's, never a label's: with 5-level page tables a page number can be as large as a 4-level address.
    None without two labels; False when they are on a straight line in neither (a folded or otherwise
    non-linear scale: the oracle cannot be placed)."""
    values = [(r, v) for r, lb in enumerate(plot.row_labels) if lb and (v := _label_value(lb)) is not None]
    if len(values) < 2 or len({v for _, v in values}) < 2:
        return None
    readings = [[(r, v >> PAGE_SHIFT) for r, v in values]]
    if max(v for _, v in values) <= USER_PAGE_MAX:
        readings.insert(0, values)
    fits = [fit for points in readings if (fit := _line(points)) is not None]
    return fits or False


def _line(points: Sequence[tuple[int, int]]) -> tuple[float, float] | None:
    """(a, b) of p = a + b * r through (r, p) `points`, each within a row of it; None when there is none."""
    n = len(points)
    if len({p for _, p in points}) < 2:
        return None
    mr, mp = sum(r for r, _ in points) / n, sum(p for _, p in points) / n
    b = sum((r - mr) * (p - mp) for r, p in points) / (sum((r - mr) ** 2 for r, _ in points) or 1)
    a = mp - b * mr
    if b == 0 or any(abs((p - a) / b - r) > 1.0 for r, p in points):
        return None
    return a, b


def _by_labels(a: float, b: float) -> Callable[[int], float]:
    """The row of a page on the labels' line page = a + b * row."""
    return lambda page: (page - a) / b


def _rows_of(faults: Sequence[OracleFault], rows: int, row_of) -> list[tuple[int, int]]:
    """(time, row) of the faults whose page falls on the grid's rows."""
    out = []
    for f in faults:
        row = row_of(f.page)
        if -0.5 <= row <= rows - 0.5:
            out.append((f.t_ns, min(rows - 1, max(0, math.floor(row + 0.5)))))
    return out


def _place(
    placed: Sequence[tuple[int, int]],
    cols: int,
    extent: tuple[int, int],
    one_time: int,
    shift: tuple[int, int] = (0, 0),
) -> set[tuple[int, int]]:
    """The cells of the (time, row) faults `placed`, time linear over `extent` (their first and last fault's, or the
    run's, which pf_probe_C's three plots share) with its ends moved by `shift` columns; `one_time`: their column
    when the extent is one instant (it cannot be told)."""
    tmin, tmax = extent
    span = tmax - tmin
    if span == 0:
        return {(row, one_time) for _t, row in placed}
    low, high = tmin + shift[0] * span // cols, tmax + shift[1] * span // cols
    width = high - low
    return {(row, min(cols - 1, max(0, (t - low) * cols // width))) for t, row in placed}


#: The oracle's clock and the module's disagree fault by fault by the time between their two handlers on it (the
#: module's runs first: the newest kprobe on an address runs first): about 20 us as a rule, but ms at a run's first
#: faults under TCG (QEMU translates the handlers' code, and a printk's, on first use) and wherever the host
#: deschedules the vCPU between the two. Measured on printk-flood (a pr_info per fault in that window), 39 checks with
#: two VMs on 2 cores: 0.6-5.9 ms at the first fault, at most 3.1 columns of its run. A plot's time axis hangs on
#: its first and last faults, so such a lag there moves every column: each end of the oracle's time extent may move
#: by up to TIME_SLACK columns (of 70), and the placing that agrees best counts.
TIME_SLACK = 8
_SHIFTS: list[tuple[int, int]] = sorted(
    ((a, b) for a in range(-TIME_SLACK, TIME_SLACK + 1) for b in range(-TIME_SLACK, TIME_SLACK + 1)),
    key=lambda s: abs(s[0]) + abs(s[1]),
)


def _placed_best(
    student: set[tuple[int, int]],
    faults: Sequence[OracleFault],
    plot: FoundPlot,
    row_of: Callable[[int], float],
    scale: str,
    *,
    one_time: int,
    clock: tuple[int, int] | None,
) -> Agreement:
    """The agreement of the oracle's faults placed on the plot's grid (_place) over the time extents TIME_SLACK
    allows: the best, the first of equals (the extent itself first, then the nearest)."""
    placed = _rows_of(faults, plot.rows, row_of)
    times = [f.t_ns for f in faults]
    tmin, tmax = min(times), max(times)
    if clock is not None:
        tmin, tmax = min(tmin, clock[0]), max(tmax, clock[1])
    found: list[Agreement] = []
    for shift in _SHIFTS if tmax - tmin >= plot.columns else _SHIFTS[:1]:
        oracle = _place(placed, plot.columns, (tmin, tmax), one_time, shift)
        found.append(Agreement(len(student), len(oracle), _near(student, oracle), _near(oracle, student), scale))
        if found[-1].student_in_oracle == found[-1].oracle_in_student == 1.0:
            break
    return _best(found) or found[0]


def _near(cells: set[tuple[int, int]], other: set[tuple[int, int]]) -> float:
    hits = sum(1 for r, c in cells if any((r + dr, c + dc) in other for dr in (-1, 0, 1) for dc in (-1, 0, 1)))
    return hits / len(cells) if cells else 0.0


def agreement(
    plot: FoundPlot,
    faults: Sequence[OracleFault],
    oracle_rows: Sequence[Sequence[str]] = (),
    clock: tuple[int, int] | None = None,
) -> Agreement | None:
    """The oracle's faults placed on the plot's grid (time linear over their own extent, or over `clock` when given:
    one of C's plots on the run's clock, whichever agrees better, each end free to move by TIME_SLACK columns; pages
    by the row labels when they are linear, read as pages or as addresses, else over the faults' extent, the way up
    that agrees best) against the plot's marks. A plot whose page scale is not linear (folded) is compared with
    `oracle_rows`, the oracle's own folded plots of the same faults (results/folded.py: on their own clock and on the
    run's; no slack), the best of those of the same size; else None, as when there is nothing to compare."""
    student = plot.marked
    if not faults or not student or plot.columns == 0:
        return None
    fits = _label_fits(plot)
    if fits is False:
        return _against_rows(student, plot, oracle_rows)
    candidates: list[tuple[str, Callable[[int], float]]]
    if isinstance(fits, list):
        candidates = [("row labels", _by_labels(a, b)) for a, b in fits]
    elif (low := min(f.page for f in faults)) == (high := max(f.page for f in faults)):
        middle = sorted(r for r, _ in student)[len(student) // 2]  # one page: its row cannot be told; time can
        candidates = [("a single page (rows not compared)", lambda p: middle)]
    else:
        step = (high - low) / (plot.rows - 1)
        candidates = [
            ("the faults' extent, highest page on top", lambda p: (high - p) / step),
            ("the faults' extent, lowest page on top", lambda p: (p - low) / step),
        ]
    one_time = sorted(c for _, c in student)[len(student) // 2]
    return _best(
        [
            _placed_best(student, faults, plot, row_of, scale, one_time=one_time, clock=time)
            for (scale, row_of), time in itertools.product(candidates, (None, clock) if clock else (None,))
        ]
    )


def _best(found: Sequence[Agreement]) -> Agreement | None:
    """The agreement of the placing that agrees best (the first of equals)."""
    best = None
    for a in found:
        if best is None or a.student_in_oracle + a.oracle_in_student > best.student_in_oracle + best.oracle_in_student:
            best = a
    return best


def _against_rows(
    student: set[tuple[int, int]], plot: FoundPlot, oracle_rows: Sequence[Sequence[str]]
) -> Agreement | None:
    found = []
    for rows in oracle_rows:
        cells, _labels = _grid(rows)
        if not cells or (len(cells), max(map(len, cells))) != (plot.rows, plot.columns):
            continue
        oracle = {(r, c) for r, row in enumerate(cells) for c, ch in enumerate(row) if not ch.isspace()}
        scale = "the oracle's folded plot"
        found.append(Agreement(len(student), len(oracle), _near(student, oracle), _near(oracle, student), scale))
    return _best(found)
