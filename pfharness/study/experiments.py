"""The experiments table of report.txt's first screen, from figures.json: each row a mechanism, the figure a
run measured and the figure the mechanism predicts (with why), both computed; a row whose run the study
lacks is left out. The experiments are vm/experiment.py's runs (workloads.experiments) and a few of the
workloads that already prove a mechanism."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

from .cite import FiguresError, count, share, tenths
from .findings import Figures

Row = tuple[str, str, str, str]  # mechanism, workload, measured, expected (and why)


def _buffer(fig: Figures, key: str) -> dict[str, Any]:
    buffer = fig.run(key)["facts"].get("buffer")
    if not buffer:
        raise FiguresError(f"{key}: no buffer")
    return buffer


def _walked(fig: Figures, key: str) -> int:
    """The pages an experiment walks: the last argument of its command."""
    return int(fig.run(key)["command"][-1])


def thp_on(fig: Figures) -> Row:
    b, pages = _buffer(fig, "thp-on"), _walked(fig, "thp-on")
    per = fig.const("huge_page_pages")
    return (
        "huge pages on",
        "thp-on",
        f"{count(b['faults'])} faults on {count(pages)} pages, {count(b['huge'])} huge",
        f"{count(pages)} / {count(per)} = {count(fig.keep('thp_on_expected', pages / per))}: "
        f"a {count(fig.const('huge_page_mib'))} MiB page each",
    )


def thp_off(fig: Figures) -> Row:
    b, pages = _buffer(fig, "thp-off"), _walked(fig, "thp-off")
    return (
        "huge pages off",
        "thp-off",
        f"{count(b['faults'])} faults on {count(pages)} pages, {count(b['huge'])} huge",
        f"{count(pages)}: a {count(fig.const('page_kib'))} KiB page each",
    )


def child(fig: Figures, key: str) -> dict[str, Any]:
    """The forked child's faults in its parent's buffer (the run's second process)."""
    users = _buffer(fig, key)["users"]
    if len(users) < 2:
        raise FiguresError(f"{key}: no child")
    return users[1]


def fork_read(fig: Figures) -> Row:
    kid, pages = child(fig, "fork-read"), count(_walked(fig, "fork-read"))
    return (
        "fork, child reads",
        "fork-read",
        f"child: {count(kid['faults'])} faults on {pages} pages",
        "none: fork copied the page table",
    )


def fork_write(fig: Figures) -> Row:
    kid, pages = child(fig, "fork-write"), count(_walked(fig, "fork-write"))
    measured = f"child: {count(kid['faults'])} faults, {count(kid['writes'])} writes"
    return ("fork, child writes", "fork-write", measured, f"{pages}: copy-on-write, one copy a page")


def reuse(fig: Figures) -> Row:
    b = _buffer(fig, "sysbench-memory-16M")
    return (
        "buffer reused",
        "sysbench-memory-16M",
        f"{count(b['faults'])} faults in {count(fig.derived('buffer/passes'))} passes",
        f"{count(b['pages'])} pages + {count(b['refaults'])} zero-page reads",
    )


def readers(fig: Figures) -> tuple[dict, dict]:
    """The cache experiment's two readers: cold (after the cache was dropped), then warm."""
    readers = [u for u in _buffer(fig, "cache")["users"] if u["faults"]]
    if len(readers) < 2:
        raise FiguresError("cache: fewer than two readers")
    return readers[0], readers[1]


def _reader(label: str, reader: dict[str, Any], why: str) -> Row:
    return (label, "cache", f"{count(reader['faults'])} faults, {count(reader['major'])} major", why)


def cache_cold(fig: Figures) -> Row:
    return _reader("page cache cold", readers(fig)[0], "major: each waits for a file read")


def cache_warm(fig: Figures) -> Row:
    return _reader("page cache warm", readers(fig)[1], "none: the pages are cached")


def fault_around(fig: Figures) -> Row:
    g = fig.region("mmap-read", "files")
    around = fig.const("fault_around_kib") / fig.const("page_kib")
    return (
        "fault-around",
        "mmap-read",
        f"{count(g['faults'])} faults on {count(g['size_pages'])} pages: "
        f"{tenths(fig.derived('fault_around/pages_per_fault'))} a fault",
        f"{count(fig.keep('fault_around_pages', around))}: {count(fig.const('fault_around_kib'))} KiB mapped at "
        "each read fault",
    )


def exit_burst(fig: Figures) -> Row:
    x = fig.run("sysbench-cpu")["facts"]
    return (
        "exit burst",
        "sysbench-cpu",
        f"{share(x['end_share'])} of faults in the last {count(fig.const('window_pct'))} %",
        f"{count(fig.const('window_pct'))} % if faults came evenly",
    )


ROWS: tuple[Callable[[Figures], Row], ...] = (
    thp_on,
    thp_off,
    fork_read,
    fork_write,
    reuse,
    cache_cold,
    cache_warm,
    fault_around,
    exit_burst,
)


def rows(data: dict[str, Any]) -> tuple[list[Row], dict[str, float]]:
    """The rows the study's runs give, and the values they quote that are not leaves of figures.json."""
    fig = Figures(data)
    out = []
    for make in ROWS:
        try:
            out.append(make(fig))
        except (FiguresError, KeyError, ValueError, ZeroDivisionError):
            continue
    return out, fig.quoted


def table(data: dict[str, Any], width: int) -> list[str]:
    """The experiments table: empty when the study holds none of them."""
    found, _ = rows(data)
    if not found:
        return []
    head = f"{'experiment':<19} {'workload':<19} {'measured':<40} expected, and why"
    note = (
        "Faults in the buffer each is about (vm/experiment.py): thp-on/off: one aligned buffer, huge pages advised "
        "on (THP madvise for the run) or off; cache: a child reads a file after drop_caches, a second after it."
    )
    lines = [head, "-" * width]
    lines += [f"{a:<19} {b:<19} {c:<40} {d}" for a, b, c, d in found]
    return lines + textwrap.wrap(note, width=width)
