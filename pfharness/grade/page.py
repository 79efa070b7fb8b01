"""The class's gradebook as one static HTML page (out_dir/index.html): a sortable table of every student's
points per item, and per student each item's points, evidence and feedback, the findings about the
submission, and the plot the student's module printed beside the oracle's picture of the same run.

Self-contained: inline CSS and a little inline JS, no network; the pictures are the PNGs beside it, by
their relative paths. Everything that comes from a student (name, evidence, findings, the printed plot) is
hostile input: the template escapes every value it prints (Jinja's autoescape), and before that `clean`
shows control and direction-changing characters as \\xNN / \\uNNNN instead of letting them act.

Sorting: a click on a column's heading sets the URL's fragment to `#sort=KEY-asc` (again: `-desc`), KEY
the heading's data-key (student, total, item-<id>, late, flags), and the page sorts by its fragment, on
load and whenever it changes: a link gives a sorted view, and the browser test goes in where a click does."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import jinja2

from .. import assets
from .model import Gradebook, ItemScore, StudentGrade

TEMPLATE = "gradebook.html.j2"  # in handin/ (pfharness/data/handin in a wheel)
PLOT_TEXT_LIMIT = 64 * 1024  # bytes of a printed plot shown; a runaway module prints megabytes
LATE = "late"  # the rubric's id of the late deduction: a column of its own

# C0 and C1 controls but tab and newline, DEL, the bidirectional overrides and isolates, lone surrogates
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def clean(value: object) -> object:
    """A value as the page prints it: a string's invisible or text-turning characters shown as escapes."""
    if not isinstance(value, str):
        return value
    return _HIDDEN.sub(lambda m: _escape_char(m.group()), value)


def _escape_char(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def number(value: float) -> str:
    """Points as a person writes them: 25, 12.5, -10."""
    return f"{value:g}".replace("-", "\u2212")


@dataclass(frozen=True)
class Column:
    """One rubric item's column of the table (the late deduction has its own)."""

    key: str  # data-key of its heading: item-<id>
    item: str
    title: str
    max: float
    extra: bool


@dataclass(frozen=True)
class Cell:
    text: str  # what the cell shows
    sort: str  # data-v: a number, or "" for nothing (sorted last)
    tone: str  # css class: full, part, none, deduct, or ""


@dataclass(frozen=True)
class Plot:
    """One module's two plots: the text its module printed, and the oracle's PNG of the same run."""

    module: str
    text: str | None  # None: no printed plot found
    note: str  # why not, or that it was cut
    image: str | None  # URL relative to the page, None when the PNG is not there


@dataclass(frozen=True)
class Row:
    """One student: their line of the table and their section."""

    anchor: str  # id of the section: s1, s2, ... (never from the student's name)
    grade: StudentGrade
    total: Cell
    cells: tuple[Cell, ...]  # one per Column
    late: Cell
    flags: tuple[str, ...]
    plots: tuple[Plot, ...]


def columns(gradebook: Gradebook) -> tuple[Column, ...]:
    """The items of the class, in the order the rubric gives them (first seen), late left out."""
    seen: dict[str, Column] = {}
    for student in gradebook.students:
        for item in student.items:
            if item.item != LATE and item.item not in seen:
                seen[item.item] = Column(f"item-{item.item}", item.item, item.title, item.max, item.extra)
    return tuple(seen.values())


def item_cell(item: ItemScore | None) -> Cell:
    if item is None:
        return Cell("\u2014", "", "")
    return Cell(points(item), f"{item.points:g}", tone(item))


def points(item: ItemScore) -> str:
    """25 / 25; a deduction (max 0) as its points alone."""
    return f"{number(item.points)} / {number(item.max)}" if item.max else number(item.points)


def tone(item: ItemScore) -> str:
    """The css class of an item's points: full, part, none (nothing of a required item), deduct, or ""."""
    if item.max == 0:
        return "deduct" if item.points < 0 else ""
    if item.points >= item.max:
        return "full"
    return "part" if item.points > 0 else "" if item.extra else "none"


def late_cell(student: StudentGrade) -> Cell:
    late = next((i for i in student.items if i.item == LATE), None)
    if late is None or late.points == 0:
        return Cell("\u2014", "0", "")
    return Cell(number(late.points), f"{late.points:g}", "deduct")


def total_cell(student: StudentGrade) -> Cell:
    if student.harness_error is not None:
        return Cell("not graded", "", "error")
    tone = "full" if student.total >= student.max else "none" if student.total <= 0 else "part"
    return Cell(f"{number(student.total)} / {number(student.max)}", f"{student.total:g}", tone)


def flags(student: StudentGrade) -> tuple[str, ...]:
    """What the teacher should look at: harness errors, the items' flags, the findings' ids; once each."""
    found = ["harness error"] if student.harness_error is not None else []
    found += [flag for item in student.items for flag in item.flags]
    found += [finding.id for finding in student.findings]
    return tuple(dict.fromkeys(found))


def row(index: int, student: StudentGrade, cols: tuple[Column, ...], out_dir: Path) -> Row:
    by_item = {item.item: item for item in student.items}
    return Row(
        anchor=f"s{index}",
        grade=student,
        total=total_cell(student),
        cells=tuple(item_cell(by_item.get(col.item)) for col in cols),
        late=late_cell(student),
        flags=flags(student),
        plots=tuple(plot(module, paths, out_dir) for module, paths in sorted(student.plots.items())),
    )


def plot(module: str, paths: Mapping[str, str], out_dir: Path) -> Plot:
    """The module's printed plot (read into the page) and the oracle's picture (linked), where they are."""
    text_file, image_file = _inside(out_dir, paths.get("student")), _inside(out_dir, paths.get("oracle"))
    text, note = _read_plot(text_file)
    image = urllib.parse.quote(image_file.relative_to(out_dir).as_posix()) if image_file else None
    return Plot(module, text, note, image)


def _inside(out_dir: Path, relative: str | None) -> Path | None:
    """The file at `relative` under out_dir, or None when it is not there or would lie outside it."""
    if not relative or PurePosixPath(relative).is_absolute() or ".." in PurePosixPath(relative).parts:
        return None
    path = out_dir / relative
    if not path.is_file() or not path.resolve().is_relative_to(out_dir.resolve()):
        return None
    return path


def _read_plot(path: Path | None) -> tuple[str | None, str]:
    if path is None:
        return None, "the module printed no plot"
    with path.open("rb") as f:
        data = f.read(PLOT_TEXT_LIMIT + 1)
    text = data[:PLOT_TEXT_LIMIT].decode("utf-8", errors="replace").replace("\r\n", "\n")
    cut = len(data) > PLOT_TEXT_LIMIT
    return text, f"cut at {PLOT_TEXT_LIMIT // 1024} KiB: {path.name} has more" if cut else ""


def render(gradebook: Gradebook, out_dir: Path) -> str:
    """The page's HTML, the pictures' paths relative to out_dir (where it is to be written)."""
    cols = columns(gradebook)
    rows = [row(i, s, cols, out_dir) for i, s in enumerate(gradebook.students, start=1)]
    scored = [s.total for s in gradebook.students if s.harness_error is None]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(assets.handin_file("")),
        autoescape=True,
        finalize=clean,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(number=number, points=points, tone=tone)
    return env.get_template(TEMPLATE).render(
        book=gradebook,
        columns=cols,
        rows=rows,
        mean=number(round(sum(scored) / len(scored), 1)) if scored else "\u2014",
        not_graded=len(gradebook.students) - len(scored),
    )


def write_page(gradebook: Gradebook, out_dir: Path) -> Path:
    """Write the class's page to out_dir/index.html (the students' directories beside it) and return it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / "index.html"
    page.write_text(render(gradebook, out_dir), encoding="utf-8")
    return page
