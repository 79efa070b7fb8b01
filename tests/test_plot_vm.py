"""`pfharness run --png/--svg` and `pfharness plot` on real runs of B (QEMU, TCG): every record comes back as
CSV, the Python re-draw equals the plot the module printed, and a walk in order gives a diagonal where a
random walk gives a scatter, in the ASCII plot with --range and in the picture."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pfharness import assets
from pfharness.plot import load_drawable
from pfharness.results import folded, pictures, run_dir, transcript
from pfharness.results import output_format as fmt

REPO = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.vm,
    pytest.mark.skipif(
        not (REPO / "kmod_templates" / "common" / "procfs.c.j2").exists(),
        reason="needs B with /proc/pf_probe_B/records (the kmod side of issue 11)",
    ),
]
PFHARNESS = [sys.executable, "-m", "pfharness.cli"]
PAGES = 2048


def run_walk(out: Path, mode: str) -> tuple[dict, Path]:
    picture = out / f"{mode}.png"
    argv = [*PFHARNESS, "run", "--module", "B", "--accel", "tcg", "--out", str(out), "--json"]
    argv += ["--png", str(picture), "--svg", str(out / f"{mode}.svg"), "--"]
    argv += ["python3", str(assets.vm_file("walk.py")), mode, str(PAGES)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout), picture


@pytest.fixture(scope="module")
def walks(tmp_path_factory):
    out = tmp_path_factory.mktemp("walks")
    return {mode: run_walk(out, mode) for mode in ("sequential", "random")}


def plot_cells(lines: list[str]) -> list[str]:
    """The cells of the plot rows (top first)."""
    rows = [ln for ln in lines if fmt.plot_row_regex().match(ln)][: fmt.PLOT_ROWS]
    return [ln[fmt.LABEL_WIDTH + 2 : fmt.LABEL_WIDTH + 2 + fmt.PLOT_COLS] for ln in rows]


def first_marks(lines: list[str]) -> list[int]:
    """Per plot row (top first): the column of its first mark, -1 for an empty row."""
    return [len(c) - len(c.lstrip()) if c.strip() else -1 for c in plot_cells(lines)]


@pytest.mark.parametrize("mode", ["sequential", "random"])
def test_every_record_comes_back_and_the_redraw_is_the_module_plot(walks, mode):
    data, _ = walks[mode]
    directory = Path(data["run_dir"])
    recorded = data["counters"]["recorded"]
    assert data["records_file"] == {**data["records_file"], "records": recorded, "error": None}
    with open(directory / run_dir.RECORDS_CSV) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == recorded >= PAGES
    start, end = (
        int(x, 16) for x in re.search(r"region=(0x[0-9a-f]+)-(0x[0-9a-f]+)", data["workload_output"]).groups()
    )
    walked = [r for r in rows if start <= int(r["address"], 16) < end]
    # One region, all writes (Python's mmap(-1, n) is MAP_SHARED: a shmem file, "dev/zero", not [anon]).
    assert len(walked) == PAGES and {r["access"] for r in walked} == {"write"}
    assert len({r["region"] for r in walked}) == 1
    printed = transcript.parse_transcript(Path(data["transcript"]))[-1].report.plots[0].lines
    run = load_drawable(directory)
    assert folded.draw(run.records, run.regions, pid=data["pid"], comm=data["comm"]).lines == printed
    again = subprocess.run([*PFHARNESS, "plot", str(directory)], capture_output=True, text=True, check=True)
    assert again.stdout.splitlines() == printed


def test_in_order_a_diagonal_at_random_a_scatter(walks):
    firsts, marks = {}, {}
    for mode, (data, _) in walks.items():
        start, end = re.search(r"region=0x([0-9a-f]+)-0x([0-9a-f]+)", data["workload_output"]).groups()
        page_range = f"{int(start, 16) >> 12:#x}-{(int(end, 16) >> 12) - 1:#x}"
        done = subprocess.run(
            [
                *PFHARNESS,
                "plot",
                data["run_dir"],
                "--range",
                page_range,
                "--png",
                str(Path(data["run_dir"]) / "walk.png"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert f"(only pages {page_range}: {PAGES} of" in done.stdout
        firsts[mode] = first_marks(done.stdout.splitlines())
        marks[mode] = [len(c.replace(" ", "")) for c in plot_cells(done.stdout.splitlines())]
    # In order: each row's ~68 pages are touched one after the other (a few cells), rows bottom to top (the
    # first mark moves left from the top row down): a diagonal. At random: every row is touched all through
    # the walk (many cells per row). Pauses of the emulated CPU leave empty columns in both.
    seq = firsts["sequential"]
    assert -1 not in seq and seq == sorted(seq, reverse=True) and seq[0] - seq[-1] >= 50, seq
    assert max(marks["sequential"]) <= 8, marks  # 68 pages a row, ~29 faults a column: 2-3 cells, a few more at a pause
    assert min(marks["random"]) >= 20, marks  # about every column the walk was running in


def test_pictures_of_the_runs(walks):
    for mode, (data, png) in walks.items():
        with open(png, "rb") as f:
            head = f.read(24)
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(head[16:20], "big") == int(pictures.WIDTH_IN * pictures.DPI)
        assert int.from_bytes(head[20:24], "big") == int(pictures.HEIGHT_IN * pictures.DPI)
        svg = png.with_suffix(".svg").read_text()
        assert f"walk.py {mode} {PAGES}" in svg and data["kernel_release"] in svg and "dev/zero" in svg
