"""Read the lossless procfs files of B and C (/proc/<module>/records, regions, processes): bounded, validated.

The layouts are output_format's (RECORDS_HEADER, RECORD, TABLE_LINES). The bytes come from the guest,
where the workload runs as root, so they are untrusted: every size, count and index is checked, and a
malformed file is a RecordsError with one line that says what is wrong, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import NamedTuple

import numpy as np

from ..errors import PfhError
from . import output_format as fmt
from . import records_table

#: The largest records file accepted: a full buffer of the largest capacity plus its header.
MAX_RECORDS_BYTES = 4096 + fmt.MAX_RECORDS_LIMIT * fmt.RECORD.size
MAX_TABLE_BYTES = 16 * 1024 * 1024  # regions and processes: text tables, far smaller in practice
MAX_TABLE_ROWS = 65536  # the region index is a u16; the process table is smaller still
#: The flag bits a record may carry: major, C's class (bits 1-2), remote; since version 2 huge and the IP's.
KNOWN_FLAGS_V1 = fmt.RECORD_FLAG_MAJOR | fmt.RECORD_FLAG_CLASS_MASK | fmt.RECORD_FLAG_REMOTE
KNOWN_FLAGS = KNOWN_FLAGS_V1 | fmt.RECORD_FLAG_HUGE | fmt.RECORD_FLAG_KERNEL_MODE | fmt.RECORD_FLAG_NO_IP
#: The versions read: magic -> (version, record layout, known flags). Version 1 records get tid, exec, ip and
#: service_ns of 0 (RecordsFile.version says they are not known).
_VERSIONS = {
    fmt.RECORDS_MAGIC: (fmt.RECORDS_VERSION, fmt.RECORD, KNOWN_FLAGS),
    fmt.RECORDS_MAGIC_V1: (1, fmt.RECORD_V1, KNOWN_FLAGS_V1),
}


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
    tid: int = 0  # version 2: the thread that faulted
    exec_seq: int = 0  # version 2: which exec of the process (output_format.EXEC_UNKNOWN: not known)
    ip: int = 0  # version 2: the user IP (see flags: KERNEL_MODE, NO_IP)
    service_ns: int = 0  # version 2: entry of the fault's first handle_mm_fault() attempt to its return

    @property
    def page(self) -> int:
        return self.address >> 12

    @property
    def access(self) -> str:
        return fmt.ACCESS_KINDS[self.access_index]

    @property
    def major(self) -> bool:
        return bool(self.flags & fmt.RECORD_FLAG_MAJOR)

    @property
    def huge(self) -> bool:
        return bool(self.flags & fmt.RECORD_FLAG_HUGE)

    @property
    def ip_mode(self) -> str:
        """ "user" (the faulting instruction), "kernel" (the system call's user IP) or "none" (no IP)."""
        if self.flags & fmt.RECORD_FLAG_NO_IP:
            return "none"
        return "kernel" if self.flags & fmt.RECORD_FLAG_KERNEL_MODE else "user"


@dataclass(frozen=True)
class RecordsFile:
    """The contents of /proc/<module>/records."""

    table: np.ndarray = field(compare=False)  # records_table.DTYPE, in buffer order (the order of their slots)
    dropped: int  # faults the module saw after its buffer was full
    version: int = fmt.RECORDS_VERSION  # 1: tid, exec_seq, ip and service_ns are not known (0)

    @cached_property
    def records(self) -> list[FaultRecord]:
        """The records as tuples (made on first use: a million take about half a second)."""
        return to_records(self.table)


def to_records(table: np.ndarray) -> list[FaultRecord]:
    """FaultRecord tuples of a records_table array."""
    return list(map(partial(tuple.__new__, FaultRecord), table.tolist()))


@dataclass(frozen=True)
class Region:
    """One line of /proc/<module>/regions: a named range of the address space."""

    index: int
    kind: str  # one of output_format.REGION_KINDS
    start: int  # first address
    end: int  # end address (exclusive)
    faults: int  # faults the module attributed to it
    name: str  # "[heap]", "libc.so.6", ...
    offset: int = 0  # the file offset at start (a file's region; 0 otherwise or in an older regions file)
    path: str = ""  # the file's full path ("": none, or not known in an older regions file)


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
    known = _VERSIONS.get(magic)
    if known is None:
        what = "from another pfharness version" if magic.startswith(b"PFHREC") else "not a pf_probe records file"
        raise RecordsError(
            f"{source}: {what} (magic {magic!r}; this pfharness reads {fmt.RECORDS_MAGIC!r} and "
            f"{fmt.RECORDS_MAGIC_V1!r}): read it with the pfharness that made it, or run again"
        )
    version, layout, known_flags = known
    if header_size != header.size or record_size != layout.size:
        raise RecordsError(
            f"{source}: header of {header_size} bytes and records of {record_size} bytes, expected "
            f"{header.size} and {layout.size} (version {version}): the module and pfharness are of different "
            "versions (rebuild)"
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
    table = records_table.from_bytes(memoryview(data)[header.size :], count, version)
    problem = records_table.check(table, known_flags, source)
    if problem:
        raise RecordsError(problem)
    return RecordsFile(table=table, dropped=dropped, version=version)


def _table_lines(text: str, shape: str, source: str) -> list[dict]:
    if len(text) > MAX_TABLE_BYTES:
        raise RecordsError(f"{source}: {len(text)} characters, more than {MAX_TABLE_BYTES}")
    rows = []
    older = fmt.REGION_LINE_V1 if shape == "region" else None  # a regions file from before offset and path
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        values = fmt.TABLE_LINES[shape].parse(line) or (older.parse(line) if older else None)
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
        if values.get("path") == "-":
            values["path"] = ""
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


def records_bytes(records: list[FaultRecord], dropped: int = 0, *, version: int = fmt.RECORDS_VERSION) -> bytes:
    """The bytes of a records file holding `records` (the inverse of parse_records: tests, fakes); version 1 keeps
    each record's first six fields."""
    magic, layout = (fmt.RECORDS_MAGIC_V1, fmt.RECORD_V1) if version == 1 else (fmt.RECORDS_MAGIC, fmt.RECORD)
    header = fmt.RECORDS_HEADER.pack(magic, fmt.RECORDS_HEADER.size, layout.size, len(records), dropped)
    return header + records_table.to_bytes(records_table.from_tuples(records), version)


def region_line(region: Region) -> str:
    """One line of the regions file (the inverse of parse_regions)."""
    return (
        f"{region.index} {region.kind} 0x{region.start:x} 0x{region.end:x} {region.faults} {region.name} "
        f"offset={region.offset:#x} path={region.path or '-'}"
    )
