"""Smoke test: the benchmark runs in a tiny configuration (one round, 500 pages), so it cannot rot.
It prints figures; nothing here judges them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.vm


REPO = Path(__file__).resolve().parent.parent


def test_bench_quick(tmp_path):
    out = tmp_path / "BENCH.md"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--out", str(out)],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    text = out.read_text()
    rows = re.findall(r"^\| (.+?) \| (\d+) \| ([\d.]+)x \|", text, re.M)
    names = [r[0] for r in rows]
    variants = (
        "untraced",
        "bare kprobe (pid filter only)",
        "bare kretprobe (pid filter at entry)",
        "pf_probe_A",
        "pf_probe_B",
        "pf_probe_C",
        "perf stat -e page-faults",
        "perf record -e page-faults -c 1 -d",
        "bpftrace tracepoint:exceptions:page_fault_user",
        "bpftrace kprobe:handle_mm_fault",
        "bpftrace kprobe:handle_mm_fault printf time+address",
    )
    for name in variants:
        assert name in names, (name, names)
    assert dict((r[0], r[2]) for r in rows)["untraced"] == "1.000"
    assert all(int(r[1]) > 0 for r in rows)

    # The deterministic table: guest instructions per fault, each variant run twice.
    section = text.split("## Per-fault cost, deterministic", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (.+?) \| ([\d.]+) \| ([\d., ]+) \| ([-+\d.]+) \| ([\d.]+)x \|", section, re.M)
    assert {r[0] for r in rows} == set(variants)
    in_kernel = ("untraced", "bare kprobe (pid filter only)", "bare kretprobe (pid filter at entry)")
    in_kernel += ("pf_probe_A", "pf_probe_B", "pf_probe_C")
    for name, figure, runs, _added, _ratio in rows:
        values = [float(v) for v in runs.split(",")]
        assert len(values) == 2 and float(figure) > 0, (name, runs)
        if name in in_kernel:
            # The count repeats (within 0.2 % at 20,000 pages: BENCHMARKS.md). Peers with a reader process
            # (perf, bpftrace) are left out here: over 500 pages (8 ms) when their reader runs still varies.
            # The run with no module varies more, for reasons inside the guest not pinned down (6773-7028,
            # 3.8 %, in BENCHMARKS.md's five rounds; 6749.6 and 6915.7 in one CI run): 5 % for it.
            limit = 1.05 if name == "untraced" else 1.02
            assert max(values) / min(values) < limit, (name, runs)
    assert re.search(r"pf_probe_B: [\d.]+x the bare kprobe", section)


def test_bench_grade_section(tmp_path):
    """`--only grade` on two submissions of the grade class: the three configurations (--jobs 1, --jobs 2, a
    local Dask cluster) each grade both as expected; the table counts the VMs the check started."""
    pytest.importorskip("distributed", reason="Dask is pfharness[cluster]: make setup installs it")
    out = tmp_path / "BENCH.md"
    argv = [sys.executable, str(REPO / "bench" / "run.py"), "--only", "grade", "--out", str(out)]
    argv += ["--grade-students", "not-a-tarball,plot-70x30"]
    run = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    section = out.read_text().split("## Grading a class", 1)[1]
    row = r"^\| (.+?) \| (\d+) \| (\d+) \| (\d+) s \| ([\d.]+) \| ([\d.]+), ([\d.]+) \| (.+?) \|$"
    rows = re.findall(row, section, re.M)
    assert [r[0] for r in rows] == ["--jobs 1", "--jobs 2", "Dask, 2 local workers"], section
    for _name, subs, vms, _wall, per_minute, _load, _load_end, expected in rows:
        # not-a-tarball starts no VM; plot-70x30 (A and B, no C) one VM per module
        assert (subs, vms, expected) == ("2", "2", "yes"), section
        assert float(per_minute) > 0
    data = json.loads(out.with_suffix(".json").read_text())["grade"]
    assert data["students"] == ["not-a-tarball", "plot-70x30"]


def test_bench_scale_section(tmp_path):
    """`--only scale --quick` (two small max_records): nothing dropped below capacity, and the bytes a record the
    section states are the measured vmalloc growth, which is the record layout's size (output_format.RECORD)."""
    from pfharness.results import output_format as fmt

    out = tmp_path / "BENCH.md"
    argv = [sys.executable, str(REPO / "bench" / "run.py"), "--only", "scale", "--quick", "--out", str(out)]
    run = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    section = out.read_text().split("## Scale (pf_probe_B)", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([\d,]+) \| ([\d,]+) \| ([\d.]+) MiB \| ([\d,]+) \| (\d+) \| (\d+) ms \|$", section, re.M)
    assert [r[0] for r in rows] == ["131,072", "262,144"], section
    assert all(r[4] == "0" and 0 < int(r[3].replace(",", "")) <= 100_000 for r in rows), section
    [measured] = re.findall(r"([\d.]+) bytes a record at max_records=262,144", section)
    assert abs(float(measured) - fmt.RECORD.size) < 1.0, section
    assert f"the record is {fmt.RECORD.size} bytes, records version {fmt.RECORDS_VERSION}" in section
