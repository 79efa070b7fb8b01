"""The folded and linear plots drawn from records (FOLDED_PLOT_SPEC), against hand-computed layouts and
against a plot a real module printed."""

from __future__ import annotations

from pfharness.results import folded, module_output
from pfharness.results import output_format as fmt
from pfharness.results.records_file import FaultRecord, Region

EMPTY_ROW = " " * fmt.LABEL_WIDTH + " |" + " " * fmt.PLOT_COLS + "|"


def rec(t, page, region):
    return FaultRecord(t, page << 12, 1, region, 0, 0)


def row(label, cells, border="|", tail=""):
    line = [" "] * fmt.PLOT_COLS
    for col, mark in cells.items():
        line[col] = mark
    return f"{label:>{fmt.LABEL_WIDTH}} {border}{''.join(line)}|{tail}"


def test_scale_to_cell_as_the_module():
    assert folded.scale_to_cell(5, 5, 5, 30) == 14  # span 0: the middle cell
    assert folded.scale_to_cell(0, 0, 3, 70) == 0
    assert folded.scale_to_cell(1, 0, 3, 70) == 23  # 70 // 3
    assert folded.scale_to_cell(3, 0, 3, 70) == 69  # the end of the range goes into the last cell


def test_two_bands_by_hand():
    """[heap] pages 100-103 (one fault each at t=0..3) and libc at page 1000 (t=3): the heap band gets 4 rows
    (one per page, never more), libc 1, the 25 rows left stay empty at the top."""
    regions = [Region(0, "heap", 0, 0, 4, "[heap]"), Region(1, "file", 0, 0, 1, "libc.so.6")]
    records = [rec(0, 100, 0), rec(1, 101, 0), rec(2, 102, 0), rec(3, 103, 0), rec(3, 1000, 1)]
    rows, bands = folded.folded_rows(records, regions)
    assert [(b.pmin, b.pmax, b.rows, b.faults, b.name) for b in bands] == [
        (100, 103, 4, 4, "[heap]"),
        (1000, 1000, 1, 1, "libc.so.6"),
    ]
    assert rows[:25] == [EMPTY_ROW] * 25
    # A band's name on its top row, '"' on its other rows; the heap's top row is cut ('~') from libc above.
    assert rows[25:] == [
        row("0x3e8", {69: "."}, tail=" libc.so.6"),
        row("0x67", {69: "."}, border="~", tail=" [heap]"),
        row("", {46: "."}, tail=' "'),
        row("", {23: "."}, tail=' "'),
        row("0x64", {0: "."}, tail=' "'),
    ]


def test_overlapping_regions_merge_and_list_their_names_by_faults():
    regions = [
        Region(0, "file", 0, 0, 0, "a"),
        Region(1, "anon", 0, 0, 0, "[anon]"),
        Region(2, "stack", 0, 0, 0, "[stack]"),
    ]
    records = [rec(0, 10, 0), rec(0, 20, 0), rec(1, 15, 1), rec(1, 16, 1), rec(1, 17, 1), rec(2, 500, 2)]
    bands = folded.make_bands(records, regions)
    assert [(b.pmin, b.pmax, b.faults, b.name) for b in bands] == [(10, 20, 5, "[anon],a"), (500, 500, 1, "[stack]")]


def test_the_programs_name_comes_first_however_few_its_faults():
    """gcc's cc1 (code: 1 fault, data: 1) inside a band of libc (50) and [anon] (20): cc1 first, named once."""
    regions = [
        Region(0, "file", 0, 0, 0, "libc.so.6"),
        Region(1, "code", 0, 0, 0, "cc1"),
        Region(2, "anon", 0, 0, 0, "[anon]"),
        Region(3, "data", 0, 0, 0, "cc1"),
        Region(4, "anon", 0, 0, 0, "[anon]"),
    ]
    records = [rec(t, 100 + t % 50, 0) for t in range(50)] + [rec(0, 120, 1), rec(0, 121, 3)]
    records += [rec(t, 130 + t % 5, 2 + 2 * (t % 2)) for t in range(20)]
    assert [b.name for b in folded.make_bands(records, regions)] == ["cc1,libc.so.6,[anon]"]


def test_a_label_lists_names_while_they_fit_then_a_plus():
    width = fmt.BAND_NAME_MAX
    assert folded.band_label(["cc1", "[anon]", "cc1", "libc.so.6"]) == "cc1,[anon],libc.so.6"
    names = ["n" * 10, "m" * 10, "k" * 10, "j"]  # 10 + 1 + 10 = 21; + 11 = 32 > width - 1: cut before "k..."
    assert folded.band_label(names) == "n" * 10 + "," + "m" * 10 + "+"
    assert folded.band_label(["x" * (width - 1)]) == "x" * (width - 1)
    assert folded.band_label(["x" * width, "y"]) == "x" * (width - 1) + "+"  # a first name too long alone


def test_at_most_15_bands_closest_gaps_merged_first():
    pages = [0, 100, 200, 300, 310, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1350, 1400]
    regions = [Region(i, "anon", 0, 0, 0, f"r{i}") for i in range(len(pages))]
    records = [rec(0, p, i) for i, p in enumerate(pages)] + [rec(0, 310, 4)]  # r4 has two faults
    bands = folded.make_bands(records, regions)
    assert len(bands) == folded.MAX_BANDS == 15
    # gap 10 (300-310) first; then 50 and 50: the lower pair (1300-1350) is merged
    assert (bands[3].pmin, bands[3].pmax, bands[3].name, bands[3].faults) == (300, 310, "r4,r3", 3)
    assert (bands[13].pmin, bands[13].pmax, bands[13].name) == (1300, 1350, "r14,r15")
    assert (bands[14].pmin, bands[14].name) == (1400, "r16")


def test_rows_go_to_the_most_faults_per_row_within_the_page_cap():
    """2 faults on a 5-page band, 1 on a wide one: (1,1) -> 2:1 -> tie to the lower (3,1) -> (3,2) -> (4,2)
    -> tie (5,2): capped at 5 pages, the wide band takes the other 23."""
    bands = [folded.Band(0, 4, 2, "a"), folded.Band(100, 1000, 1, "b")]
    assert [b.rows for b in folded.assign_rows(bands)] == [5, 25]
    assert [b.rows for b in folded.assign_rows([folded.Band(0, 999, 3, "a"), folded.Band(5000, 9999, 3, "b")])] == [
        15,
        15,
    ]


def test_unknown_region_is_its_own_band():
    """REGION_NONE and an index the table does not hold: both in the one "?" band."""
    records = [rec(0, 7, fmt.REGION_NONE), rec(5, 9, 3)]
    rows, bands = folded.folded_rows(records, [])
    assert [(b.name, b.rows) for b in bands] == [("?", 3)]
    assert rows[-1] == row("0x7", {0: "."}, tail=' "')
    assert rows[-3] == row("0x9", {69: "."}, tail=" ?")


def test_names_are_cut_and_cleaned():
    regions = [Region(0, "file", 0, 0, 1, "a very long name\twith blanks.so, ok"), Region(1, "file", 0, 0, 1, "é")]
    rows, _ = folded.folded_rows([rec(0, 1, 0)], regions)
    assert rows[-1].endswith("| a?very?long?name?with?b+")
    assert folded.clean_name("é~!") == "?~!" and folded.clean_name("") == "?"


def test_a_long_runs_axis_is_in_seconds_and_the_parser_reads_it_in_ms():
    """34017.024 ms reads as 34.017 s (from output_format.PLOT_SECONDS_S on); the parser gives ms either way."""
    regions = [Region(0, "anon", 0x7F0000000000, 0x7F0000100000, 3, "[anon]")]
    for last, unit, labels in (
        (34_017_024_000, "s", ["0.000", "17008.000", "34017.000"]),
        (9_999_999_999, "ms", ["0.000", "4999.999", "9999.999"]),
        (fmt.PLOT_SECONDS_S * 10**9, "s", ["0.000", "5000.000", "10000.000"]),
    ):
        records = [FaultRecord(t, 0x7F0000000000 + i * 4096, 1, 0, 0, 0) for i, t in enumerate((0, 5, last))]
        lines = folded.draw(records, regions).lines
        assert any(line.endswith(f"time since the first fault ({unit})") for line in lines), lines
        [plot] = module_output.parse_module_output(f"pf_probe_B: {line}" for line in lines).plots
        assert (plot.x_unit, plot.x_labels) == (unit, labels)
