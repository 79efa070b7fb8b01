"""Appendix A of report.txt: each workload's second run (pf_probe_C, right after pf_probe_B) set beside the
first, as a warm-cache repeat, with C's segment classes (the assignment's extra credit)."""

from __future__ import annotations

from typing import Any


def _pairs(data: dict[str, Any]) -> list[tuple[dict, dict]]:
    """(B run, C run) per workload traced with both, in the study's order."""
    by_key: dict[str, dict[str, dict]] = {}
    for run in data["runs"]:
        by_key.setdefault(run["workload"], {})[run["module"]] = run
    return [(m["B"], m["C"]) for m in by_key.values() if "B" in m and "C" in m]


def _major(run: dict) -> str:
    return str(run["facts"]["major"]) if run.get("facts") else "?"


APART = 0.10  # a pair whose faults differ by more is explained by a line of its own


def _apart(b: dict, c: dict) -> str:
    """A line for a pair whose fault counts differ by more than APART: memory faulted and huge pages."""
    fb, fc = b["figures"]["faults"], c["figures"]["faults"]
    if not fb or abs(fc - fb) / fb <= APART or not (b.get("facts") and c.get("facts")):
        return ""
    xb, xc = b["facts"], c["facts"]
    return (
        f"{b['workload']}: {fc - fb:+,} faults in C's run for {xc['mib_touched'] - xb['mib_touched']:+.1f} MiB "
        f"faulted (huge-page faults: {xb['huge']} in B's run, {xc['huge']} in C's)."
    )


def appendix(data: dict[str, Any]) -> list[str]:
    """The C reruns beside the B runs: faults, the difference, major faults, time, C's segment shares."""
    title = "APPENDIX A. pf_probe_C's runs: the same workloads again, right after pf_probe_B (a warm page cache)"
    head = (
        f"{'workload':<20} {'B faults':>9} {'C faults':>9} {'C-B':>7} {'B major':>8} {'C major':>8} {'B s':>6} "
        f"{'C s':>6}   C: code  data  other"
    )
    lines = ["", title, "-" * len(title), head]
    for b, c in _pairs(data):
        fb, fc = b["figures"]["faults"], c["figures"]["faults"]
        seg = c["figures"]["segment_share"]
        lines.append(
            f"{b['workload']:<20} {fb:>9,} {fc:>9,} {(fc - fb) / fb if fb else 0:>+7.1%} {_major(b):>8} "
            f"{_major(c):>8} {b['seconds']:>6.1f} {c['seconds']:>6.1f}   "
            + " ".join(f"{seg.get(k, 0):>5.0%}" for k in ("code", "data", "other"))
        )
    lines += [_apart(b, c) for b, c in _pairs(data) if _apart(b, c)]
    lines += [
        "C-B: C's faults against B's; major: faults that read a page from disk, which the second run finds in the",
        "page cache; B s, C s: the runs' wall time under emulation. code/data/other:",
        "pf_probe_C's classes (the program's code segment, its data segment, everything else: libraries, heap,",
        "mappings, stack); the first table splits 'other' by region instead.",
    ]
    return lines
