"""`bench/run.py --only records`: a million records read, validated and written on the host (no VM).

A records file of 1 Mi version-2 records shaped like a real run's (time rising, addresses in a few regions, IPs
in the program's code, service times of microseconds) and its regions file are written into a run directory's
guest/; then run_dir.read_saved() (read, validate) and run_dir.write_csvs() (records.csv, records.parquet,
regions.csv) are timed, the fastest of a few rounds (other jobs on the host only ever add time).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from pfharness.results import output_format as fmt
from pfharness.results import records_parquet, records_table, run_dir
from pfharness.results.records_file import Region, region_line

RECORDS = 1 << 20
BEFORE = {"read_s": 6.5, "write_s": 15.1}  # pfharness before issue 26 (per-row Python), the figures


def _table(n: int) -> np.ndarray:
    rng = np.random.default_rng(26)
    t = np.zeros(n, dtype=records_table.DTYPE)
    t["t_ns"] = 5_000_000_000 + np.cumsum(rng.integers(200, 3000, n, dtype=np.uint64))
    t["region"] = rng.choice([0, 1, 2, 3, 4], n, p=[0.05, 0.05, 0.6, 0.1, 0.2])
    t["address"] = np.array([0x55550000_0000, 0x55550010_0000, 0x7F000000_0000, 0x7FFF0000_0000, 0x7F100000_0000])[
        t["region"]
    ] + rng.integers(0, 1 << 30, n, dtype=np.uint64)
    t["tgid"], t["tid"] = 4242, rng.choice([4242, 4243, 4244], n)
    t["access_index"] = rng.choice([0, 1, 2], n, p=[0.3, 0.65, 0.05])
    t["flags"] = rng.choice([0, fmt.RECORD_FLAG_MAJOR, fmt.RECORD_FLAG_KERNEL_MODE], n, p=[0.97, 0.01, 0.02])
    t["ip"] = 0x55550000_1000 + rng.integers(0, 1 << 16, n, dtype=np.uint64)
    t["service_ns"] = rng.lognormal(7.5, 1.0, n).astype(np.uint64)
    return t


def _regions() -> list[Region]:
    kinds = [("code", "prog"), ("data", "prog"), ("anon", "[anon]"), ("stack", "[stack]"), ("file", "libc.so.6")]
    return [Region(i, k, 0x1000 * i, 0x1000 * (i + 1), 0, name) for i, (k, name) in enumerate(kinds)]


def measure(rounds: int = 5, n: int = RECORDS) -> dict:
    """The fastest round's seconds (wall and CPU) of reading and of writing `n` records."""
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="pfh-bench-records-") as tmp:
        directory = Path(tmp)
        guest = directory / run_dir.GUEST_SUBDIR
        guest.mkdir()
        header = fmt.RECORDS_HEADER.pack(fmt.RECORDS_MAGIC, fmt.RECORDS_HEADER.size, fmt.RECORD.size, n, 0)
        (guest / "records").write_bytes(header + _table(n).tobytes())
        (guest / "regions").write_text("".join(region_line(r) + "\n" for r in _regions()))
        for _ in range(rounds):
            times = [time.perf_counter(), time.process_time()]
            saved = run_dir.read_saved(guest)
            assert saved is not None and len(saved.table) == n
            times += [time.perf_counter(), time.process_time()]
            run_dir.write_csvs(directory, saved)
            times += [time.perf_counter(), time.process_time()]
            got = {
                "read_s": times[2] - times[0],
                "read_cpu_s": times[3] - times[1],
                "write_s": times[4] - times[2],
                "write_cpu_s": times[5] - times[3],
            }
            if not best or got["read_s"] + got["write_s"] < best["read_s"] + best["write_s"]:
                best = got
        sizes = {f: (directory / f).stat().st_size for f in (run_dir.RECORDS_CSV, run_dir.RECORDS_PARQUET)}
    return {
        "records": n,
        "rounds": rounds,
        "parquet": records_parquet.available(),
        **{k: round(v, 3) for k, v in best.items()},
        "csv_mib": round(sizes[run_dir.RECORDS_CSV] / 2**20, 1),
        "parquet_mib": round(sizes[run_dir.RECORDS_PARQUET] / 2**20, 1),
    }


def markdown(r: dict) -> list[str]:
    """BENCHMARKS.md's section."""
    total, cpu = r["read_s"] + r["write_s"], r["read_cpu_s"] + r["write_cpu_s"]
    before = BEFORE["read_s"] + BEFORE["write_s"]
    return [
        "## Records on the host (a million records)",
        "",
        f"`bench/run.py --only records`: {r['records']:,} version-2 records (48 bytes each) shaped like a real run's, "
        "in a run directory's guest/; the host reads and validates them (`run_dir.read_saved`: numpy over the "
        "file's bytes) and writes records.csv (numpy, byte-identical to the csv.writer it replaced), "
        f"records.parquet (pyarrow, zstd) and regions.csv. Fastest of {r['rounds']} rounds; CPU time beside the "
        "wall time (the machine is shared: wall time above CPU time is waiting for a core).",
        "",
        "| what | before (per-row Python) | now, wall | now, CPU |",
        "| --- | ---: | ---: | ---: |",
        f"| read and validate | {BEFORE['read_s']:.1f} s | {r['read_s']:.3f} s | {r['read_cpu_s']:.3f} s |",
        f"| write records.csv ({r['csv_mib']} MiB), records.parquet ({r['parquet_mib']} MiB), regions.csv | "
        f"{BEFORE['write_s']:.1f} s (CSV only) | {r['write_s']:.3f} s | {r['write_cpu_s']:.3f} s |",
        f"| **in all** | **{before:.1f} s** | **{total:.3f} s** | **{cpu:.3f} s** |",
        "",
    ]
