"""The three paragraphs of findings, written from figures.json: every number in them is a value of
figures.json (a run's figures or facts, or `derived`, which `derive` computes from the runs), so a study
made again on another kernel or machine cannot leave a stale figure. A sentence whose figures the study
does not hold (a workload left out) is left out with them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .cite import FiguresError, at, count, seconds, share

Data = dict[str, Any]


def first_runs(data: Data) -> list[Data]:
    """Each workload's first run (pf_probe_B's when it was traced with B: the cold page cache)."""
    seen: dict[str, Data] = {}
    for run in data["runs"]:
        if run.get("facts") is not None:
            seen.setdefault(run["workload"], run)
    return list(seen.values())


def _first(data: Data, key: str) -> Data:
    for run in first_runs(data):
        if run["workload"] == key:
            return run
    raise FiguresError(f"no run of {key}")


def _largest(run: Data, cls: str) -> Data:
    """The region of class `cls` with the largest extent among the run's top regions."""
    regions = [g for g in run["facts"]["regions"] if g["cls"] == cls]
    if not regions:
        raise FiguresError(f"{run['workload']}: no {cls} region")
    return max(regions, key=lambda g: (g["size_pages"], g["faults"]))


def _size_arg(command: list[str], option: str) -> int:
    """A sysbench size option in MiB (--memory-block-size=16M -> 16)."""
    for arg in command:
        if m := re.fullmatch(rf"--{option}=(\d+)M", arg):
            return int(m.group(1))
    raise FiguresError(f"no --{option} in {command}")


def _buffer(data: Data) -> Data:
    """sysbench memory over one large block: its size and how many times the benchmark passes over it."""
    run = _first(data, "sysbench-memory-16M")
    block, total = (_size_arg(run["command"], o) for o in ("memory-block-size", "memory-total-size"))
    return {"block_mib": block, "passes": total // block}


def _reruns(data: Data) -> Data:
    runs = {(r["workload"], r["module"]): r for r in data["runs"] if r.get("facts")}
    pairs = [(b, runs[(k, "C")]) for (k, m), b in runs.items() if m == "B" and (k, "C") in runs]
    return {
        "major_first": sum(b["facts"]["major"] for b, _ in pairs),
        "major_repeat": sum(c["facts"]["major"] for _, c in pairs),
        "pairs": len(pairs),
    }


def _fault_around(data: Data) -> Data:
    g = _largest(_first(data, "mmap-read"), "files")
    return {"pages_per_fault": g["size_pages"] / g["faults"]}


def _optional(make: Callable[[Data], Data], data: Data) -> Data | None:
    try:
        return make(data)
    except (FiguresError, KeyError, ZeroDivisionError):
        return None


def derive(data: Data) -> Data:
    """The figures the findings compute across runs (stored in figures.json's `derived`)."""
    out: Data = {
        "runs": len(data["runs"]),
        "run_seconds": sum(r["seconds"] for r in data["runs"]),
        "workloads": len(first_runs(data)),
    }
    for name, make in (("buffer", _buffer), ("reruns", _reruns), ("fault_around", _fault_around)):
        if (value := _optional(make, data)) is not None:
            out[name] = value
    return out


class Figures:
    """figures.json as the sentences read it. A value the text states that is not a leaf of figures.json
    (a ratio of two of its figures) is computed with `keep`, which stores it under derived/quoted/<name>."""

    def __init__(self, data: Data) -> None:
        self.data = data
        self.quoted: dict[str, float] = {}

    def run(self, key: str) -> Data:
        return _first(self.data, key)

    def region(self, key: str, cls: str) -> Data:
        return _largest(self.run(key), cls)

    def derived(self, path: str) -> Any:
        return at(self.data, f"derived/{path}")

    def const(self, name: str) -> float:
        return at(self.data, f"constants/{name}")

    def keep(self, name: str, value: float) -> float:
        self.quoted[name] = round(value, 4)
        return value


def _sentences(fig: Figures, makers: list[Callable[[Figures], str]]) -> str:
    out = []
    for make in makers:
        try:
            out.append(make(fig))
        except (FiguresError, KeyError, ZeroDivisionError):
            continue
    return " ".join(out)


def paragraphs(data: Data) -> tuple[list[str], dict[str, float]]:
    """The three paragraphs (first touch; start-up, fork and exit; files and the page cache), and the
    values they quote that are not in figures.json's runs (figures.json keeps them as derived/quoted)."""
    from .sentences import PARAGRAPHS  # noqa: PLC0415 - the sentences use this module's helpers

    fig = Figures(data)
    return [_sentences(fig, makers) for makers in PARAGRAPHS], fig.quoted


__all__ = ["count", "derive", "first_runs", "paragraphs", "seconds", "share"]
