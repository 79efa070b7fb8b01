"""Run directories: the guest's files read as untrusted input, the CSVs, and `pfharness plot` re-drawing them."""

from __future__ import annotations

import csv
import json
import os
import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pfharness.cli import app
from pfharness.errors import SetupError
from pfharness.results import folded, pictures, run_dir
from pfharness.results import output_format as fmt
from pfharness.results.records_file import FaultRecord, RecordsError, Region, records_bytes, region_line

runner = CliRunner()

REGIONS = [
    Region(0, "code", 0x555555554000, 0x555555556000, 3, "walk"),
    Region(1, "heap", 0x555555559000, 0x55555557A000, 2, "[heap]"),
    Region(2, "anon", 0x7F0000000000, 0x7F0000100000, 256, "[anon]"),
    Region(3, "file", 0x7FFFF7DD3000, 0x7FFFF7FA8000, 4, "libc.so.6"),
]


def walk_records(order: list[int]) -> list[FaultRecord]:
    """A small walk: a few start-up faults, then 256 pages of [anon] in `order` (pid 7), libc by pid 8."""
    code = 0x555555554000
    recs = [FaultRecord(t, code + t * 4096, 7, 0, 2, 0, 7, 1, code + t * 4096, 900) for t in range(3)]
    recs += [FaultRecord(10, 0x555555559000, 7, 1, 1, 0), FaultRecord(11, 0x555555579000, 7, 1, 1, 0)]
    recs += [FaultRecord(100 + i * 10, 0x7F0000000000 + p * 4096, 7, 2, 1, 0) for i, p in enumerate(order)]
    recs += [FaultRecord(5000 + i, 0x7FFFF7DD3000 + i * 4096 * 100, 8, 3, 0, 1) for i in range(4)]
    recs.append(FaultRecord(6000, 0x12345000, 7, fmt.REGION_NONE, 0, 0))
    return recs


def make_run(path: Path, records: list[FaultRecord], processes: str = "") -> Path:
    (path / "guest").mkdir(parents=True)
    (path / "guest" / "records").write_bytes(records_bytes(records, dropped=2))
    (path / "guest" / "regions").write_text("".join(region_line(r) + "\n" for r in REGIONS))
    if processes:
        (path / "guest" / "processes").write_text(processes)
    info = {"command": ["python3", "walk.py"], "kernel_release": "6.1.0-test", "pid": 7, "comm": "python3"}
    (path / "run.json").write_text(json.dumps(info))
    return path


def test_csvs_hold_every_record(tmp_path):
    records = walk_records(list(range(256)))
    saved = run_dir.read_saved(make_run(tmp_path / "r", records, "7 1 262 python3\n8 7 4 cat\n") / "guest")
    assert saved is not None and saved.records == records and saved.dropped == 2
    run_dir.write_csvs(tmp_path / "r", saved)
    rows = list(csv.DictReader((tmp_path / "r" / "records.csv").open()))
    assert len(rows) == len(records)
    assert rows[0] == {
        "time_ns": "0",
        "address": "0x555555554000",
        "page": "0x555555554",
        "pid": "7",
        "region": "0",
        "kind": "code",
        "access": "exec",
        "major": "0",
        "tid": "7",
        "exec": "1",
        "huge": "0",
        "ip": "0x555555554000",
        "ip_mode": "user",
        "service_ns": "900",
    }
    assert rows[-2]["major"] == "1" and rows[-2]["kind"] == "file" and rows[-2]["access"] == "read"
    assert rows[-1]["region"] == "" and rows[-1]["kind"] == ""  # no region (the module's table was full)
    regions = list(csv.DictReader((tmp_path / "r" / "regions.csv").open()))
    assert [r["name"] for r in regions] == ["walk", "[heap]", "[anon]", "libc.so.6"]
    procs = list(csv.reader((tmp_path / "r" / "processes.csv").open()))
    assert procs == [["pid", "ppid", "faults", "comm"], ["7", "1", "262", "python3"], ["8", "7", "4", "cat"]]


def test_a_version_1_records_file_is_read_with_its_new_columns_empty(tmp_path):
    """A run directory saved before the records' version 2: read, its records.csv has the columns of version
    2 with tid .. service_ns empty, and the summary says which version it was."""
    records = walk_records([0, 1])
    run = make_run(tmp_path / "r", [])
    (run / "guest" / "records").write_bytes(records_bytes(records, dropped=2, version=1))
    saved = run_dir.read_saved(run / "guest")
    assert saved is not None and saved.version == 1 and saved.summary()["record_version"] == 1
    assert [r[:6] for r in saved.records] == [r[:6] for r in records]
    run_dir.write_csvs(run, saved)
    rows = list(csv.DictReader((run / "records.csv").open()))
    assert rows[0]["pid"] == "7" and rows[0]["access"] == "exec"
    assert {rows[0][k] for k in ("tid", "exec", "huge", "ip", "ip_mode", "service_ns")} == {""}


def test_guest_files_are_untrusted(tmp_path):
    guest = make_run(tmp_path / "r", walk_records([0, 1])) / "guest"
    secret = tmp_path / "secret"
    secret.write_bytes((guest / "records").read_bytes())
    (guest / "records").unlink()
    (guest / "records").symlink_to(secret)
    with pytest.raises(RecordsError, match="symbolic link"):
        run_dir.read_saved(guest)
    (guest / "records").unlink()
    os.mkfifo(guest / "records")
    with pytest.raises(RecordsError, match="not a regular file"):
        run_dir.read_saved(guest)
    (guest / "records").unlink()
    assert run_dir.read_saved(guest) is None  # no records file: nothing saved (module A)


def test_plot_redraws_the_folded_plot(tmp_path):
    records = walk_records(list(range(256)))
    run = make_run(tmp_path / "r", records)
    result = runner.invoke(app, ["plot", str(run)])
    assert result.exit_code == 0, result.output
    expected = folded.draw(records, REGIONS, pid=7, comm="python3")
    assert result.output.splitlines() == expected.lines
    names = [b.name for b in expected.bands]
    assert names == ["?", "walk", "[heap]", "[anon]", "libc.so.6"]


def first_mark(row: str) -> int:
    cells = row[fmt.LABEL_WIDTH + 2 : fmt.LABEL_WIDTH + 2 + fmt.PLOT_COLS]
    return len(cells) - len(cells.lstrip()) if cells.strip() else -1


def test_range_shows_the_order_inside_a_region(tmp_path):
    """--range [anon]: a walk in order is a diagonal (each page row holds the columns in order), at random not."""
    seq = runner.invoke(
        app, ["plot", str(make_run(tmp_path / "s", walk_records(list(range(256))))), "--range", "[anon]"]
    )
    assert seq.exit_code == 0, seq.output
    rows = [
        ln for ln in seq.output.splitlines() if ln[fmt.LABEL_WIDTH + 1 : fmt.LABEL_WIDTH + 2] in "|~" and len(ln) > 80
    ]
    rows = rows[: fmt.PLOT_ROWS]
    firsts = [first_mark(row) for row in rows]
    assert firsts == sorted(firsts, reverse=True) and len(set(firsts)) == fmt.PLOT_ROWS  # a diagonal, top row last
    assert "(only region [anon]: 256 of 266 faults)" in seq.output
    import random

    order = list(range(256))
    random.Random(3).shuffle(order)
    rnd = runner.invoke(app, ["plot", str(make_run(tmp_path / "x", walk_records(order))), "--range", "[anon]"])
    rows = [ln for ln in rnd.output.splitlines() if len(ln) > 80][: fmt.PLOT_ROWS]
    firsts = [first_mark(row) for row in rows]
    assert firsts != sorted(firsts, reverse=True)
    pages = runner.invoke(app, ["plot", str(tmp_path / "s"), "--range", "0x7f0000000-0x7f000000f"])
    assert pages.exit_code == 0 and "(only pages 0x7f0000000-0x7f000000f: 16 of 266 faults)" in pages.output


def test_pid_and_bad_choices(tmp_path):
    run = make_run(tmp_path / "r", walk_records(list(range(256))), "7 1 262 python3\n8 7 4 cat\n")
    one = runner.invoke(app, ["plot", str(run), "--pid", "8"])
    assert one.exit_code == 0 and "(only pid 8: 4 of 266 faults)" in one.output
    assert "Page faults of process 8 (cat): virtual page number over time" in one.output
    assert "band 0 name=libc.so.6 pages=0x7ffff7dd3-0x7ffff7eff rows=30 faults=4" in one.output
    for args, words in (
        (["--pid", "9"], "no fault of that process in this run (its processes: 7, 8)"),
        (["--range", "nope"], "regions: [anon], [heap], libc.so.6, walk"),
        (["--range", "0x10-0x1"], "LO <= HI"),
        (["--scale", "log"], "use folded or linear"),
        (["--png", "x.svg"], "must end in .png"),
    ):
        result = runner.invoke(app, ["plot", str(run), *args])
        assert result.exit_code == 2 and words in result.output, (args, result.output)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["plot", str(empty)])
    assert result.exit_code == 2 and "is not a run directory" in result.output
    (run / "guest" / "records").write_bytes(b"PFHREC1\0" + b"\0" * 10)
    result = runner.invoke(app, ["plot", str(run)])
    assert result.exit_code == 2 and "shorter than the 32-byte header" in result.output


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_png_and_svg_pictures(tmp_path):
    run = make_run(tmp_path / "r", walk_records(list(range(256))), "7 1 262 python3\n8 7 4 cat\n")
    png, svg = tmp_path / "p.png", tmp_path / "p.svg"
    result = runner.invoke(app, ["plot", str(run), "--png", str(png), "--svg", str(svg)])
    assert result.exit_code == 0, result.output
    assert png_size(png) == (int(pictures.WIDTH_IN * pictures.DPI), int(pictures.HEIGHT_IN * pictures.DPI))
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg") and root.get("width", "").startswith("864pt")  # 12 in x 72 pt
    # matplotlib keeps each text as a comment-free <g> with the text in its id or as a <text>: ask it directly
    drawable = __import__("pfharness.plot", fromlist=["load_drawable"]).load_drawable(run)
    fig = pictures.build_figure(
        pictures.Picture(drawable.records, drawable.regions, title="T", subtitle="S", processes=drawable.processes)
    )
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["?  (1)", "walk  (3)", "[heap]  (2)", "[anon]  (256)", "libc.so.6  (4)"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "[anon]: 256",
        "libc.so.6: 4",
        "walk: 3",
        "[heap]: 2",
        "?: 1",
    ]
    assert ax.get_title() == "T\nS" and ax.get_xlabel() == "time since the first fault (s)"
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["0x12345", "0x555555554"]
    by_pid = pictures.build_figure(
        pictures.Picture(drawable.records, drawable.regions, title="T", color_by="pid", processes=drawable.processes)
    )
    assert [t.get_text() for t in by_pid.axes[0].get_legend().get_texts()] == ["pid 7 (python3): 262", "pid 8 (cat): 4"]


def test_svg_text_is_text(tmp_path):
    """SVG keeps its labels as text (svg.fonttype none), so they can be searched and read."""
    run = make_run(tmp_path / "r", walk_records(list(range(256))))
    svg = tmp_path / "p.svg"
    assert runner.invoke(app, ["plot", str(run), "--svg", str(svg), "--range", "[anon]"]).exit_code == 0
    texts = ["".join(e.itertext()) for e in ET.parse(svg).getroot().iter() if e.tag.endswith("}text")]
    for words in ("[anon]  (256)", "time since the run's first fault (s)", "region: faults", "[anon]: 256"):
        assert words in texts, (words, texts)
    title = next(t for t in texts if "walk.py" in t)
    assert "6.1.0-test" in title


def test_without_matplotlib_one_line_names_the_extra(tmp_path, monkeypatch):
    run = make_run(tmp_path / "r", walk_records([0]))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SetupError, match=r"pip install 'pfharness\[plot\]'"):
        pictures._pyplot()
    result = runner.invoke(app, ["plot", str(run), "--png", str(tmp_path / "p.png")])
    assert result.exit_code == 126
    assert result.output.strip().splitlines()[-1] == (
        "pfharness: error: pictures need matplotlib, which is not installed: pip install 'pfharness[plot]'"
    )


def test_a_dollar_in_the_command_is_drawn_as_text(tmp_path):
    """A workload's command is untrusted text: `sh -c '... "$1" ...'` once crashed matplotlib's TeX parser."""
    run = make_run(tmp_path / "r", walk_records(list(range(256))))
    info = json.loads((run / "run.json").read_text())
    info["command"] = ["sh", "-c", 'cp "$1"/a.c /tmp && kdir=$2 && shift 2 && exec make -C "$kdir" M=/tmp "$@"', "x"]
    (run / "run.json").write_text(json.dumps(info))
    svg = tmp_path / "p.svg"
    result = runner.invoke(app, ["plot", str(run), "--svg", str(svg)])
    assert result.exit_code == 0, result.output
    texts = ["".join(e.itertext()) for e in ET.parse(svg).getroot().iter() if e.tag.endswith("}text")]
    assert any('cp "$1"/a.c /tmp && kdir=$2 && shift 2 && exec make' in t for t in texts), texts


@pytest.mark.parametrize(
    "command",
    [
        ["sysbench", "memory", "--memory-block-size=16M", "--memory-total-size=256M", "run"],  # cut once (123 chars)
        ["sh", "-c", "rm -rf /tmp/pfh-kbuild && mkdir /tmp/pfh-kbuild && cp " + "x " * 200],
    ],
)
def test_a_long_command_is_cut_so_that_the_title_fits_the_picture(tmp_path, command):
    run = make_run(tmp_path / "r", walk_records(list(range(256))))
    info = json.loads((run / "run.json").read_text())
    info.update(command=command, kernel_release="6.12.57+deb13-rt-amd64", pid=4194304)
    (run / "run.json").write_text(json.dumps(info))
    svg = tmp_path / "p.svg"
    assert runner.invoke(app, ["plot", str(run), "--svg", str(svg)]).exit_code == 0
    texts = ["".join(e.itertext()) for e in ET.parse(svg).getroot().iter() if e.tag.endswith("}text")]
    title = next(t for t in texts if t.startswith("Page faults of `"))
    assert " ...` (pid 4194304), kernel 6.12.57+deb13-rt-amd64" in title, title
    fig = pictures.build_figure(pictures.Picture(walk_records([0]), REGIONS, title=title, subtitle="S"))
    renderer = fig.canvas.get_renderer()
    box = fig.axes[0].title.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width, (box, fig.bbox.width)


def test_a_long_region_name_is_cut_in_the_legend():
    regions = [
        *REGIONS[:3],
        Region(3, "file", 0x7FFFF7DD3000, 0x7FFFF7FA8000, 4, "mmap.cpython-311-x86_64-linux-gnu.so"),
    ]
    fig = pictures.build_figure(pictures.Picture(walk_records(list(range(256))), regions, title="T"))
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "mmap.cpython-311-x86_64-lin...: 4" in texts, texts
    renderer = fig.canvas.get_renderer()
    assert fig.axes[0].get_legend().get_window_extent(renderer).x1 <= fig.bbox.width
