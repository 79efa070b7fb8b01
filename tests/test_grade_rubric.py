"""The grader's rubric file (handin/rubric.toml, grade/rubric.py): the default is the assignment's, a copy
a teacher edits is read the same way, and a bad one is a one-line error that names the bad key."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from pfharness.cli import app
from pfharness.grade import rubric
from pfharness.grade.rubric import RubricError

ASSIGNMENT = {"a": 25.0, "b": 40.0, "report": 20.0, "clean": 15.0, "c": 15.0}  # assignment.md's grading


def test_default_is_the_assignments_rubric():
    r = rubric.load(None)
    assert {i.id: i.max for i in r.items} == ASSIGNMENT
    assert [i.id for i in r.items if i.extra] == ["c"]
    assert r.maximum == 100 and r.late_per_day == 10 and not r.offset_late_by_extra
    assert {i.id: i.module for i in r.items if i.kind == "module"} == {"a": "A", "b": "B", "c": "C"}
    b = next(i for i in r.items if i.id == "b")
    assert {c.name for c in b.checks} >= {"builds", "loads", "plot-found", "plot-size", "plot-agreement", "unloads"}
    assert next(c for c in b.checks if c.name == "plot-agreement").options == {"full_at": 0.8}


def test_print_rubric_writes_the_default_and_an_edited_copy_is_read(tmp_path):
    result = CliRunner().invoke(app, ["grade", "--print-rubric"])
    assert result.exit_code == 0
    assert result.stdout == rubric.default_text()
    edited = result.stdout.replace("per_day = 10", "per_day = 5").replace("tpid = 3 #", "tpid = 2 #", 1)
    edited = edited.replace("builds = 5 # builds", "builds = 6 # builds", 1)
    path = tmp_path / "mine.toml"
    path.write_text(edited)
    mine = rubric.load(path)
    assert mine.late_per_day == 5 and mine.source == str(path)
    a = next(i for i in mine.items if i.id == "a")
    assert {c.name: c.points for c in a.checks}["tpid"] == 2 and {c.name: c.points for c in a.checks}["builds"] == 6


def _edit(old: str, new: str) -> str:
    text = rubric.default_text()
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (_edit("plot-size = 5", "plot-sise = 5"), "items.b.checks.plot-sise"),
        (_edit("plot-size = 5", "plot-size = 4"), "items.b.checks"),
        (_edit("maximum = 100", "maximum = 90"), "maximum"),
        (_edit("maximum = 100", "maximum = 100\ncolour = 1"), "colour"),
        (_edit("per_day = 10", "per_day = -1"), "late.per_day"),
        (_edit("per_day = 10", "per_day = 'ten'"), "late.per_day"),
        (_edit('kind = "report"', 'kind = "essay"'), "items.report.kind"),
        (_edit('module = "B"', 'module = "D"'), "items.b.module"),
        (_edit("plot-size = 5", "traces-target = 5"), "items.b.checks.traces-target"),
        (_edit("full_at = 0.8", "full_at = 0.8, fuzz = 1"), "items.b.checks.plot-agreement.fuzz"),
        (_edit("extra = true", "extra = 'yes'"), "items.c.extra"),
        (_edit("[items.a.checks]", "[items.a.checkz]"), "items.a.checkz"),
        ("title = 'x'\nmaximum = 0\n", "items"),
        ("title = \n", "not valid TOML"),
    ],
)
def test_a_bad_rubric_is_one_line_naming_the_key(text, key):
    with pytest.raises(RubricError) as caught:
        rubric.parse(text, "mine.toml")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("rubric mine.toml: ")
    assert key in message, message


def test_a_bad_rubric_on_the_command_line_exits_2_with_one_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(_edit("plot-size = 5", "plot-sise = 5"))
    tarball = tmp_path / "alice.tar.gz"
    tarball.write_bytes(b"not read")
    result = CliRunner().invoke(app, ["grade", "--rubric", str(path), "--out", str(tmp_path / "o"), str(tarball)])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and re.search(r"items\.b\.checks\.plot-sise: no such check", lines[0]), result.stderr
    assert not (tmp_path / "o").exists()


def test_a_missing_rubric_file_is_one_line(tmp_path):
    with pytest.raises(RubricError, match=r"--rubric .*nope.toml: cannot read it"):
        rubric.load(tmp_path / "nope.toml")
