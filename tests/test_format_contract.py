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
        "tgid": 4242,
        "ppid": 4241,
        "exited": 1,
        "processes": 9,
    }
    for name, shape in output_format.LINES.items():
        assert shape.c_literal() in c, name  # the C prints exactly this format
        values = {k: samples[k] for k in shape.names()}
        assert shape.parse(c_lines(shape, values)) == values, name  # and the parser reads it back


def test_changing_a_constant_changes_the_c_and_the_parser(monkeypatch):
    monkeypatch.setattr(output_format, "PLOT_COLS", 50)
    monkeypatch.setattr(output_format, "LABEL_WIDTH", 12)
    monkeypatch.setitem(output_format.LINES, "plot_end", output_format.LineShape("==== END OF PLOT ===="))
    c = render.render_module("B")
    assert "#define PLOT_COLS 50" in c and "#define PLOT_LABEL_WIDTH 12" in c
    assert 'pr_info("==== END OF PLOT ====\\n");' in c and "---- END PLOT ----" not in c
    rows = [f"{'0x10' if i == 0 else '':>12} |{'.' * 50}|" for i in range(output_format.PLOT_ROWS)]
    lines = ["---- BEGIN PLOT pid=1 comm=x class=all ----", "title", *rows, "==== END OF PLOT ===="]
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
