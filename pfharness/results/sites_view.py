"""The sites view as text: `pfharness sites` (tables, log2 histograms, the slowest faults) and the run summary's
line (docs/sites.md)."""

from __future__ import annotations

from .sites import Bucket, SiteRow, Sites, SlowFault

BAR = 40  # the widest histogram bar, in characters


def duration(ns: int | float) -> str:
    """A service time for people: 812 ns, 12.3 us, 4.56 ms, 1.23 s."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            value = ns / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{int(ns)} ns"


def bucket_size(ns: int) -> str:
    """A bucket bound, as bpftrace prints them: 512, 1K, 2M, 4G."""
    for suffix, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if ns >= scale and ns % scale == 0:
            return f"{ns // scale}{suffix}"
    return str(ns)


def _site(row: SiteRow) -> str:
    return f"{row.function} ({row.library})" if row.function else row.library


def table_lines(title: str, rows: list[SiteRow]) -> list[str]:
    """One table: a header, then a row per site (most faults first)."""
    head = f"{'faults':>8} {'major':>6} {'read':>7} {'write':>7} {'exec':>6} {'total':>9} {'median':>9}  {title}"
    return [head] + [
        f"{r.faults:>8} {r.major:>6} {r.read:>7} {r.write:>7} {r.exec:>6} {duration(r.total_ns):>9} "
        f"{duration(r.median_ns):>9}  {_site(r)}"
        for r in rows
    ]


def histogram_lines(kind: str, buckets: list[Bucket]) -> list[str]:
    """A log2 histogram of service times (ns), as bpftrace's hist() prints one."""
    if not buckets:
        return [f"@{kind}: no faults"]
    top = max(b.count for b in buckets)
    labels = [f"[{bucket_size(b.low_ns)}, {bucket_size(b.high_ns)})" for b in buckets]
    width = max(len(label) for label in labels)
    lines = [f"@{kind} (service time, ns):"]
    for label, b in zip(labels, buckets, strict=True):
        bar = "@" * (round(BAR * b.count / top) if b.count else 0)
        lines.append(f"{label:<{width}} {b.count:>9} |{bar:<{BAR}}|")
    return lines


def slowest_lines(slow: list[SlowFault]) -> list[str]:
    lines = [f"{'service':>9} {'access':<6} {'major':<5} {'address':>16} {'ip':>16}  site"]
    for f in slow:
        lines.append(
            f"{duration(f.service_ns):>9} {f.access:<6} {'yes' if f.major else 'no':<5} {f.address:>#16x} "
            f"{f.ip:>#16x}  {f.function} ({f.library}, pid {f.tgid})"
        )
    return lines


def sites_text(s: Sites) -> list[str]:
    """`pfharness sites`: the tables by function and by library, the histograms, the slowest faults."""
    lines = [f"{s.faults} faults, {duration(s.total_ns)} in faults (service time, summed)", ""]
    lines += [*table_lines("function (library)", s.functions), "", *table_lines("library", s.libraries)]
    for kind, buckets in s.histograms.items():
        lines += ["", *histogram_lines(kind, buckets)]
    return [*lines, "", "slowest faults:", *slowest_lines(s.slowest)]


def summary_line(s: Sites) -> str:
    """The run summary's line: the top three sites, and the time spent in faults."""
    top = ", ".join(f"{_site(r)} {r.faults}" for r in s.functions[:3])
    return f"{'top sites:':<17}{top}; {duration(s.total_ns)} in {s.faults} faults"
