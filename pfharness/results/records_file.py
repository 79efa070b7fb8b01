"""Read the lossless procfs files of B and C (/proc/<module>/records, regions, processes): bounded, validated.

The layouts are output_format's (RECORDS_HEADER, RECORD, TABLE_LINES). The bytes come from the guest,
where the workload runs as root, so they are untrusted: every size, count and index is checked, and a
malformed file is a RecordsError with one line that says what is wrong, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

from ..errors import PfhError
from . import output_format as fmt

#: The largest records file accepted: a full buffer of the largest capacity plus its header.
MAX_RECORDS_BYTES = 4096 + fmt.MAX_RECORDS_LIMIT * fmt.RECORD.size
MAX_TABLE_BYTES = 16 * 1024 * 1024  # regions and processes: text tables, far smaller in practice
MAX_TABLE_ROWS = 65536  # the region index is a u16; the process table is smaller still
#: The flag bits a record may carry: major, C's class (bits 1-2), remote (output_format).
KNOWN_FLAGS = fmt.RECORD_FLAG_MAJOR | fmt.RECORD_FLAG_CLASS_MASK | fmt.RECORD_FLAG_REMOTE
_ALLOWED_FLAGS = bytes(b for b in range(256) if not b & ~KNOWN_FLAGS)  # the flag bytes with known bits only


class RecordsError(PfhError):
    """A records, regions or processes file (or a saved run) that cannot be read as the contract says."""

    exit_status = 2


class FaultRecord(NamedTuple):
    """One fault as B or C stored it (a tuple: a million of them are read in well under a second)."""

    t_ns: int  # local_clock() at the fault
    address: int
    tgid: int  # the faulting process (thread-group id)
    region: int  # index into the region table, or output_format.REGION_NONE
    access_index: int  # index into output_format.ACCESS_KINDS
    flags: int  # output_format.RECORD_FLAG_*

    @property
    def page(self) -> int:
        return self.address >> 12

    @property
    def access(self) -> str:
        return fmt.ACCESS_KINDS[self.access_index]

    @property
    def major(self) -> bool:
        return bool(self.flags & fmt.RECORD_FLAG_MAJOR)


@dataclass(frozen=True)
class RecordsFile:
    """The contents of /proc/<module>/records."""

    records: list[FaultRecord]  # in buffer order (the order the faults claimed their slots)
    dropped: int  # faults the module saw after its buffer was full


@dataclass(frozen=True)
class Region:
    """One line of /proc/<module>/regions: a named range of the address space."""

    index: int
    kind: str  # one of output_format.REGION_KINDS
    start: int  # first address
    end: int  # end address (exclusive)
    faults: int  # faults the module attributed to it
    name: str  # "[heap]", "libc.so.6", ...


@dataclass(frozen=True)
class ProcessEntry:
    """One line of /proc/<module>/processes."""

    tgid: int
    ppid: int
    faults: int
    comm: str


def parse_records(data: bytes, *, source: str = "records") -> RecordsFile:
    """The records in `data` (the bytes of /proc/<module>/records), or a RecordsError."""
    header = fmt.RECORDS_HEADER
    if len(data) > MAX_RECORDS_BYTES:
        raise RecordsError(f"{source}: {len(data)} bytes, more than any module writes ({MAX_RECORDS_BYTES})")
    if len(data) < header.size:
        raise RecordsError(f"{source}: {len(data)} bytes, shorter than the {header.size}-byte header (truncated?)")
    magic, header_size, record_size, count, dropped = header.unpack_from(data)
    if magic != fmt.RECORDS_MAGIC:
        raise RecordsError(f"{source}: not a pf_probe records file (magic {magic!r}, expected {fmt.RECORDS_MAGIC!r})")
    if header_size != header.size or record_size != fmt.RECORD.size:
        raise RecordsError(
            f"{source}: header of {header_size} bytes and records of {record_size} bytes, expected "
            f"{header.size} and {fmt.RECORD.size}: the module and pfharness are of different versions (rebuild)"
        )
    if count > fmt.MAX_RECORDS_LIMIT:
        raise RecordsError(
            f"{source}: header announces {count} records, more than any buffer ({fmt.MAX_RECORDS_LIMIT})"
        )
    expected = header.size + count * record_size
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "trailing bytes"
        raise RecordsError(
            f"{source}: {len(data)} bytes, but the header announces {count} records ({expected} bytes): {what}"
        )
    body = memoryview(data)[header.size :]
    # Checked in C loops over byte columns (access is byte 22 of a record, flags byte 23).
    if count:
        access_col = bytes(body[fmt.RECORD.size - 2 :: fmt.RECORD.size])
        flags_col = bytes(body[fmt.RECORD.size - 1 :: fmt.RECORD.size])
        if max(access_col) >= len(fmt.ACCESS_KINDS):
            raise RecordsError(f"{source}: a record has access kind {max(access_col)} (known: 0..2)")
        if flags_col.translate(None, _ALLOWED_FLAGS):
            raise RecordsError(f"{source}: a record has unknown flag bits (known: {KNOWN_FLAGS:#x})")
    records = list(map(partial(tuple.__new__, FaultRecord), fmt.RECORD.iter_unpack(body)))
    return RecordsFile(records=records, dropped=dropped)


def _table_lines(text: str, shape: str, source: str) -> list[dict]:
    if len(text) > MAX_TABLE_BYTES:
        raise RecordsError(f"{source}: {len(text)} characters, more than {MAX_TABLE_BYTES}")
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        values = fmt.TABLE_LINES[shape].parse(line)
        if values is None:
            shown = line[:80].encode("unicode_escape").decode()
            raise RecordsError(f"{source}, line {n}: not a {shape} line: {shown!r}")
        rows.append(values)
        if len(rows) > MAX_TABLE_ROWS:
            raise RecordsError(f"{source}: more than {MAX_TABLE_ROWS} lines")
    return rows


def parse_regions(text: str, *, source: str = "regions") -> list[Region]:
    """The region table, index i at position i; a RecordsError when an index is out of order or a kind unknown."""
    regions: list[Region] = []
    for values in _table_lines(text, "region", source):
        if values["index"] != len(regions):
            raise RecordsError(
                f"{source}: region {values['index']} where {len(regions)} was expected (indexes 0, 1, ...)"
            )
        if values["kind"] not in fmt.REGION_KINDS:
            raise RecordsError(f"{source}: region {values['index']} has unknown kind {values['kind']!r}")
        if values["end"] < values["start"]:
            raise RecordsError(f"{source}: region {values['index']} ends before it starts")
        regions.append(Region(**values))
    return regions


def parse_processes(text: str, *, source: str = "processes") -> list[ProcessEntry]:
    """The process table (issue 12's follow mode)."""
    return [ProcessEntry(**values) for values in _table_lines(text, "process", source)]


def check_region_indexes(records: list[FaultRecord], regions: list[Region], *, source: str = "records") -> None:
    """Every record names a region of the table (or none): a RecordsError otherwise."""
    known = len(regions)
    bad = next((r.region for r in records if r.region >= known and r.region != fmt.REGION_NONE), None)
    if bad is not None:
        raise RecordsError(f"{source}: a record names region {bad}, but the region table has {known} regions")


def records_bytes(records: list[FaultRecord], dropped: int = 0) -> bytes:
    """The bytes of a records file holding `records` (the inverse of parse_records: tests, fakes)."""
    header = fmt.RECORDS_HEADER.pack(fmt.RECORDS_MAGIC, fmt.RECORDS_HEADER.size, fmt.RECORD.size, len(records), dropped)
    return header + b"".join(fmt.RECORD.pack(*r) for r in records)


def region_line(region: Region) -> str:
    """One line of the regions file (the inverse of parse_regions)."""
    return f"{region.index} {region.kind} 0x{region.start:x} 0x{region.end:x} {region.faults} {region.name}"
