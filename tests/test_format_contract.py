"""The module output format lives in one place (results/output_format.py): a change there changes
both the C the templates render and what the parser reads."""

from __future__ import annotations

import re

import pytest

from pfharness.kmod import render
from pfharness.results import module_output, output_format


def c_lines(shape: output_format.LineShape, values: dict[str, object]) -> str:
    """What printf would print for `shape` with `values` (a small printf for the conversions used)."""
    text = shape.template
    for name in shape.names():
        field = shape.fields[name]
        value = values[name]
        shown = {"%#llx": lambda v: hex(v) if v else "0", "0x%lx": hex}.get(field.c, str)(value)
        text = text.replace("{" + name + "}", shown, 1)
    return text


def test_every_line_shape_is_in_the_rendered_c_and_parses_back():
    c = "\n".join(render.render_module(m) for m in render.MODULES)
    samples = {
        "pid": 42,
        "comm": "my prog",
        "faults": 7,
        "recorded": 5,
        "dropped": 2,
        "capacity": 9,
        "count": 3,
        "index": 1,
        "t_ns": 12,
        "address": 0x7F00,
        "fault_class": "data",
        "tgid": 42,
        "region": 3,
        "access": "write",
        "plot_class": "all",
        "t_span_ns": 99,
        "page_min": 0x10,
        "page_max": 0,
        "outside": 0,
        "class_title": "data segment",
        "traced": 12,
        "table": 11,
        "overflow": 1,
        "untabled": 40,
        "ppid": 4241,
        "exited": 1,
        "processes": 9,
        "scale": "folded",
        "completed": 11,
        "retries": 3,
        "errors": 1,
        "remote": 0,
        "gup": 2,
        "major": 1,
        "minor": 10,
        "read": 4,
        "write": 6,
        "exec": 1,
        "nmissed": 0,
        "kp_nmissed": 5,
        "used": 7,
        "full": 0,
        "name": "libc.so.6+",
        "pmin": 0x7F0000000,
        "pmax": 0x7F0000010,
        "rows": 3,
        "tid": 43,
        "exec_seq": 2,
        "huge": 1,
        "ip": 0x401136,
        "ip_mode": "kernel",
        "service_ns": 1234,
        "kernel_faults": 120,
        "seen_at_exit": 117,
        "untraced_children": 1,
        "root_exited": 1,
        "remote_untraced": 2,
    }
    for name, shape in output_format.LINES.items():
        assert shape.c_literal() in c, name  # the C prints exactly this format
        values = {k: samples[k] for k in shape.names()}
        assert shape.parse(c_lines(shape, values)) == values, name  # and the parser reads it back
    for name, shape in output_format.LEGACY_LINES.items():
        assert shape.c_literal() not in c, name  # printed by older modules only, still read


def test_changing_a_constant_changes_the_c_and_the_parser(monkeypatch):
    monkeypatch.setattr(output_format, "PLOT_COLS", 50)
    monkeypatch.setattr(output_format, "LABEL_WIDTH", 12)
    monkeypatch.setitem(output_format.LINES, "plot_end", output_format.LineShape("==== END OF PLOT ===="))
    c = render.render_module("B")
    assert "#define PLOT_COLS 50" in c and "#define PLOT_LABEL_WIDTH 12" in c
    assert 'pr_info("==== END OF PLOT ====\\n");' in c and "---- END PLOT ----" not in c
    rows = [f"{'0x10' if i == 0 else '':>12} |{'.' * 50}|" for i in range(output_format.PLOT_ROWS)]
    lines = ["---- BEGIN PLOT pid=1 comm=x class=all scale=linear ----", "title", *rows, "==== END OF PLOT ===="]
    report = module_output.parse_module_output([f"pf_probe_B: {ln}" for ln in lines])
    plot = report.plots[0]
    assert plot.complete and len(plot.rows) == output_format.PLOT_ROWS and plot.rows[0] == "." * 50
    assert plot.y_labels == {0: "0x10"}


def test_cell_marks_and_legend_come_from_one_table(monkeypatch):
    monkeypatch.setattr(output_format, "CELL_MARKS", ((1, "a"), (5, "b")))
    c = render.render_module("B")
    marks = re.findall(r"if \(n >= (\d+)\)\n\s+return '(.)';", c)
    assert marks == [("5", "b"), ("1", "a")]
    assert "legend: 'a' 1-4  'b' 5 or more (per cell)" in c


@pytest.mark.parametrize("bad", ["summary pid=x comm=y faults=1", "pid=1 addr=0xZZ", "rec 1 t=2 addr=0x3 extra"])
def test_malformed_lines_are_not_taken(bad):
    report = module_output.parse_module_output([f"pf_probe_A: {bad}"])
    assert report.faults is None and report.fault_addresses == [] and report.records == []


def test_proc_file_layouts_match_the_c_structs():
    """The records file's header and record, as the C declares them, are output_format's structs field by field."""
    c = render.render_module("B")
    codes = {"u64": "Q", "u32": "I", "u16": "H", "u8": "B", "char": "s"}

    def layout(struct: str) -> str:
        body = re.search(r"struct " + struct + r" \{\n(.*?)\n\};", c, re.S).group(1)
        out = ""
        for ctype, name in re.findall(r"^\t(u64|u32|u16|u8|char) (\w+(?:\[\d+\])?);", body, re.M):
            size = re.search(r"\[(\d+)\]", name)
            out += (size.group(1) if size else "") + codes[ctype]
        return "<" + out

    assert layout("fault_record") == output_format.RECORD.format
    assert layout("pfh_records_header") == output_format.RECORDS_HEADER.format
    assert f"BUILD_BUG_ON(sizeof(struct fault_record) != {output_format.RECORD.size});" in c
    assert f"BUILD_BUG_ON(sizeof(struct pfh_records_header) != {output_format.RECORDS_HEADER.size});" in c
    assert f'.magic = "{output_format.RECORDS_MAGIC.rstrip(bytes(1)).decode()}",' in c
    # The regions file prints TABLE_LINES["region"], and the kinds in REGION_KINDS' order.
    assert output_format.TABLE_LINES["region"].c_literal() in c
    kinds = re.findall(r"^\tREGION_(\w+),$", c, re.M)
    assert [k.lower() for k in kinds[: len(output_format.REGION_KINDS)]] == list(output_format.REGION_KINDS)
    assert 'proc_create("records", 0400, ' in c and 'proc_create("regions", 0400, ' in c


def test_folded_rows_parse_with_border_and_band_name():
    """Two bands: rows 0-9 (top row named) and 10-29 (its top row cut, '~', and named), the rest '"'. A file
    named '"' is a name on a top row, not a continuation mark."""
    rows = []
    for i in range(output_format.PLOT_ROWS):
        label = "0x7f00" if i in (0, 9, 10, 29) else ""
        border = output_format.BAND_CUT if i == 10 else "|"
        tail = {0: '"', 10: "cc1,libc.so.6+"}.get(i, output_format.BAND_CONTINUED)
        rows.append(f"{label:>{output_format.LABEL_WIDTH}} {border}{'.' * output_format.PLOT_COLS}| {tail}")
    lines = ["---- BEGIN PLOT pid=1 comm=x class=all scale=folded ----", "title", *rows]
    lines += [output_format.legend(), output_format.folded_legend()]
    lines += ["band 0 name=cc1,libc.so.6+ pages=0x7f00-0x7f10 rows=20 faults=70"]
    lines += ['band 1 name=" pages=0x8000-0x8010 rows=10 faults=3', "---- END PLOT ----"]
    plot = module_output.parse_module_output([f"pf_probe_B: {ln}" for ln in lines]).plots[0]
    assert plot.scale == "folded" and len(plot.rows) == output_format.PLOT_ROWS
    assert plot.cuts == [10] and plot.row_bands == {0: '"', 10: "cc1,libc.so.6+"}
    assert plot.bands[0] == module_output.Band(0, "cc1,libc.so.6+", 0x7F00, 0x7F10, 20, 70)
    assert [b.name for b in plot.bands] == ["cc1,libc.so.6+", '"']


def test_folded_legend_and_continuation_mark_reach_the_c():
    """The legend line of the marks and the mark on a band's other rows are output_format's, in the module."""
    c = render.render_module("B")
    assert 'pr_info("' + output_format.c_string(output_format.folded_legend()) + '\\n");' in c
    assert '"' + output_format.c_string(output_format.BAND_CONTINUED) + '"' in c
    assert f"#define PLOT_BAND_NAME_MAX {output_format.BAND_NAME_MAX}" in c


def test_record_lines_of_both_versions_are_read():
    """dump_records=1: a version-2 line gives the new fields; a version-1 line (older transcripts) leaves them None."""
    v2 = (
        "rec 0 t=5 addr=0x7f0000200000 tgid=42 region=1 access=write major=0 tid=44 exec=1 huge=1 ip=0x401136 "
        "ipmode=kernel service_ns=900 class=other"
    )
    v1 = "rec 1 t=6 addr=0x7f0000201000 tgid=42 region=1 access=read major=1"
    report = module_output.parse_module_output([f"pf_probe_C: {v2}", f"pf_probe_C: {v1}"])
    new, old = report.records
    assert (new.tid, new.exec_seq, new.huge, new.ip) == (44, 1, True, 0x401136)
    assert (new.ip_mode, new.service_ns) == ("kernel", 900)
    assert new.fault_class == "other" and old.major and old.tid is None and old.service_ns is None
