"""records.parquet: the records as typed columns for pandas, polars and DuckDB (pyarrow: pfharness[parquet]).

The columns are records.csv's, typed: numbers as unsigned integers (addresses and the IP too, not hexadecimal
text), region and exec null where records.csv leaves them blank, the words (kind, access, ip_mode) dictionary
encoded, major and huge booleans. Without pyarrow no file is written and `available()` says why.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from . import output_format as fmt

INSTALL_HINT = "records.parquet not written: pyarrow is not installed (pip install 'pfharness[parquet]')"


def available() -> bool:
    """Is pyarrow there to write records.parquet?"""
    return importlib.util.find_spec("pyarrow") is not None


def load() -> None:
    """Import pyarrow now when it is installed (write() needs it later)."""
    if available():
        import pyarrow.parquet  # noqa: F401, PLC0415 - optional (pfharness[parquet])


def _words(pa, index: np.ndarray, words: list[str] | tuple[str, ...]):
    return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), pa.array(list(words), pa.string()))


def _arrow_table(pa, table: np.ndarray, kinds: list[str], version: int):
    region, flags = table["region"], table["flags"]
    known = np.minimum(region.astype(np.intp), len(kinds))
    columns = {
        "time_ns": pa.array(table["t_ns"]),
        "address": pa.array(table["address"]),
        "page": pa.array(table["address"] >> 12),
        "pid": pa.array(table["tgid"]),
        "region": pa.array(region, mask=region == fmt.REGION_NONE),
        "kind": _words(pa, known, [*kinds, ""]),
        "access": _words(pa, table["access_index"], fmt.ACCESS_KINDS),
        "major": pa.array((flags & fmt.RECORD_FLAG_MAJOR) != 0),
    }
    v1 = np.ones(len(table), dtype=bool) if version == 1 else np.zeros(len(table), dtype=bool)
    no_ip, kernel = (flags & fmt.RECORD_FLAG_NO_IP) != 0, (flags & fmt.RECORD_FLAG_KERNEL_MODE) != 0
    columns |= {
        "tid": pa.array(table["tid"], mask=v1),
        "exec": pa.array(table["exec_seq"], mask=v1 | (table["exec_seq"] == fmt.EXEC_UNKNOWN)),
        "huge": pa.array((flags & fmt.RECORD_FLAG_HUGE) != 0, mask=v1),
        "ip": pa.array(table["ip"], mask=v1),
        "ip_mode": _words(pa, np.where(no_ip, 2, kernel.astype(np.intp)), fmt.IP_MODES),
        "service_ns": pa.array(table["service_ns"], mask=v1),
    }
    if version == 1:
        columns["ip_mode"] = pa.array([None] * len(table), pa.dictionary(pa.int32(), pa.string()))
    return pa.table(columns)


def write(path: Path, table: np.ndarray, kinds: list[str], version: int = fmt.RECORDS_VERSION) -> bool:
    """Write records.parquet; False (nothing written) without pyarrow."""
    if not available():
        return False
    import pyarrow as pa  # noqa: PLC0415 - optional (pfharness[parquet])
    import pyarrow.parquet as pq  # noqa: PLC0415

    pq.write_table(_arrow_table(pa, table, kinds, version), path, compression="zstd")
    return True
