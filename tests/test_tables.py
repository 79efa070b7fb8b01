"""The top-5 tables (results/tables.py) of saved records, in the summary, --json and `pfharness plot --table`."""

from __future__ import annotations

from test_run_dir import REGIONS, make_run, walk_records
from typer.testing import CliRunner

from pfharness.cli import app
from pfharness.results import output_format as fmt
from pfharness.results.records_file import FaultRecord, ProcessEntry, Region
from pfharness.results.tables import TopRow, table_lines, top_tables

runner = CliRunner()


def test_one_process_tables_count_each_region_and_library():
    # 3 faults in walk, 2 in [heap], 256 in [anon], 1 with no region: one process, so no process table.
    recs = [r for r in walk_records(list(range(256))) if r.tgid == 7]
    t = top_tables(recs, REGIONS)
    assert t.total == 262
    assert [(r.name, r.faults) for r in t.regions] == [("[anon]", 256), ("walk", 3), ("[heap]", 2), ("?", 1)]
    assert t.regions[0].percent == round(100 * 256 / 262, 1)
    assert [(r.name, r.faults) for r in t.libraries] == [("walk", 3)]  # the program's own code is a file too
    assert t.processes == []


def test_libraries_group_file_regions_by_name_and_keep_five():
    # Two mappings of libc.so.6 (two regions) are one library; seven libraries are cut to the top five.
    regions = [Region(i, "file", i << 20, (i << 20) + 4096, 0, f"lib{i}.so") for i in range(7)]
    regions.append(Region(7, "file", 8 << 20, (8 << 20) + 4096, 0, "lib0.so"))
    recs = [FaultRecord(i, 0, 5, region, 0, 0) for region in range(8) for i in range(region + 1)]
    t = top_tables(recs, regions)
    assert [(r.name, r.faults) for r in t.libraries] == [
        ("lib0.so", 1 + 8),
        ("lib6.so", 7),
        ("lib5.so", 6),
        ("lib4.so", 5),
        ("lib3.so", 4),
    ]
    assert len(t.regions) == 5 and sum(r.faults for r in t.regions) < t.total


def test_several_processes_name_each_region_by_pid_and_rank_the_processes():
    recs = walk_records(list(range(256)))
    processes = [ProcessEntry(7, 1, 262, "python3"), ProcessEntry(8, 7, 4, "cat")]
    t = top_tables(recs, REGIONS, processes)
    assert [(r.name, r.faults) for r in t.processes] == [("7 python3", 262), ("8 cat", 4)]
    assert ("libc.so.6 (pid 8)", 4) in [(r.name, r.faults) for r in t.regions]
    assert t.libraries == [TopRow("libc.so.6", 4, round(100 * 4 / 266, 1)), TopRow("walk", 3, round(300 / 266, 1))]
    assert t.to_json()["processes"][0] == {"name": "7 python3", "faults": 262, "percent": round(100 * 262 / 266, 1)}
    lines = table_lines(t)
    assert lines[0].startswith("top by region:   [anon] (pid 7) 256 (96.2%)")
    assert [line.split(":")[0] for line in lines] == ["top by region", "top by library", "top by process"]


def test_records_without_a_region_are_the_none_band():
    t = top_tables([FaultRecord(0, 0, 1, fmt.REGION_NONE, 0, 0)], [])
    assert [(r.name, r.faults) for r in t.regions] == [(fmt.BAND_NONE_NAME, 1)] and t.libraries == []


def test_plot_table_prints_the_tables_of_a_saved_run(tmp_path):
    run = make_run(tmp_path / "r", walk_records(list(range(256))), "7 1 262 python3\n8 7 4 cat\n")
    out = runner.invoke(app, ["plot", str(run), "--table"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == "266 faults recorded"
    assert any(line.split() == ["[anon]", "(pid", "7)", "256", "96.2%"] for line in lines)
    assert any(line.split() == ["libc.so.6", "4", "1.5%"] for line in lines)
    assert any(line.split() == ["7", "python3", "262", "98.5%"] for line in lines)
    assert not any("|" in line for line in lines)  # no plot
    one = runner.invoke(app, ["plot", str(run), "--table", "--pid", "8"])
    assert one.exit_code == 0 and "(only pid 8: 4 of 266 faults)" in one.output.splitlines()[0]
    assert any(line.split() == ["libc.so.6", "4", "100.0%"] for line in one.output.splitlines())


def test_two_regions_of_one_name_are_two_rows_told_apart_by_address():
    regions = [Region(0, "file", 0x7F0000000000, 0x7F0000001000, 0, "libc.so.6")]
    regions.append(Region(1, "file", 0x7F0000005000, 0x7F0000006000, 0, "libc.so.6"))
    recs = [FaultRecord(0, 0, 5, 0, 0, 0)] * 3 + [FaultRecord(0, 0, 5, 1, 0, 0)] * 2
    t = top_tables(recs, regions)
    assert [(r.name, r.faults) for r in t.regions] == [
        ("libc.so.6 @0x7f0000000000", 3),
        ("libc.so.6 @0x7f0000005000", 2),
    ]
    assert [(r.name, r.faults) for r in t.libraries] == [("libc.so.6", 5)]


def test_the_saved_note_keeps_the_top_tables_for_parse():
    """`parse` gives back run's JSON: the top tables travel in the transcript's `saved` note; a note
    whose `top` is not a JSON object (or a note from before the tables) gives none."""
    from pfharness.results import notes

    top = {"regions": [{"name": "[heap]", "faults": 3, "percent": 100.0}], "libraries": [], "processes": []}
    line = notes.NOTE_START + notes.HOST_NOTE + " " + notes.saved_note("out/runs/x", {"records": 3}, top)
    name, values = notes.read_note(line)
    assert name == "saved" and notes.read_saved_note(values) == ("out/runs/x", {"records": 3}, top)
    forged = dict(values, top=notes.encode_command(["[1, 2]"]))
    assert notes.read_saved_note(forged) == ("out/runs/x", {"records": 3}, None)
    older = {k: v for k, v in values.items() if k != "top"}
    assert notes.read_saved_note(older) == ("out/runs/x", {"records": 3}, None)
