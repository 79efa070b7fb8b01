"""The module check's comparisons of a user's module output with the oracle (pfharness's own recorder, loaded
in the same step for the same pid): pure functions of the module's lines and the oracle's faults.

- compare_a: the addresses a pf_probe_A printed against the faults that really happened, by page;
- compare_plots: the plot(s) of a pf_probe_B or C (check/plot_find.py) against 30 x 70 and the oracle's plot;
- compare_c: C's faults split by code, data and other against the oracle's split.

Each returns a Comparison (figures, and the findings they show as Items: finding, severity, message,
evidence); the check turns the Items into its CheckFindings."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from ..results import folded
from ..results import output_format as fmt
from ..results.run_dir import SavedRecords
from .findings import Finding
from .oracle_faults import CLASSES, PAGE_SHIFT, Comparison, Item, OracleFault
from .plot_find import FoundPlot, agreement, find_plots, strip_prefixes

#: A user-space address on x86-64: below the 47-bit canonical limit, above page 0.
USER_MIN, USER_MAX = 0x1000, 0x7FFF_FFFF_FFFF
MISS_LIMIT = 0.9  # a-misses-faults under this fraction of the real pages printed
EXTRA_LIMIT = 0.1  # a-extra-faults over this fraction of the printed pages not real (and at least EXTRA_MIN)
EXTRA_MIN = 3
THREAD_LIMIT = 0.5  # a-misses-threads under this fraction of the other threads' own pages printed
SPLIT_TOLERANCE = 0.1  # c-split: a class's count off by more than this fraction (and more than 2 faults)
_HEX = re.compile(r"(?<![0-9A-Za-z_])(0[xX][0-9a-fA-F]{1,16}|[0-9a-fA-F]{8,16})(?![0-9A-Za-z_])")
_TIMESTAMP = re.compile(r"^\s*\[\s*\d+\.\d+\]\s?")


def printed_address(line: str) -> int | None:
    """The first value of `line` that can be a user address: 0x-prefixed hex, or bare hex of 8 or more digits
    with a letter a-f in it or 12 digits (a bare decimal count or time is not taken for an address)."""
    for m in _HEX.finditer(_TIMESTAMP.sub("", line)):
        text = m.group(1)
        bare = not text.lower().startswith("0x")
        if bare and not (re.search(r"[a-fA-F]", text) or len(text) >= 12):
            continue
        value = int(text, 16)
        if USER_MIN <= value <= USER_MAX:
            return value
    return None


def compare_a(
    lines: Sequence[str], faults: Sequence[OracleFault], tgid: int, tids: Collection[int] | None = None
) -> Comparison:
    """A's printed addresses against the oracle's faults of `tgid`, by page. `tids`: the target's threads (None:
    every tid the oracle saw in the tgid); faults of other tgids (follow=1) tell other processes' pages apart."""
    addresses = [a for line in lines if (a := printed_address(line)) is not None]
    printed = {a >> PAGE_SHIFT for a in addresses}
    own = [f for f in faults if f.tgid == tgid]
    real = {f.page for f in own}
    others = {f.page for f in faults if f.tgid != tgid} - real
    matched, missed, extra = printed & real, real - printed, printed - real
    main_pages = {f.page for f in own if f.tid in (0, tgid)}
    thread_pages = {f.page for f in own if f.tid not in (0, tgid) and (tids is None or f.tid in tids)} - main_pages
    figures = {
        "printed_lines": len(addresses),
        "printed_pages": len(printed),
        "real_faults": len(own),
        "real_pages": len(real),
        "matched": len(matched),
        "missed": len(missed),
        "extra": len(extra),
        "extra_other_processes": len(extra & others),
        "thread_pages": len(thread_pages),
        "thread_pages_printed": len(thread_pages & printed),
    }
    shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in figures.items())
    items = [Item(Finding.A_ADDRESSES, "info", f"pages: {shown}")]
    misses_threads = bool(thread_pages) and len(thread_pages & printed) < THREAD_LIMIT * len(thread_pages)
    # Pages missed because the module filters one thread are that finding's, not a-misses-faults's too.
    counted = real - thread_pages if misses_threads else real
    if counted and len(matched & counted) < MISS_LIMIT * len(counted):
        items.append(_misses(missed & counted, len(counted), len(matched & counted)))
    if len(extra) >= EXTRA_MIN and len(extra) > EXTRA_LIMIT * len(printed):
        items.append(_extra(extra, others, len(printed)))
    if misses_threads:
        items.append(
            Item(
                Finding.A_MISSES_THREADS,
                "error",
                f"{len(thread_pages - printed)} of the {len(thread_pages)} pages only the target's other threads "
                "faulted in were not printed: compare current->tgid (the process), not current->pid (one thread)",
                _pages(thread_pages - printed),
            )
        )
    return Comparison(figures, tuple(items))


def _pages(pages: Collection[int], most: int = 5) -> tuple[str, ...]:
    return tuple(f"page 0x{p:x}" for p in sorted(pages)[:most])


def _misses(missed: set[int], real: int, matched: int) -> Item:
    return Item(
        Finding.A_MISSES_FAULTS,
        "error",
        f"only {matched} of the {real} pages the target really faulted on were printed ({matched * 100 // real} %): "
        "is the probe on handle_mm_fault, armed before the workload runs, and printing every fault?",
        _pages(missed),
    )


def _extra(extra: set[int], others: set[int], printed: int) -> Item:
    of_others = len(extra & others)
    whose = f" ({of_others} of them other processes' faults)" if of_others else ""
    return Item(
        Finding.A_EXTRA_FAULTS,
        "error",
        f"{len(extra)} of the {printed} printed pages are not the target's faults{whose}: "
        "filter on current->tgid == tpid (and check that tpid is set: the kernel ignores an unknown parameter)",
        _pages(extra),
    )


def compare_plots(
    lines: Sequence[str],
    faults: Sequence[OracleFault],
    tgid: int,
    *,
    expected: int = 1,
    saved: SavedRecords | None = None,
) -> Comparison:
    """B's plot (expected=1) or C's three: found, their size against 30 x 70, a title, axis labels, marks, and
    the agreement of their marks with the oracle's faults (all of them for B; C's by the plot's class). `saved`:
    the oracle's saved records and regions, to draw its folded plot for a plot on a folded scale."""
    plots = find_plots(strip_prefixes(lines))
    own = [f for f in faults if f.tgid == tgid]
    if not plots:
        return Comparison(
            {"plots": 0},
            (
                Item(
                    Finding.PLOT_MISSING, "error", "no plot found in the module's output (a block of equal-width lines)"
                ),
            ),
        )
    chosen = sorted(sorted(plots, key=lambda p: -p.rows)[:expected], key=lambda p: p.first)
    items: list[Item] = []
    figures: dict = {"plots": len(plots), "shown": []}
    clock = (min(f.t_ns for f in own), max(f.t_ns for f in own)) if own else None
    for n, plot in enumerate(chosen):
        cls = plot_class(plot, n, len(chosen)) if expected > 1 else ""
        subset = [f for f in own if f.fault_class == cls] if cls else own
        figures["shown"].append(_plot_figures(plot, subset, cls, folded_rows(saved, tgid, cls), clock))
        items += _plot_items(plot, cls, figures["shown"][-1])
    if len(chosen) < expected:
        items.append(
            Item(Finding.PLOT_MISSING, "error", f"{len(chosen)} plot(s) found, {expected} expected (one per class)")
        )
    return Comparison(figures, tuple(items))


def folded_rows(saved: SavedRecords | None, tgid: int, cls: str) -> list[list[str]]:
    """The oracle's own folded plots of its saved records of `tgid` (of class `cls`, if any), as a module draws
    them: on the class's own clock, and (a class) on the clock of all the records, as pf_probe_C draws its three;
    none without saved records."""
    if saved is None:
        return []
    everything = [r for r in saved.records if r.tgid == tgid]
    records = everything
    if cls:
        index = CLASSES.index(cls)
        shift, mask = fmt.RECORD_FLAG_CLASS_SHIFT, fmt.RECORD_FLAG_CLASS_MASK
        records = [r for r in everything if (r.flags & mask) >> shift == index]
    if not records:
        return []
    clock = folded.time_extent(everything)
    clocks = (None, clock) if cls else (None,)
    return [folded.folded_rows(records, saved.regions, c)[0] for c in clocks]


def _plot_figures(
    plot: FoundPlot,
    faults: Sequence[OracleFault],
    cls: str,
    oracle_rows: list[list[str]],
    clock: tuple[int, int] | None = None,
) -> dict:
    agree = agreement(plot, faults, oracle_rows, clock if cls else None)
    return {
        "class": cls or "all",
        "first_line": plot.first,
        "rows": plot.rows,
        "columns": plot.columns,
        "title": plot.title,
        "labels": list(plot.labels),
        "marks": plot.marks,
        "oracle_faults": len(faults),
        "agreement": None if agree is None else agree.figures(),
    }


def _plot_items(plot: FoundPlot, cls: str, figures: dict) -> list[Item]:
    which = f"the {cls} plot" if cls else "the plot"
    items = []
    if (plot.rows, plot.columns) != (fmt.PLOT_ROWS, fmt.PLOT_COLS):
        items.append(
            Item(
                Finding.PLOT_SIZE,
                "error",
                f"{which} is {plot.rows} rows x {plot.columns} columns; the assignment asks for "
                f"{fmt.PLOT_ROWS} rows (y: page) x {fmt.PLOT_COLS} columns (x: time)",
            )
        )
    if plot.title is None:
        items.append(Item(Finding.PLOT_NO_TITLE, "warning", f"{which} has no title line above it"))
    if not plot.labels:
        items.append(
            Item(Finding.PLOT_NO_LABELS, "warning", f"{which} has no axis labels (page numbers on rows, time below)")
        )
    agree = figures["agreement"]
    if agree is not None:
        items.append(
            Item(
                Finding.PLOT_AGREEMENT,
                "info",
                f"{which}: {agree['student_in_oracle']:.0%} of its marked cells are marked in the oracle's plot of "
                f"the same faults, {agree['oracle_in_student']:.0%} of the oracle's in it (y scale from "
                f"{agree['y_scale']})",
            )
        )
    return items


_CLASS_WORDS = (("code", r"\b(code|text)\b"), ("data", r"\b(data|bss)\b"), ("other", r"\b(other|stack|heap|mmap)\b"))
_PART = re.compile(r"\b(\d+)\s+of\s+\d+\s+(?:page\s+)?(?:faults?|recorded)\b", re.I)
_COUNT = re.compile(r"\bfaults?\s*[=:]\s*(\d+)|(\d+)\s+(?:page\s+)?(?:faults?|recorded)\b", re.I)


def plot_class(plot: FoundPlot, n: int, of: int) -> str:
    """The class a plot of C is about: named in its title, else by its place (code, data, other)."""
    title = (plot.title or "").lower()
    named = [key for key, word in _CLASS_WORDS if re.search(word, title)]
    if len(named) == 1:
        return named[0]
    return CLASSES[n] if of == len(CLASSES) else ""


def printed_count(plot: FoundPlot) -> int | None:
    """The fault count the module printed with a plot (its title or the lines after it), if any."""
    texts = (plot.title or "", *plot.after)
    part = [int(m.group(1)) for text in texts if (m := _PART.search(text))]  # "2 of 463 recorded": the class's 2
    found = part or [int(a or b) for text in texts for a, b in _COUNT.findall(text)]
    return max(found) if found else None


def compare_c(lines: Sequence[str], faults: Sequence[OracleFault], tgid: int) -> Comparison:
    """C's faults by class (each plot's printed count, else its marks) against the oracle's split."""
    plots = find_plots(strip_prefixes(lines))
    chosen = sorted(sorted(plots, key=lambda p: -p.rows)[: len(CLASSES)], key=lambda p: p.first)
    oracle = {c: sum(1 for f in faults if f.tgid == tgid and f.fault_class == c) for c in CLASSES}
    student: dict[str, int | None] = dict.fromkeys(CLASSES)
    source = {}
    for n, plot in enumerate(chosen):
        cls = plot_class(plot, n, len(chosen))
        if cls and student[cls] is None:
            count = printed_count(plot)
            student[cls], source[cls] = (count, "printed") if count is not None else (plot.marks, "marks")
    figures = {"oracle": oracle, "module": student, "source": source}
    shown = ", ".join(f"{c} {student[c]} (oracle {oracle[c]})" for c in CLASSES)
    off = [
        c
        for c in CLASSES
        if source.get(c) == "printed" and abs((student[c] or 0) - oracle[c]) > max(2, SPLIT_TOLERANCE * oracle[c])
    ]
    severity = "warning" if off else "info"
    why = f": {', '.join(off)} differ from the oracle's by more than {SPLIT_TOLERANCE:.0%}" if off else ""
    return Comparison(figures, (Item(Finding.C_SPLIT, severity, f"faults by class: {shown}{why}"),))
