"""The study's experiments (vm/experiment.py) traced with pf_probe_B in one boot of 6.1 (QEMU, TCG): each proves
its mechanism against the arithmetic and against the kernel's own counters (/proc/vmstat deltas the program
prints): huge pages on and off for the same aligned walk, fork with a child that reads and one that writes,
a file read with the page cache cold and then warm."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pfharness.pipeline.targets import VmSpec
from pfharness.study import run_study
from pfharness.study.facts import compute
from pfharness.study.workloads import EXPERIMENT, workloads
from pfharness.values import Accelerator

pytestmark = pytest.mark.vm
INTERPRETER = 16  # faults of python3 itself around a part of the experiment (its counters read, objects made)
KEYS = tuple(w.key for w in workloads(Path("."), Path(".")) if w.tag == EXPERIMENT)


@pytest.fixture(scope="module")
def tried(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiments")
    study = run_study(out, ("B",), target=VmSpec(accel=Accelerator.tcg, thp="host"), only=KEYS)
    return {run.workload.key: run for run in study.runs}


def buffer(run):
    found = compute(run.result.saved).buffer
    assert found is not None, f"{run.workload.key}: no buffer"
    return found


def counted(run, part: str, name: str) -> int:
    """What the program printed for `part` (its line's start, e.g. "cache cold"): a counter's rise over it,
    the process's own (majflt, minflt: getrusage) or the machine's (pgfault, thp_fault_alloc: /proc/vmstat)."""
    line = next(line for line in run.result.workload_output.splitlines() if line.startswith(part))
    found = re.search(rf"\b{name}=\+(\d+)", line)
    assert found is not None, line
    return int(found.group(1))


def test_huge_pages_on_and_off_for_the_same_walk(tried):
    """On the buffer's own addresses, which the program prints (the module's anonymous region may also hold a
    neighbour the interpreter mapped where an earlier mapping of the same region lay: the fork test below)."""
    pages = int(tried["thp-on"].workload.command[-1])
    on = [r for rs in in_buffer(tried["thp-on"], "thp on", pages).values() for r in rs]
    off = [r for rs in in_buffer(tried["thp-off"], "thp off", pages).values() for r in rs]
    assert (len(on), sum(r.huge for r in on)) == (pages // 512, pages // 512)
    assert buffer(tried["thp-on"]).size_pages >= pages  # the table's buffer holds it
    assert counted(tried["thp-on"], "thp on", "thp_fault_alloc") == pages // 512, "the kernel's count of huge faults"
    # the process's own count: the buffer's faults and a few of the interpreter's (reading the counters)
    assert 0 <= counted(tried["thp-on"], "thp on", "minflt") - len(on) <= INTERPRETER
    assert (len(off), sum(r.huge for r in off), len({r.address >> 12 for r in off})) == (pages, 0, pages)
    assert counted(tried["thp-off"], "thp off", "thp_fault_alloc") == 0
    assert 0 <= counted(tried["thp-off"], "thp off", "minflt") - len(off) <= INTERPRETER


def in_buffer(run, part: str, pages: int) -> dict[int, list]:
    """Each process's faults within the buffer the program printed for `part` ("... at 0xSTART"), by tgid: the
    buffer's own pages, not the anonymous neighbours its mapping may share a region with."""
    line = next(line for line in run.result.workload_output.splitlines() if line.startswith(part))
    found = re.search(r" at 0x([0-9a-f]+)", line)
    assert found is not None, line
    start = int(found.group(1), 16)
    by_tgid: dict[int, list] = {}
    for r in run.result.saved.records:
        if start <= r.address < start + pages * 4096:
            by_tgid.setdefault(r.tgid, []).append(r)
    return by_tgid


def test_a_forked_child_faults_only_where_it_writes(tried):
    pages = int(tried["fork-read"].workload.command[-1])
    run = tried["fork-read"]
    found = in_buffer(run, "fork read: the child reads", pages)
    parent = found.pop(run.result.pid, [])
    assert (len(parent), sum(r.access == "write" for r in parent)) == (pages, pages), "the parent writes each page"
    assert sum(len(v) for v in found.values()) == 0, "fork copied the page table: the child reads without a fault"
    run = tried["fork-write"]
    found = in_buffer(run, "fork write: the child writes", pages)
    parent = found.pop(run.result.pid, [])
    [child] = found.values()
    assert (len(parent), len(child), sum(r.access == "write" for r in child)) == (pages, pages, pages), (
        "one copy a page written"
    )
    assert len({r.page for r in child}) == pages
    assert counted(tried["fork-write"], "fork write: the child writes", "minflt") >= pages


def test_the_page_cache_cold_then_warm(tried):
    b = buffer(tried["cache"])
    cold, warm = (u for u in b.users if u.faults)
    assert cold.major > 0 and warm.major == 0 and b.major == cold.major
    assert warm.faults <= b.size_pages // 16 + 2, "warm: fault-around maps 16 pages a read fault"
    assert counted(tried["cache"], "cache cold", "majflt") == cold.major, "the process's own count of major faults"
    assert counted(tried["cache"], "cache warm", "majflt") == 0
