"""grade/page.py: the class's HTML page, from a gradebook of a few students (one hostile), with real plots:
the folded text plot and the PNG pfharness draws of a recorded run (tests/data/runs/sort-B). Read as text,
and opened in headless Chromium: its screenshot, and its table read back from the DOM after the page's JS
sorted it."""

from __future__ import annotations

import shutil
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_pictures import real_run  # a recorded run's saved records and regions (tests/data/runs)

from pfharness import proc
from pfharness.grade.model import Gradebook, GradeFinding, ItemScore, StudentGrade
from pfharness.grade.page import PLOT_TEXT_LIMIT, write_page
from pfharness.plot import PlotRequest, draw

HOSTILE = "<script>document.title='pwned'</script> O'Neil \"Bob\"\x1b[31m\x07\u202eevil"
HOSTILE_EVIDENCE = "<img src=x onerror=\"document.title='pwned'\"> & more"
HOSTILE_PLOT = "</pre><script>document.title='pwned'</script>\x00\x1b[2J\n"
RUBRIC = (("a", "pf_probe_A builds and runs correctly", 25), ("b", "pf_probe_B builds and runs correctly", 40))


def items(a: float, b: float, *, c: float = 0, late: float = 0, evidence: str = "loads with tpid") -> tuple:
    scored = [
        ItemScore(i, t, p, m, evidence=(evidence,), feedback=f"{t}: see the evidence")
        for (i, t, m), p in zip(RUBRIC, (a, b), strict=True)
    ]
    scored.append(ItemScore("report", "The report identifies the trends", 20, 20, flags=("read report.txt",)))
    scored.append(ItemScore("clean", "Error handling and clean output", 15, 15, evidence=("checkpatch: 0 errors",)))
    scored.append(ItemScore("c", "pf_probe_C (extra)", c, 15, extra=True))
    scored.append(ItemScore("late", "Late hand-in", late, 0, evidence=("1 day late",) if late else ()))
    return tuple(scored)


def student(name: str, its: tuple, total: float, **extra) -> StudentGrade:
    return StudentGrade(name, f"{name[:8]}.tar.gz", "ab" * 32, "2026-12-01T10:00:00Z", its, total, 100, **extra)


@pytest.fixture(scope="module")
def real_plots(tmp_path_factory) -> tuple[str, bytes]:
    """The text plot and PNG that pfharness draws of one recorded run."""
    png = tmp_path_factory.mktemp("plot") / "oracle.png"
    lines: list[str] = []
    draw(real_run("sort-B"), PlotRequest(png=png), lines.append)
    return "\n".join(lines) + "\n", png.read_bytes()


def put_plots(out: Path, name: str, text: str, png: bytes) -> dict[str, dict[str, str]]:
    (out / name).mkdir(parents=True)
    (out / name / "B.student.txt").write_text(text)
    (out / name / "B.oracle.png").write_bytes(png)
    return {"B": {"student": f"{name}/B.student.txt", "oracle": f"{name}/B.oracle.png"}}


@pytest.fixture
def book(tmp_path, real_plots) -> Gradebook:
    """Four students, their plots under tmp_path/grades (where the page goes)."""
    text, png = real_plots
    out = tmp_path / "grades"
    students = (
        student("alice", items(25, 40, c=15), 100, plots=put_plots(out, "alice smith #1?", text, png)),
        student(
            HOSTILE,
            items(10, 20, evidence=HOSTILE_EVIDENCE),
            75,
            findings=(GradeFinding("near-miss", "Readme.txt is not README", ("Readme.txt", "<b>x</b>")),),
            plots=put_plots(out, "s2", HOSTILE_PLOT, b"not a png"),
        ),
        student("carol", items(25, 22.5, late=-10), 72.5),
        student("dave", (), 0, harness_error="QEMU exited before the guest's shell"),
    )
    return Gradebook("0.2.0", "6.1.0-28-amd64", "default", students)


def test_everything_from_a_student_is_escaped(tmp_path, book):
    html = write_page(book, tmp_path / "grades").read_text()
    assert html.count("<script") == 1  # the page's own
    assert "<img src=x" not in html and "</pre><script>" not in html
    assert (
        "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt; O&#39;Neil &#34;Bob&#34;\\x1b[31m\\x07\\u202eevil"
        in html
    )
    assert "&lt;img src=x onerror=&#34;document.title=&#39;pwned&#39;&#34;&gt; &amp; more" in html
    assert "&lt;/pre&gt;&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;\\x00\\x1b[2J" in html
    assert not any(c in html for c in "\x00\x07\x1b\u202e")


def test_a_plot_path_outside_the_directory_is_not_read(tmp_path, book):
    (tmp_path / "secret.txt").write_text("SECRET")
    inner = tmp_path / "out"
    bad = student("eve", items(25, 40), 100, plots={"B": {"student": "../secret.txt", "oracle": "/etc/hostname"}})
    html = write_page(Gradebook("0.2.0", "6.1", "default", (bad,)), inner).read_text()
    assert "SECRET" not in html and "/etc/hostname" not in html
    assert "the module printed no plot" in html and "no picture" in html


def test_a_runaway_plot_is_cut(tmp_path):
    plots = put_plots(tmp_path, "runaway", "x" * (PLOT_TEXT_LIMIT * 3), b"")
    html = write_page(Gradebook("0.2.0", "6.1", "default", (student("r", items(0, 0), 35, plots=plots),)), tmp_path)
    text = html.read_text()
    assert "cut at 64 KiB: B.student.txt has more" in text
    assert "x" * PLOT_TEXT_LIMIT in text and "x" * (PLOT_TEXT_LIMIT + 1) not in text


class TableReader(HTMLParser):
    """The grades table of a dumped DOM: its headings' keys and aria-sort, each row's cells' text."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str] = []
        self.sorted: dict[str, str] = {}
        self.rows: list[list[str]] = []
        self.title = ""
        self.broken_images = 0
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._in = "table" if a.get("id") == "grades" else self._in
        elif tag == "th" and self._in == "table":
            self.keys.append(a["data-key"] or "")
            if a.get("aria-sort"):
                self.sorted[a["data-key"] or ""] = a["aria-sort"] or ""
        elif tag == "tr" and self._in == "table" and self.keys:
            self.rows.append([])
        elif tag == "td" and self._in == "table":
            self.rows[-1].append("")
            self._in = "td"
        elif tag == "title":
            self._in = "title"
        elif tag == "img" and "broken" in (a.get("class") or ""):
            self.broken_images += 1

    def handle_endtag(self, tag):
        if tag in ("table", "title"):
            self._in = None
        elif tag == "td" and self._in == "td":
            self._in = "table"

    def handle_data(self, data):
        if self._in == "title":
            self.title += data
        elif self._in == "td":
            self.rows[-1][-1] += data


CHROMIUM = shutil.which("chromium")
browser = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; make setup)"
)


def chromium(tmp_path: Path, *args: str) -> str:
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}", *args]
    done = proc.run(argv, timeout=120, discard_stderr=True)
    assert done.returncode == 0, done.stdout[-2000:]
    return done.stdout


def dom(tmp_path: Path, page: Path, fragment: str = "") -> TableReader:
    reader = TableReader()
    reader.feed(chromium(tmp_path, "--dump-dom", page.as_uri() + fragment))
    return reader


@browser
def test_the_page_in_chromium_shows_the_gradebook_and_sorts_it(tmp_path, book):
    page = write_page(book, tmp_path / "grades")
    shown = dom(tmp_path, page)
    assert shown.title == "Gradebook: 4 students, kernel 6.1.0-28-amd64"  # no student's script ran
    assert shown.keys == [
        "student",
        "total",
        "item-a",
        "item-b",
        "item-report",
        "item-clean",
        "item-c",
        "late",
        "flags",
    ]
    assert [r[:3] for r in shown.rows] == [
        ["alice", "100 / 100", "25 / 25"],
        [HOSTILE.replace("\x1b", "\\x1b").replace("\x07", "\\x07").replace("\u202e", "\\u202e"), "75 / 100", "10 / 25"],
        ["carol", "72.5 / 100", "25 / 25"],
        ["dave", "not graded", "\u2014"],
    ]
    assert shown.rows[2][7] == "\u221210" and shown.rows[0][6] == "15 / 15"
    assert shown.broken_images == 1  # the hostile student's "PNG" is not one; alice's showed (from "alice smith #1?/")
    by_total = dom(tmp_path, page, "#sort=total-asc")  # the gradebook's order is the other way round
    assert [r[1] for r in by_total.rows] == ["72.5 / 100", "75 / 100", "100 / 100", "not graded"]
    assert by_total.sorted == {"total": "ascending"}
    by_name = dom(tmp_path, page, "#sort=student-desc")
    assert [r[0][:5] for r in by_name.rows] == ["dave", "carol", "alice", "<scri"]
    by_b = dom(tmp_path, page, "#sort=item-b-asc")
    assert [r[3] for r in by_b.rows] == ["20 / 40", "22.5 / 40", "40 / 40", "\u2014"]  # nothing sorts last


@browser
def test_the_screenshot_is_a_real_picture_of_the_asked_size(tmp_path, book):
    page = write_page(book, tmp_path / "grades")
    shot = tmp_path / "page.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2400", "--hide-scrollbars", page.as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1400, 2400)
    image = pytest.importorskip("PIL.Image").open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50  # text, the table's shades, the oracle's picture: not a blank page
