"""The study's facts (pfharness/study/facts.py) on hand-made records whose answers are known."""

from __future__ import annotations

import dataclasses

import matplotlib.pyplot as plt
import pytest

from pfharness import study
from pfharness.results import figures, pictures
from pfharness.results import output_format as fmt
from pfharness.results.model import TraceResult
from pfharness.results.records_file import FaultRecord, ProcessEntry, Region
from pfharness.results.run_dir import SavedRecords
from pfharness.study import facts
from pfharness.study.pictures import class_panels

READ, WRITE, EXEC = 0, 1, 2
REGIONS = [
    Region(0, "code", 0x400000, 0x410000, 0, "sh"),
    Region(1, "file", 0x7F0000000000, 0x7F0000100000, 0, "libc.so.6"),
    Region(2, "heap", 0x500000, 0x600000, 0, "[heap]"),
    Region(3, "stack", 0x7FFF00000000, 0x7FFF00100000, 0, "[stack]"),
    Region(4, "anon", 0x7E0000000000, 0x7E0001000000, 0, "[anon]"),  # 16 MiB
    Region(5, "file", 0x7D0000000000, 0x7D0000020000, 0, "iperf3.abc123"),
    Region(6, "anon", 0x7C0000000000, 0x7C0000800000, 0, "[anon]"),  # a worker thread's stack
    Region(7, "heap", 0x900000, 0x910000, 0, "[heap]"),  # the child's heap
]


def rec(t, address, region, access=WRITE, *, tgid=10, tid=0, exec_seq=1, flags=0):
    return FaultRecord(t, address, tgid, region, access, flags, tid or tgid, exec_seq)


def test_classes_shares_and_the_mib_a_huge_page_counts():
    huge = fmt.RECORD_FLAG_HUGE
    records = [
        rec(0, 0x400000, 0, EXEC),
        rec(1, 0x7F0000000000, 1, WRITE),
        rec(2, 0x7F0000001000, 1, READ),
        rec(3, 0x500000, 2),
        rec(4, 0x7FFF00000000, 3),
        rec(5, 0x7E0000000000, 4, flags=huge),  # one 2 MiB page
        rec(6, 0x7E0000001000, 4),  # inside it: no page of its own
        rec(7, 0x7D0000000000, 5),
        rec(8, 0x123000, fmt.REGION_NONE),
    ]
    got = facts.compute(SavedRecords.of(records, 0, REGIONS, []))
    assert got.by_class == {"program": 1, "libraries": 2, "heap_anon": 3, "stack": 1, "files": 1, "other": 1}
    assert got.class_access["libraries"] == {"write": 1, "read": 1}
    assert got.huge == 1 and got.threads == 1 and got.processes == 1
    assert got.mib_touched == pytest.approx((7 * 4096 + 2 * 1024 * 1024) / (1024 * 1024))
    [anon] = [g for g in got.regions if g.name == "[anon]"]
    assert (anon.size_pages, anon.faults, anon.huge, anon.small_pages) == (4096, 2, 1, 1)


def test_the_longest_gap_and_the_last_tenth():
    records = [rec(0, 0x500000, 2), rec(10, 0x501000, 2), rec(90, 0x502000, 2), rec(95, 0x503000, 2)]
    got = facts.compute(SavedRecords.of(records, 0, REGIONS, []))
    assert (got.gap.seconds, got.gap.start_s, got.gap.end_s) == (80e-9, 10e-9, 90e-9)
    assert got.end_share == pytest.approx(2 / 4)  # 90 and 95 are in the last 10 % of 0..95
    assert got.end_by_class == {"heap_anon": 2} and got.end_lib_exec == 0


def test_copy_on_write_after_fork_counts_the_child_writes_to_its_parents_pages():
    processes = [ProcessEntry(10, 1, 3, "sh"), ProcessEntry(11, 10, 4, "sh")]
    records = [
        rec(0, 0x500000, 2, tgid=10),  # the parent touches its heap page
        rec(1, 0x500000, 7, tgid=11, exec_seq=0),  # the child writes it before exec: copy-on-write
        rec(2, 0x901000, 7, tgid=11, exec_seq=0),  # a page the parent never touched
        rec(3, 0x500000, 7, READ, tgid=11, exec_seq=0),  # a read: not counted as a write
        rec(4, 0x500000, 7, tgid=11, exec_seq=1),  # after exec: its own new memory
        rec(5, 0x7FFF00000000, 3, tgid=10),
    ]
    fork = facts.compute(SavedRecords.of(records, 0, REGIONS, processes)).fork
    assert (fork.children, fork.before_exec, fork.writes_before_exec, fork.on_parent_pages) == (1, 3, 2, 1)


def test_a_region_only_one_worker_thread_faults_is_its_stack():
    records = [
        rec(0, 0x7E0000000000, 4, tid=13),
        rec(1, 0x7E0000001000, 4, tid=12),  # an array two worker threads share
        rec(2, 0x7C0000007000, 6, tid=10),  # the first thread writes the new stack's top (creates the thread)
        rec(3, 0x7C0000006000, 6, tid=12),
        rec(4, 0x7C0000005000, 6, tid=12),
    ]
    got = facts.compute(SavedRecords.of(records, 0, REGIONS, []))
    assert got.stacks == facts.ThreadStacks(regions=1, faults=3, pages=2048, first=1)
    assert (got.thread_faults, got.threads) == (4, 3)
    assert got.thread_by_class == {"heap_anon": 4}


@pytest.mark.parametrize(
    ("kind", "name", "cls"),
    [
        ("file", "ld-linux-x86-64.so.2", "libraries"),
        ("file", "libcrypto.so.3", "libraries"),
        ("file", "_ctypes.cpython-311-x86_64-linux-gnu.so", "libraries"),
        ("vdso", "[vdso]", "libraries"),
        ("file", "dev/zero", "files"),
        ("file", "sh", "program"),  # the program's file outside its code and data
        ("data", "sh", "program"),
        ("other", "[other]", "other"),
    ],
)
def test_region_classes(kind, name, cls):
    assert facts.region_class(Region(0, kind, 0, 4096, 0, name), {"sh"}) == cls


def test_huge_pages_the_zero_page_and_the_libraries_run_at_exit():
    huge = fmt.RECORD_FLAG_HUGE
    records = [
        rec(0, 0x7E0000200000, 4, flags=huge),  # the first thread maps a 2 MiB page
        rec(1, 0x7E0000001000, 4, READ),  # the zero page...
        rec(2, 0x7E0000001000, 4, WRITE),  # ...then its own page
        rec(3, 0x7E0000300000, 4, tid=12),  # inside the huge page, later: counted
        rec(4, 0x7E0000400000, 4, tid=12, flags=huge),
        rec(100, 0x7F0000003000, 1, EXEC),  # at exit: code of a library
    ]
    got = facts.compute(SavedRecords.of(records, 0, REGIONS, []))
    h = got.huge_faults
    assert (h.faults, h.first_thread, h.first_s, h.last_s, h.later) == (2, 1, 0.0, 4e-9, 1)
    assert got.read_then_write == 1
    assert (got.end_lib_exec, got.end_libs, got.end_by_class) == (1, 1, {"libraries": 1})


def test_c_panels_share_one_clock_and_leave_an_empty_class_out(tmp_path):
    """pf_probe_C's picture: a panel per segment class with faults (none here for data), one time axis."""
    code, other = ([k for k, _ in fmt.FAULT_CLASSES].index(c) << fmt.RECORD_FLAG_CLASS_SHIFT for c in ("code", "other"))
    records = [rec(0, 0x400000, 0, EXEC, flags=code), rec(5_000_000_000, 0x500000, 2, flags=other)]
    assert [figures.fault_class(r) for r in records] == ["code", "other"]
    result = dataclasses.replace(TraceResult("pf_probe_C", ["sh"]), saved=SavedRecords.of(records, 0, REGIONS, []))
    run = study.StudyRun(study.Workload("w", "w", "w", ("sh",)), "C", result, figures.compute(records), 1.0)
    png = class_panels(run, tmp_path / "w-C.png")
    assert png is not None and png.stat().st_size > 0
    panels = [pictures.Picture([r], REGIONS, "", subtitle=f"p{i}", t0_ns=0) for i, r in enumerate(records)]
    fig = pictures.build_panels(panels, "t")
    axes = fig.get_axes()
    assert len(axes) == 2 and axes[0].get_xlim() == axes[1].get_xlim() and axes[1].get_xlim()[1] >= 5.0
    assert [ax.get_title(loc="left") for ax in axes] == ["p0", "p1"]
    plt.close(fig)


def test_the_buffer_of_a_fork_experiment_counts_the_childs_faults_by_the_parents_addresses():
    """A parent writes 100 pages of its 16 MiB anonymous buffer, forks; the child writes 30 of them at the
    same addresses (its own region: another mm), reads none; the parent faults twice on page 0 (zero page)."""
    child_region = Region(8, "anon", 0x7E0000000000, 0x7E0001000000, 0, "[anon]")
    base = 0x7E0000000000
    records = [rec(0, base, 4, READ)] + [rec(1 + i, base + i * 4096, 4) for i in range(100)]
    records += [rec(200 + i, base + i * 4096, 8, tgid=11) for i in range(30)]
    records += [rec(300, 0x500000, 2, tgid=11)]  # the child's own heap: not the buffer
    got = facts.compute(SavedRecords.of(records, 0, [*REGIONS, child_region], []))
    b = got.buffer
    assert b is not None and (b.kind, b.size_pages) == ("anon", 4096)
    assert (b.faults, b.pages, b.refaults) == (131, 130, 1)
    assert [(u.tgid, u.faults, u.writes) for u in b.users] == [(10, 101, 100), (11, 30, 30)]


def test_the_buffer_of_a_huge_page_walk_and_of_a_file_read_by_two_processes():
    huge = fmt.RECORD_FLAG_HUGE
    base = 0x7E0000000000
    walk = [rec(i, base + i * (2 << 20), 4, flags=huge) for i in range(8)]
    walk += [rec(9, base + 4096, 4)]  # a fault inside a huge-mapped 2 MiB page: a refault
    b = facts.compute(SavedRecords.of(walk, 0, REGIONS, [])).buffer
    assert b is not None and (b.faults, b.huge, b.refaults) == (9, 8, 1)
    cc1 = [
        Region(0, "file", 0x7D0000000000, 0x7D0001000000, 0, "cc1"),
        Region(1, "file", 0x7C0000000000, 0x7C0001000000, 0, "cc1"),
    ]
    major = fmt.RECORD_FLAG_MAJOR
    reads = [rec(0, 0x600000, fmt.REGION_NONE, tgid=9)]  # the parent: no fault in the file
    reads += [rec(1 + i, 0x7D0000000000 + i * 65536, 0, READ, tgid=10, flags=major if i % 2 else 0) for i in range(64)]
    reads += [rec(100 + i, 0x7C0000000000 + i * 65536, 1, READ, tgid=11) for i in range(64)]
    b = facts.compute(SavedRecords.of(reads, 0, cc1, [])).buffer
    assert b is not None and b.name == "cc1" and b.major == 32
    assert [(u.tgid, u.faults, u.major) for u in b.users] == [(9, 0, 0), (10, 64, 32), (11, 64, 0)]


def test_a_run_without_a_mapping_of_many_faults_has_no_buffer():
    records = [rec(i, 0x500000 + i * 4096, 2) for i in range(10)]
    assert facts.compute(SavedRecords.of(records, 0, REGIONS, [])).buffer is None
