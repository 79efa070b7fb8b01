"""The records of a records file as one numpy structured array over its bytes: read and validated at memory speed.

The dtype is made from output_format's struct layouts (RECORD, RECORD_V1), so the one contract stays there. A
million records are a 48 MB array; nothing per record runs in Python. FaultRecord tuples (records_file) are made
from the array only when a caller wants them (the tables, the pictures).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from . import output_format as fmt

#: struct's codes in the record layouts, as numpy's little-endian types.
_NUMPY_OF = {"Q": "<u8", "I": "<u4", "H": "<u2", "B": "u1"}
#: The names of a record's fields, in the order of output_format.RECORD (as records_file.FaultRecord's).
FIELDS = ("t_ns", "address", "tgid", "region", "access_index", "flags", "tid", "exec_seq", "ip", "service_ns")


def _dtype(layout: struct.Struct) -> np.dtype:
    codes = layout.format.lstrip("<")
    dtype = np.dtype([(name, _NUMPY_OF[code]) for name, code in zip(FIELDS, codes, strict=False)])
    assert dtype.itemsize == layout.size, "the numpy layout is output_format's"
    return dtype


DTYPE = _dtype(fmt.RECORD)  # version 2: 48 bytes
DTYPE_V1 = _dtype(fmt.RECORD_V1)  # version 1: 24 bytes, the first six fields


def from_bytes(body: memoryview | bytes, count: int, version: int) -> np.ndarray:
    """The `count` records of `body` (the file after its header) as a version-2 array; a version-1 file's
    records get tid, exec_seq, ip and service_ns of 0. Read-only for version 2 (a view of `body`)."""
    if version != 1:
        return np.frombuffer(body, dtype=DTYPE, count=count)
    old = np.frombuffer(body, dtype=DTYPE_V1, count=count)
    table = np.zeros(count, dtype=DTYPE)
    for name in DTYPE_V1.names or ():
        table[name] = old[name]
    return table


def check(table: np.ndarray, known_flags: int, source: str) -> str | None:
    """What is wrong with the records' access kinds or flags (the message of a RecordsError), or None."""
    if not len(table):
        return None
    access = int(table["access_index"].max())
    if access >= len(fmt.ACCESS_KINDS):
        return f"{source}: a record has access kind {access} (known: 0..2)"
    if (table["flags"] & (~known_flags & 0xFF)).any():
        return f"{source}: a record has unknown flag bits (known: {known_flags:#x})"
    return None


def bad_region(table: np.ndarray, regions: int) -> int | None:
    """The first region index a record names that the table of `regions` regions lacks (REGION_NONE is none)."""
    region = table["region"]
    bad = np.flatnonzero((region >= regions) & (region != fmt.REGION_NONE))
    return int(region[bad[0]]) if len(bad) else None


def from_tuples(rows: Sequence[tuple[int, ...]]) -> np.ndarray:
    """An array of records given as tuples of FIELDS' values (tests, fakes, the study's saved records)."""
    return np.array([tuple(r) for r in rows], dtype=DTYPE) if rows else np.zeros(0, dtype=DTYPE)


def to_bytes(table: np.ndarray, version: int = fmt.RECORDS_VERSION) -> bytes:
    """The records' bytes as the module writes them (version 1: each record's first six fields)."""
    if version != 1:
        return table.astype(DTYPE, copy=False).tobytes()
    old = np.zeros(len(table), dtype=DTYPE_V1)
    for name in DTYPE_V1.names or ():
        old[name] = table[name]
    return old.tobytes()
