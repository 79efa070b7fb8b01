"""records.csv (numpy, records_csv.py) against the csv.writer it replaced, byte for byte; records.parquet read back."""

from __future__ import annotations

import csv
import io
import random

import pytest

from pfharness.results import output_format as fmt
from pfharness.results import records_csv, records_parquet, records_table
from pfharness.results.records_file import FaultRecord

U64 = (1 << 64) - 1
KINDS = ["code", "data", "heap", "file"]


def old_rows(records: list[FaultRecord], kinds: list[str], version: int):
    """The per-row writer of pfharness before issue 26 (run_dir._csv_rows), kept here as the oracle."""
    access = fmt.ACCESS_KINDS
    for r in records:
        row = (
            r.t_ns,
            f"0x{r.address:x}",
            f"0x{r.address >> 12:x}",
            r.tgid,
            "" if r.region == fmt.REGION_NONE else r.region,
            kinds[r.region] if r.region < len(kinds) else "",
            access[r.access_index],
            1 if r.flags & fmt.RECORD_FLAG_MAJOR else 0,
        )
        if version == 1:
            yield (*row, "", "", "", "", "", "")
        else:
            yield (
                *row,
                r.tid,
                "" if r.exec_seq == fmt.EXEC_UNKNOWN else r.exec_seq,
                1 if r.flags & fmt.RECORD_FLAG_HUGE else 0,
                f"0x{r.ip:x}",
                r.ip_mode,
                r.service_ns,
            )


def old_csv(records: list[FaultRecord], kinds: list[str], version: int = 2) -> bytes:
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(records_csv.HEADER)
    w.writerows(old_rows(records, kinds, version))
    return out.getvalue().encode()


def new_csv(records: list[FaultRecord], kinds: list[str], version: int = 2) -> bytes:
    out = io.BytesIO()
    records_csv.write(out, records_table.from_tuples(records), kinds, version)
    return out.getvalue()


EDGES = [
    FaultRecord(0, 0, 0, 0, 0, 0),  # every value 0
    FaultRecord(U64, U64, 0xFFFFFFFF, fmt.REGION_NONE, 2, 0x7F, 0xFFFFFFFF, fmt.EXEC_UNKNOWN, U64, U64),
    FaultRecord(1, 0xFFF, 1, 3, 1, fmt.RECORD_FLAG_MAJOR, 1, 0, 0x10, 9),  # page 0x0, last kind
    FaultRecord(10**8, 0x1000, 10**8, 4, 0, fmt.RECORD_FLAG_NO_IP, 10**8, fmt.EXEC_UNKNOWN - 1, 0, 10**8 - 1),
    FaultRecord(99, 0x7FFF_FFFF_F000, 100, 65534, 2, fmt.RECORD_FLAG_KERNEL_MODE, 5, 2, 0x401000, 10**9),
    FaultRecord(10**16, 1 << 63, 7, 2, 1, fmt.RECORD_FLAG_HUGE | fmt.RECORD_FLAG_REMOTE | 0x6, 7, 3, 1, 10**16 + 1),
]


def random_records(n: int, seed: int) -> list[FaultRecord]:
    rnd = random.Random(seed)

    def value(bits: int) -> int:  # all widths, so every digit count and 0 appear
        return rnd.getrandbits(rnd.randint(0, bits))

    regions = [*range(6), fmt.REGION_NONE]
    return [
        FaultRecord(
            *(value(64), value(64), value(32), rnd.choice(regions), rnd.randrange(3), value(7), value(32)),
            *(rnd.choice([0, 1, 12345, fmt.EXEC_UNKNOWN]), value(64), value(64)),
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("version", [2, 1])
def test_records_csv_is_byte_identical_to_the_csv_writer(version):
    records = EDGES + random_records(3000, version)
    assert new_csv(records, KINDS, version) == old_csv(records, KINDS, version)


def test_records_csv_of_no_records_and_no_regions_is_the_header_alone():
    assert new_csv([], []) == old_csv([], []) == (",".join(records_csv.HEADER) + "\n").encode()
    assert new_csv(EDGES, []) == old_csv(EDGES, [])


def test_records_csv_rows_cross_chunks_unchanged(monkeypatch):
    records = random_records(700, 7)
    monkeypatch.setattr(records_csv, "CHUNK", 64)
    assert new_csv(records, KINDS) == old_csv(records, KINDS)


def test_records_parquet_holds_the_csv_values_typed(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    records = EDGES + random_records(200, 3)
    assert records_parquet.write(tmp_path / "r.parquet", records_table.from_tuples(records), KINDS)
    table = pq.read_table(tmp_path / "r.parquet").to_pylist()
    rows = list(csv.DictReader(io.StringIO(old_csv(records, KINDS).decode())))
    assert len(table) == len(rows) == len(records)
    for got, want in zip(table, rows, strict=True):
        assert list(got) == list(records_csv.HEADER)
        assert (got["address"], got["page"], got["ip"]) == tuple(int(want[k], 16) for k in ("address", "page", "ip"))
        assert (got["region"], got["exec"]) == tuple(int(want[k]) if want[k] else None for k in ("region", "exec"))
        assert (got["major"], got["huge"]) == (want["major"] == "1", want["huge"] == "1")
        for k in ("time_ns", "pid", "tid", "service_ns"):
            assert got[k] == int(want[k])
        for k in ("kind", "access", "ip_mode"):
            assert got[k] == want[k]


def test_records_parquet_of_version_1_leaves_the_new_fields_null(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    records_parquet.write(tmp_path / "r.parquet", records_table.from_tuples(EDGES[:3]), KINDS, version=1)
    rows = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert {k: rows[2][k] for k in ("tid", "exec", "huge", "ip", "ip_mode", "service_ns")} == dict.fromkeys(
        ("tid", "exec", "huge", "ip", "ip_mode", "service_ns")
    )
    assert rows[2]["major"] is True and rows[1]["region"] is None


def test_without_pyarrow_no_parquet_is_written_and_the_summary_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(records_parquet, "available", lambda: False)
    assert not records_parquet.write(tmp_path / "r.parquet", records_table.from_tuples(EDGES), KINDS)
    assert not (tmp_path / "r.parquet").exists()
    assert "pip install 'pfharness[parquet]'" in records_parquet.INSTALL_HINT
