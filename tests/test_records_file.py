"""The lossless procfs files read back: exact layouts, and malformed or hostile bytes are a RecordsError."""

from __future__ import annotations

import random
import struct

import pytest

from pfharness.results import output_format as fmt
from pfharness.results.records_file import (
    KNOWN_FLAGS,
    FaultRecord,
    ProcessEntry,
    RecordsError,
    Region,
    check_region_indexes,
    parse_processes,
    parse_records,
    parse_regions,
    records_bytes,
    region_line,
)


def hand_made() -> bytes:
    """Two records written out field by field (not with the code under test)."""
    header = b"PFHREC1\0" + (32).to_bytes(4, "little") + (24).to_bytes(4, "little")
    header += (2).to_bytes(8, "little") + (7).to_bytes(8, "little")
    rec1 = (1000).to_bytes(8, "little") + (0x7F0000001234).to_bytes(8, "little") + (42).to_bytes(4, "little")
    rec1 += (3).to_bytes(2, "little") + bytes([1, 0])
    rec2 = (2000).to_bytes(8, "little") + (0x55550000).to_bytes(8, "little") + (43).to_bytes(4, "little")
    rec2 += (0xFFFF).to_bytes(2, "little") + bytes([2, 1])
    return header + rec1 + rec2


def test_hand_made_bytes_read_back():
    f = parse_records(hand_made())
    assert f.dropped == 7
    a, b = f.records
    assert (a.t_ns, a.address, a.page, a.tgid, a.region, a.access, a.major) == (
        1000,
        0x7F0000001234,
        0x7F0000001,
        42,
        3,
        "write",
        False,
    )
    assert (b.t_ns, b.address, b.tgid, b.region, b.access, b.major) == (
        2000,
        0x55550000,
        43,
        fmt.REGION_NONE,
        "exec",
        True,
    )


def hand_made_v2() -> bytes:
    """One version-2 record written out field by field: a kernel-mode write fault of thread 44 of process 42,
    in its exec 1, on a huge page, 5000 ns of service."""
    header = b"PFHREC2\0" + (32).to_bytes(4, "little") + (48).to_bytes(4, "little")
    header += (1).to_bytes(8, "little") + (0).to_bytes(8, "little")
    rec = (1000).to_bytes(8, "little") + (0x7F0000200000).to_bytes(8, "little") + (42).to_bytes(4, "little")
    rec += (3).to_bytes(2, "little") + bytes([1, 0x10 | 0x20])
    rec += (44).to_bytes(4, "little") + (1).to_bytes(4, "little") + (0x401136).to_bytes(8, "little")
    rec += (5000).to_bytes(8, "little")
    return header + rec


def test_version_2_bytes_read_back():
    f = parse_records(hand_made_v2())
    (r,) = f.records
    assert f.version == 2 and fmt.RECORD.size == 48
    assert (r.tgid, r.tid, r.exec_seq, r.ip, r.service_ns, r.access) == (42, 44, 1, 0x401136, 5000, "write")
    assert r.huge and r.ip_mode == "kernel" and not r.major
    no_ip = hand_made_v2()[: 32 + 23] + bytes([0x40]) + hand_made_v2()[32 + 24 :]
    assert parse_records(no_ip).records[0].ip_mode == "none"


def test_version_1_is_read_and_another_version_refused():
    """Version 1 (before tid ... service_ns): read, the new fields 0 and the file's version 1. A version this
    pfharness does not know: one line that says so."""
    f = parse_records(hand_made())
    assert f.version == 1 and f.records[0].tid == 0 and f.records[0].service_ns == 0
    with pytest.raises(RecordsError, match=r"from another pfharness version .*PFHREC2"):
        parse_records(b"PFHREC3\0" + hand_made_v2()[8:])
    with pytest.raises(RecordsError, match=r"records of 48 bytes, expected 32 and 24 \(version 1\)"):
        parse_records(b"PFHREC1\0" + hand_made_v2()[8:])


def test_round_trip_and_empty_file():
    recs = [FaultRecord(i, 0x1000 * i, 1, 0, i % 3, i % 2, i + 1, i % 4, 0x400000 + i, 10 * i) for i in range(100)]
    assert parse_records(records_bytes(recs, 5)).records == recs
    old = [r._replace(tid=0, exec_seq=0, ip=0, service_ns=0) for r in recs]
    assert parse_records(records_bytes(recs, 5, version=1)).records == old
    empty = parse_records(records_bytes([]))
    assert empty.records == [] and empty.dropped == 0


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda d: d[:20], "shorter than"),
        (lambda d: b"NOTPFH!\0" + d[8:], "not a pf_probe records file"),
        (lambda d: d[:8] + struct.pack("<I", 40) + d[12:], "different versions"),
        (lambda d: d[:12] + struct.pack("<I", 16) + d[16:], "different versions"),
        (lambda d: d[:-1], "truncated"),
        (lambda d: d + b"\0", "trailing bytes"),
        (lambda d: d[:16] + struct.pack("<Q", 3) + d[24:], "truncated"),
        (lambda d: d[:16] + struct.pack("<Q", 2**63) + d[24:], "more than any buffer"),
        (lambda d: d[: 32 + 22] + bytes([3]) + d[32 + 23 :], "access kind 3"),
        (lambda d: d[: 32 + 23] + bytes([0x10]) + d[32 + 24 :], "unknown flag bits"),
    ],
)
def test_malformed_records_are_one_clear_error(mutate, words):
    with pytest.raises(RecordsError, match=words):
        parse_records(mutate(hand_made()))


def test_fuzz_never_crashes():
    """Random bytes, random cuts and random byte flips of a valid file: a result or a RecordsError, nothing else."""
    rng = random.Random(11)
    valid = records_bytes([FaultRecord(i, i << 12, 7, i % 4, i % 3, 0) for i in range(50)])
    for _ in range(3000):
        kind = rng.randrange(3)
        if kind == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
        elif kind == 1:
            data = valid[: rng.randrange(len(valid) + 1)]
        else:
            data = bytearray(valid)
            for _ in range(rng.randrange(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data)
        try:
            f = parse_records(data)
        except RecordsError as e:
            assert "\n" not in str(e)
            continue
        for r in f.records:  # whatever was accepted is within the contract
            assert r.access in fmt.ACCESS_KINDS and r.flags & ~KNOWN_FLAGS == 0


REGIONS = """0 code 0x555555554000 0x555555556000 12 true offset=0x1000 path=/usr/bin/true
1 heap 0x555555559000 0x55555557a000 3 [heap] offset=0x0 path=-
2 file 0x7ffff7dd3000 0x7ffff7fa8000 100 libc.so.6 offset=0x0 path=/usr/lib/x86_64-linux-gnu/libc.so.6
"""
#: The same table as a regions file before issue 26 gave it: no offset, no path.
REGIONS_V1 = "".join(" ".join(line.split()[:6]) + "\n" for line in REGIONS.splitlines())


def test_regions_and_processes_read_back():
    regions = parse_regions(REGIONS)
    libc = "/usr/lib/x86_64-linux-gnu/libc.so.6"
    assert regions[2] == Region(2, "file", 0x7FFFF7DD3000, 0x7FFFF7FA8000, 100, "libc.so.6", 0, libc)
    assert (regions[0].offset, regions[0].path, regions[1].path) == (0x1000, "/usr/bin/true", "")
    assert [region_line(r) for r in regions] == REGIONS.splitlines()
    older = parse_regions(REGIONS_V1)
    assert [(r.name, r.offset, r.path) for r in older] == [("true", 0, ""), ("[heap]", 0, ""), ("libc.so.6", 0, "")]
    assert parse_processes("120 1 904 sysbench\n121 120 3 a b\n") == [
        ProcessEntry(120, 1, 904, "sysbench"),
        ProcessEntry(121, 120, 3, "a b"),
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1 code 0x1000 0x2000 1 x\n", "region 1 where 0 was expected"),
        ("0 bogus 0x1000 0x2000 1 x\n", "unknown kind 'bogus'"),
        ("0 code 0x2000 0x1000 1 x\n", "ends before it starts"),
        ("0 code 4096 0x2000 1 x\n", "line 1: not a region line"),
        ("0 code 0x1000 0x2000 1 x\n\x1b[2Jjunk\n", "line 2: not a region line"),
    ],
)
def test_malformed_regions(text, words):
    with pytest.raises(RecordsError, match=words):
        parse_regions(text)


def test_region_index_out_of_table():
    regions = parse_regions(REGIONS)
    check_region_indexes([FaultRecord(0, 0, 1, fmt.REGION_NONE, 0, 0), FaultRecord(0, 0, 1, 2, 0, 0)], regions)
    with pytest.raises(RecordsError, match="region 3, but the region table has 3"):
        check_region_indexes([FaultRecord(0, 0, 1, 3, 0, 0)], regions)


def test_a_million_records_read_back():
    """A full default buffer (its speed is measured against the workload in tests/test_records_vm.py)."""
    data = records_bytes([FaultRecord(i, i << 12, 1, 0, 1, 0) for i in range(1 << 20)])
    f = parse_records(data)
    assert len(f.records) == 1 << 20 and f.records[-1].address == ((1 << 20) - 1) << 12
    assert f.records[-1].access == "write" and isinstance(f.records[0], FaultRecord)
