"""The sentences of the three paragraphs, each a function of figures.json (findings.Figures). A sentence
whose figures are missing raises FiguresError (or KeyError) and is left out. Numbers only through
count, share and seconds of a value figures.json holds: never typed."""

from __future__ import annotations

from collections.abc import Callable

from .cite import count, millis, seconds, share, tenths
from .findings import Figures


def _mib(fig: Figures, name: str, pages: float) -> str:
    return count(fig.keep(name, pages * fig.const("page_kib") / 1024))


def _const(fig: Figures, name: str) -> str:
    return count(fig.const(name))


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
        f"/dev/zero (shared anonymous memory: a zero-filled shmem file) once: "
        f"{counts}, {share(writes)} writes. The module sees the order exactly: "
        f"{share(seq['figures']['sequential_share'])} of the faults land on the page after the previous one in "
        f"order, {share(rnd['figures']['sequential_share'])} at random."
    )


def zero_page(fig: Figures) -> str:
    x = fig.run("sysbench-cpu")["facts"]
    return (
        f"Anonymous memory read before it is written faults twice: in sysbench cpu "
        f"{count(x['read_then_write'])} such pages fault on a read, which maps the shared zero page, and again on "
        f"the first write, which gives each its own frame."
    )


def buffer(fig: Figures) -> str:
    h = fig.run("sysbench-memory-16M")["facts"]["huge_faults"]
    extra = fig.derived("buffer/extra_faults")
    return (
        f"sysbench memory over a {count(fig.derived('buffer/block_mib'))} MiB block zeroes it before the "
        f"benchmark in {count(h['faults'])} faults within {millis(fig.derived('buffer/window_s'))}, each mapping a "
        f"{_const(fig, 'huge_page_mib')} MiB transparent huge page ({count(h['faults'])} x "
        f"{_const(fig, 'huge_page_pages')} = {count(fig.derived('buffer/huge_pages'))} pages; the walks turn huge "
        f"pages off), and its {count(fig.derived('buffer/passes'))} passes over it then fault {count(h['later'])} "
        f"times there: the run takes {count(fig.keep('buffer_faults_apart', abs(extra)))} faults "
        f"{'more' if extra >= 0 else 'fewer'} than with sysbench's default {_const(fig, 'sysbench_block_kib')} KiB "
        f"block for {tenths(fig.derived('buffer/extra_mib'))} MiB more memory."
    )


def compile_fresh(fig: Figures) -> str:
    run = fig.run("kbuild")
    f, x = run["figures"], run["facts"]
    return (
        f"The compilation at scale: {count(f['faults'])} faults on {count(f['distinct_pages'])} distinct pages "
        f"in {count(x['processes'])} processes, {share(x['class_share']['heap_anon'])} in heap and anonymous "
        f"memory."
    )


# Trend 2: short programs are start-up and exit


def startup(fig: Figures) -> str:
    x = fig.run("sysbench-cpu")["facts"]
    f = fig.run("sysbench-cpu")["figures"]
    libs = x["by_class"]["libraries"]
    writes = fig.keep("cpu_library_writes", x["class_access"]["libraries"].get("write", 0) / libs)
    return (
        f"Second trend: a short program faults at start-up and at exit. sysbench cpu computes for "
        f"{seconds(x['gap']['seconds'])} without one fault; {share(f['startup_share'])} of its "
        f"{count(f['faults'])} faults come in the first {_const(fig, 'window_pct')} % of the run, "
        f"{count(libs)} in shared libraries and the loader, {share(writes)} of those writes: the dynamic "
        f"loader's relocations write into each library's private file pages, and the kernel copies each page at "
        f"that first write (copy-on-write of a private file mapping)."
    )


def exit_burst(fig: Figures) -> str:
    x = fig.run("sysbench-cpu")["facts"]
    return (
        f"The exit is the second burst: {share(x['end_share'])} of the faults fall in the last "
        f"{_const(fig, 'window_pct')} % of the run, {count(x['end_lib_exec'])} of them on code of "
        f"{count(x['end_libs'])} libraries run for the first time as they shut down."
    )


def threads(fig: Figures) -> str:
    x = fig.run("sysbench-threads")["facts"]
    return (
        f"In sysbench threads, {count(fig.keep('workers', x['threads'] - 1))} worker threads fault besides the "
        f"main one; {count(x['stacks']['regions'])} anonymous regions of "
        f"{count(x['stacks']['pages'])} pages are each written by one worker alone, after "
        f"{count(x['stacks']['first'])} writes in all by the main thread that created them: the threads' "
        f"stacks."
    )


def fork_cow(fig: Figures) -> str:
    fork = fig.run("kbuild")["facts"]["fork"]
    return (
        f"In the compilation, {count(fork['children'])} forked children wrote {count(fork['writes_before_exec'])} "
        f"times before their exec, {count(fork['on_parent_pages'])} times on a page their parent had touched: "
        f"copy-on-write after fork, each such page copied at the child's first write and dropped at its exec."
    )


# Trend 3: files and I/O: the page cache and buffers mapped once


def cold_cache(fig: Figures) -> str:
    r = fig.derived("reruns")
    x = fig.run("kbuild")["facts"]
    name, most = next(iter(x["major_by_name"].items()))
    return (
        f"Third trend: file-backed pages come from the page cache. Major faults, which wait for a disk read, come "
        f"only while it is cold: {count(r['major_first'])} in pf_probe_B's runs, the first after boot "
        f"({count(x['major'])} in the compilation, {count(most)} of them in {name}), and {count(r['major_repeat'])} "
        f"when pf_probe_C runs the same workloads right after: they measure the cache, not the program."
    )


def fault_around(fig: Figures) -> str:
    g = fig.region("mmap-read", "files")
    reads = fig.keep("mmap_reads", g["access"].get("read", 0) / g["faults"])
    return (
        f"A cached file faults less than its pages: reading a {_mib(fig, 'mmap_mib', g['size_pages'])} MiB file "
        f"({count(g['size_pages'])} pages) through mmap, one byte per page in order, took {count(g['faults'])} "
        f"faults, {share(reads)} reads, one per {tenths(fig.derived('fault_around/pages_per_fault'))} pages: on a "
        f"read fault the kernel maps the cached pages around the address too (fault-around)."
    )


def iperf(fig: Figures) -> str:
    run = fig.run("iperf3")
    x = run["facts"]
    g = fig.region("iperf3", "files")
    kib = fig.keep("iperf_buffer_kib", g["size_pages"] * fig.const("page_kib"))
    return (
        f"Network I/O faults little: iperf3's server and client ({count(x['processes'])} processes with sh and "
        f"sleep) take {count(run['figures']['faults'])} faults, {share(x['class_share']['libraries'])} in "
        f"libraries; each iperf3 writes the {count(g['size_pages'])} pages ({count(kib)} KiB) of its own "
        f"iperf3.XXXXXX file mapping once, the buffer the server receives into and the client sends from, and "
        f"the transfer then runs {seconds(x['gap']['seconds'])} without a fault: the data crosses the socket "
        f"in kernel memory and lands in pages already mapped."
    )


PARAGRAPHS: tuple[list[Callable[[Figures], str]], ...] = (
    [walks, zero_page, buffer, compile_fresh],
    [startup, exit_burst, threads, fork_cow],
    [cold_cache, fault_around, iperf],
)
