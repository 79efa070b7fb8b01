"""The sentences of the three paragraphs, each a function of figures.json (findings.Figures). A sentence
whose figures are missing raises FiguresError (or KeyError) and is left out. Numbers only through
count, share and seconds of a value figures.json holds: never typed."""

from __future__ import annotations

from collections.abc import Callable

from .cite import FiguresError, count, seconds, share, tenths
from .experiments import child, readers
from .findings import Figures


def _mib(fig: Figures, name: str, pages: float) -> str:
    return count(fig.keep(name, pages * fig.const("page_kib") / 1024))


def _buffer(fig: Figures, key: str) -> dict:
    buffer = fig.run(key)["facts"].get("buffer")
    if not buffer:
        raise FiguresError(f"{key}: no buffer")
    return buffer


# Trend 1: memory faults on first touch, once per page


def walks(fig: Figures) -> str:
    seq, rnd = fig.run("walk-sequential"), fig.run("walk-random")
    gs, gr = fig.region("walk-sequential", "files"), fig.region("walk-random", "files")
    writes = fig.keep("walk_writes", gs["access"].get("write", 0) / gs["faults"])
    faults = {(gs["faults"], gs["pages"]), (gr["faults"], gr["pages"])}
    counts = (
        f"{count(gs['faults'])} faults on {count(gs['pages'])} distinct pages each"
        if len(faults) == 1
        else f"{count(gs['faults'])} and {count(gr['faults'])} faults on {count(gs['pages'])} and "
        f"{count(gr['pages'])} distinct pages"
    )
    return (
        f"First trend, demand paging: a page faults when it is first touched, and once. Both walks write each of the "
        f"{count(gs['size_pages'])} pages of a {_mib(fig, 'walk_mib', gs['size_pages'])} MiB mapping of "
        f"/dev/zero once: {counts}, {share(writes)} writes; {share(seq['figures']['sequential_share'])} of the "
        f"sequential walk's faults land on the page after the previous one, "
        f"{share(rnd['figures']['sequential_share'])} of the random walk's."
    )


def huge_pages(fig: Figures) -> str:
    on, off = _buffer(fig, "thp-on"), _buffer(fig, "thp-off")
    huge = "each" if on["huge"] == on["faults"] else f"{count(on['huge'])} of them"
    return (
        f"A huge page changes the count, not the rule: the same aligned walk takes {count(on['faults'])} faults "
        f"with huge pages on, {huge} mapping {count(fig.const('huge_page_pages'))} pages, and "
        f"{count(off['faults'])} with them off."
    )


def reuse(fig: Figures) -> str:
    b = _buffer(fig, "sysbench-memory-16M")
    return (
        f"Reuse costs nothing: sysbench memory writes its {count(fig.derived('buffer/block_mib'))} MiB block "
        f"{count(fig.derived('buffer/passes'))} times, and the anonymous mapping that holds it "
        f"({count(b['size_pages'])} pages) takes {count(b['faults'])} faults, one on each of {count(b['pages'])} "
        f"pages and {count(b['refaults'])} more where a read had mapped the shared zero page before the first write."
    )


# Trend 2: short programs are start-up and exit; fork shares memory until a write


def startup(fig: Figures) -> str:
    x = fig.run("sysbench-cpu")["facts"]
    f = fig.run("sysbench-cpu")["figures"]
    libs = x["by_class"]["libraries"]
    writes = fig.keep("cpu_library_writes", x["class_access"]["libraries"].get("write", 0) / libs)
    return (
        f"Second trend: a short program faults at start-up and at exit. sysbench cpu computes for "
        f"{seconds(x['gap']['seconds'])} without one fault; {share(f['startup_share'])} of its "
        f"{count(f['faults'])} faults come in the first {count(fig.const('window_pct'))} % of the run, "
        f"{count(libs)} in shared libraries and the loader, {share(writes)} of those writes: the dynamic "
        f"loader's relocations, each page copied at its first write (copy-on-write of a private file mapping)."
    )


def exit_burst(fig: Figures) -> str:
    x = fig.run("sysbench-cpu")["facts"]
    return (
        f"At exit {share(x['end_share'])} of the faults fall in the last {count(fig.const('window_pct'))} %, "
        f"{count(x['end_lib_exec'])} on code of {count(x['end_libs'])} libraries run for the first time."
    )


def threads(fig: Figures) -> str:
    x = fig.run("sysbench-threads")["facts"]
    return (
        f"sysbench threads' {count(fig.keep('workers', x['threads'] - 1))} workers each write a stack of "
        f"{count(x['stacks']['pages'])} pages of their own."
    )


def fork_experiment(fig: Figures) -> str:
    read, write = child(fig, "fork-read"), child(fig, "fork-write")
    pages = int(fig.run("fork-write")["command"][-1])
    return (
        f"fork shares memory until a write: a child that reads its parent's {count(pages)} pages faults "
        f"{count(read['faults'])} times in them, one that writes them {count(write['faults'])} times."
    )


def fork_compile(fig: Figures) -> str:
    fork = fig.run("kbuild")["facts"]["fork"]
    return (
        f"In the compilation, {count(fork['children'])} forked children wrote {count(fork['on_parent_pages'])} "
        f"times on a page their parent had touched, before their exec."
    )


# Trend 3: files and I/O: the page cache and buffers mapped once


def cold_cache(fig: Figures) -> str:
    r = fig.derived("reruns")
    x = fig.run("kbuild")["facts"]
    name, most = next(iter(x["major_by_name"].items()))
    return (
        f"Third trend: file-backed pages come from the page cache. Major faults, which wait for a disk read, come "
        f"while it is cold: {count(r['major_first'])} in pf_probe_B's runs, the first after boot "
        f"({count(x['major'])} in the compilation, {count(most)} in {name}), {count(r['major_repeat'])} in "
        f"pf_probe_C's repeats right after."
    )


def cache_experiment(fig: Figures) -> str:
    cold, warm = readers(fig)
    b = _buffer(fig, "cache")
    return (
        f"A child reading {count(b['size_pages'])} pages of {b['name']} right after the cache is dropped takes "
        f"{count(cold['major'])} major faults of {count(cold['faults'])}, a second child right after "
        f"{count(warm['major'])} of {count(warm['faults'])}."
    )


def fault_around(fig: Figures) -> str:
    g = fig.region("mmap-read", "files")
    return (
        f"A cached file faults less than its pages: mmap-read's {count(g['size_pages'])} pages took "
        f"{count(g['faults'])} read faults, one per {tenths(fig.derived('fault_around/pages_per_fault'))} pages, "
        f"as the kernel maps the cached pages around each faulting address (fault-around)."
    )


def iperf(fig: Figures) -> str:
    x = fig.run("iperf3")["facts"]
    g = fig.region("iperf3", "files")
    return (
        f"Network I/O faults little: each iperf3 writes the {count(g['size_pages'])} pages of its own buffer "
        f"mapping once, then the transfer runs {seconds(x['gap']['seconds'])} without a fault: the data crosses "
        f"the socket in kernel memory."
    )


PARAGRAPHS: tuple[list[Callable[[Figures], str]], ...] = (
    [walks, huge_pages, reuse],
    [startup, exit_burst, threads, fork_experiment, fork_compile],
    [cold_cache, cache_experiment, fault_around, iperf],
)
