"""The fields of records version 2 in a real guest (QEMU, TCG, THP "always"), each against an oracle the
workload itself gives: the thread ids it prints, the execs of `sh -c 'exec ...'`, the 2 MiB-aligned region
touch_thp writes, the return address of read_zero's own `syscall` instruction, and kinds' major faults.
Each run's records are checked twice: as /proc/<module>/records gave them and as dump_records=1 printed them."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pfharness import mm_settings, step
from pfharness.guest.session import VmOptions, VmSession
from pfharness.results import run_dir
from pfharness.results.model import TraceResult
from pfharness.results.records_file import FaultRecord
from pfharness.results.step_protocol import SAVE_MOUNT as GUEST_SAVE_MOUNT

pytestmark = pytest.mark.vm
RANGE = r"0x([0-9a-f]+)-0x([0-9a-f]+)"


@contextmanager
def guest(tmp_path_factory, kernel, thp: str) -> Iterator[tuple[VmSession, Path]]:
    """A guest with THP `thp` and a run directory's guest/ exported read-write for the procfs files."""
    directory = run_dir.new_run_dir(tmp_path_factory.mktemp("runs"), "pf_probe_B")
    options = VmOptions(
        kernel=kernel,
        transcript=directory / run_dir.TRANSCRIPT,
        accel="tcg",
        smp=2,
        save_dir=directory / run_dir.GUEST_SUBDIR,
        mm=mm_settings.for_guest(thp),
    )
    with VmSession(options) as session:
        yield session, directory


@pytest.fixture(scope="module")
def thp_vm(tmp_path_factory, default_kernel):
    with guest(tmp_path_factory, default_kernel, "always") as session:
        yield session


def trace(thp_vm, built_modules, module: str, *command, follow=False) -> tuple[TraceResult, list[FaultRecord]]:
    """Trace `command`, check the run, and return it with its saved records (equal to the dumped ones)."""
    vm, directory = thp_vm
    request = step.TraceRequest(
        module,
        built_modules.modules[module],
        tuple(str(c) for c in command),
        params=("dump_records=1",),
        timeout=300,
        follow=follow,
        save_dir=GUEST_SAVE_MOUNT,
        save_dir_host=directory / run_dir.GUEST_SUBDIR,
    )
    result = step.trace(vm, request)
    assert result.complete and result.workload_status == 0 and not result.splats, result.report.lines[-5:]
    assert result.saved is not None and result.saved.version == 2 and result.saved.dropped == 0
    records = result.saved.records
    dumped = [(r.address, r.tid, r.exec_seq, r.huge, r.ip, r.ip_mode, r.service_ns) for r in result.report.records]
    assert dumped == [(r.address, r.tid, r.exec_seq, r.huge, r.ip, r.ip_mode, r.service_ns) for r in records]
    return result, records


def in_range(records: list[FaultRecord], start: int, end: int) -> list[FaultRecord]:
    return [r for r in records if start <= r.address < end]


def test_each_thread_is_recorded_under_its_own_tid(thp_vm, built_modules, programs):
    """touch_pages with two threads, 40 pages each: every fault of a thread's region carries that thread's id
    (as gettid() told it), the process's tgid, and no huge flag (the program turned THP off for itself)."""
    result, records = trace(thp_vm, built_modules, "B", programs["touch_pages"], 40, 2)
    found = re.findall(rf"region={RANGE} pages=\d+ tid=(\d+)", result.workload_output)
    tids = {int(tid) for _, _, tid in found}
    assert len(found) == 2 and len(tids) == 2 and result.report.pid not in tids
    for start, end, tid in found:
        mine = in_range(records, int(start, 16), int(end, 16))
        assert len(mine) == 40 and {r.tid for r in mine} == {int(tid)}
        assert {r.tgid for r in mine} == {result.report.pid} and not any(r.huge for r in mine)
        assert {r.ip_mode for r in mine} == {"user"} and all(r.ip for r in mine)
    assert {r.tid for r in records} >= tids | {result.report.pid}  # the main thread faults too


def test_each_exec_starts_the_next_number(thp_vm, built_modules, programs):
    """The held shell (exec 0) execs `sh -c` (exec 1), which execs touch_pages (exec 2): the numbers never go
    back in the buffer's order, the shell's faults come under 1 and all of touch_pages' region under 2."""
    result, records = trace(thp_vm, built_modules, "B", "sh", "-c", f"exec {programs['touch_pages']} 16")
    start, end = (int(x, 16) for x in re.search(rf"region={RANGE}", result.workload_output).groups())
    mine = in_range(records, start, end)
    assert len(mine) == 16 and {r.exec_seq for r in mine} == {2}
    seqs = [r.exec_seq for r in records]
    assert seqs == sorted(seqs) and {1, 2} <= set(seqs) <= {0, 1, 2}
    first_of_2 = seqs.index(2)
    assert seqs.count(1) > 10, "the shell's own start-up faults"
    assert all(r.exec_seq == 2 for r in records[first_of_2:])


def test_followed_children_number_their_own_execs(thp_vm, built_modules, programs):
    """follow=1: the shell (exec 1 after the held one) forks two children, each first seen with a copy of the
    shell's image (exec 0) that then execs touch_pages (exec 1): each child's region is under its own tgid
    and exec 1, and every process's numbers never go back."""
    command = f"{programs['touch_pages']} 8; {programs['touch_pages']} 8; true"  # true: no exec of the last
    result, records = trace(thp_vm, built_modules, "B", "sh", "-c", command, follow=True)
    found = re.findall(rf"region={RANGE} pages=8 tid=(\d+)", result.workload_output)
    children = [int(tid) for _, _, tid in found]
    assert len(set(children)) == 2 and result.report.pid not in children
    for start, end, child in found:
        # The same addresses in the child's image before its exec (exec 0, a copy of the shell's) are another
        # mapping: one of the shell's faults there was once counted in as a ninth.
        mine = [r for r in in_range(records, int(start, 16), int(end, 16)) if r.exec_seq != 0]
        assert len(mine) == 8 and {(r.tgid, r.tid, r.exec_seq) for r in mine} == {(int(child), int(child), 1)}
    for tgid in {r.tgid for r in records}:
        seqs = [r.exec_seq for r in records if r.tgid == tgid]
        assert seqs == sorted(seqs) and set(seqs) <= {0, 1, 2}, (tgid, sorted(set(seqs)))
    assert {r.exec_seq for r in records if r.tgid == result.report.pid} >= {1}


def test_a_huge_page_fault_has_the_huge_flag(thp_vm, built_modules, programs):
    """THP "always": touch_thp's 8 MiB aligned region faults 4 times, each mapping a 2 MiB page; the
    program's other faults (its 4 KiB start-up pages) are not flagged."""
    result, records = trace(thp_vm, built_modules, "B", programs["touch_thp"], 8)
    start, end = (int(x, 16) for x in re.search(rf"region={RANGE}", result.workload_output).groups())
    mine = in_range(records, start, end)
    assert len(mine) == 4 and all(r.huge for r in mine), [(hex(r.address), r.huge) for r in mine]
    assert sum(1 for r in records if not r.huge) > 20


def test_without_thp_no_fault_has_the_huge_flag(tmp_path_factory, default_kernel, built_modules, programs):
    """THP "never" (its own guest): the same 8 MiB region faults once per 4 KiB page, none flagged."""
    with guest(tmp_path_factory, default_kernel, "never") as session:
        result, records = trace(session, built_modules, "B", programs["touch_thp"], 8)
        start, end = (int(x, 16) for x in re.search(rf"region={RANGE}", result.workload_output).groups())
        assert len(in_range(records, start, end)) == 8 * 256 and not any(r.huge for r in records)


@pytest.mark.parametrize("module", ["B", "C"])
def test_a_fault_in_a_system_call_has_the_users_ip_and_the_kernel_flag(thp_vm, built_modules, programs, module):
    """read_zero's one read() clears 8 fresh pages in the kernel: 8 write faults taken in kernel mode, each with
    the user IP where its `syscall` instruction returns to; the program's own faults are user mode."""
    result, records = trace(thp_vm, built_modules, module, programs["read_zero"], 8)
    m = re.search(rf"buf={RANGE} pages=8 syscall_ret=0x([0-9a-f]+) read=32768", result.workload_output)
    assert m, result.workload_output
    start, end, ret = (int(x, 16) for x in m.groups())
    mine = in_range(records, start, end)
    assert len(mine) == 8 and {r.ip_mode for r in mine} == {"kernel"} and {r.ip for r in mine} == {ret}
    assert {r.access for r in mine} == {"write"} and {r.tid for r in mine} == {result.report.pid}
    others = [r for r in records if r not in mine]
    assert sum(1 for r in others if r.ip_mode == "user" and r.ip) > 20
    assert all(r.ip == 0 for r in records if r.ip_mode == "none")


def test_service_times_are_positive_and_a_major_fault_is_slower(thp_vm, built_modules, programs):
    """kinds reads 12 pages of a file whose cache it dropped (major: read in over 9p) and writes 12 fresh pages:
    every fault has a service time, and the median major one is slower than the median minor one."""
    result, records = trace(thp_vm, built_modules, "B", programs["kinds"], programs["kinds.dat"], 12)
    ranges = dict((k, (int(a, 16), int(b, 16))) for k, a, b in re.findall(rf"(\w+)={RANGE}", result.workload_output))
    reads = in_range(records, *ranges["read"])
    assert len(reads) == 12 and all(r.major for r in reads)
    assert all(r.service_ns > 0 for r in records)
    minor = [r.service_ns for r in records if not r.major]
    major_median, minor_median = statistics.median(r.service_ns for r in reads), statistics.median(minor)
    print(f"service time: major median {major_median} ns, minor median {minor_median} ns ({len(minor)} minor)")
    assert major_median > minor_median
