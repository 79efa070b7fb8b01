"""The measurable facts of a hand-in's report.txt, for the rubric's report item: its size in lines, words
and paragraphs, what kind of file it really is (text, UTF-8 or not, or a PDF or word-processor file
renamed), the workloads it names, and the plots it includes (found as the module check finds them in a
module's output: check/plot_find.py). Whether it identifies the trends is the teacher's reading:
`flag` always says so; pfharness does not judge prose. docs/grade.md, "The report item's measures"."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..check.plot_find import FoundPlot, find_plots, strip_prefixes
from ..errors import PfhError

MAX_BYTES = 1 << 20  # measure at most this much of a report (the study's, with 36 plots, is 189 KB)
PLOT_ROWS, PLOT_COLUMNS = 30, 70  # the assignment's plot size
PARAGRAPH_WORDS = 20  # a block of lines is a paragraph when it holds this many words of prose
CONTROL_SHARE = 0.01  # above this share of control characters, the file is not text
FLAG = "read {name}: pfharness measures it but does not judge whether it identifies the trends"
NOT_TEXT = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip file (a .docx or .odt?)"),
    (b"{\\rtf", "an RTF document"),
    (b"\xd0\xcf\x11\xe0", "an old Word document"),
)
#: (workload, pattern) in prose; the first three kinds are those the assignment names.
WORKLOADS = (
    (
        "kernel build",
        r"\bkernel\s+(?:build|compil\w*|make)|\bcompil\w*\s+(?:of\s+)?(?:the\s+|a\s+)?(?:linux\s+)?kernel"
        r"|\bbuild(?:ing)?\s+(?:the\s+|a\s+)?(?:linux\s+)?kernel\b",
    ),
    *((f"sysbench {t}", rf"\bsysbench(?:'s)?[\s_-]*(?:--test=)?{t}\b") for t in ("cpu", "memory", "fileio", "threads")),
    ("sysbench mutex", r"\bsysbench(?:'s)?[\s_-]*(?:--test=)?mutex\b"),
    ("sysbench", r"\bsysbench\b"),
    ("iperf", r"\biperf3?\b"),
    ("netperf", r"\bnetperf\b"),
    ("fio", r"\bfio\b"),
    ("stress-ng", r"\bstress-ng\b"),
    ("dd", r"\bdd\s+(?:if|of|bs)="),
    ("a web browser", r"\b(?:firefox|chromium|google-chrome)\b"),
)
ASSIGNMENT_KINDS = (("kernel build", "kernel build"), ("sysbench", "sysbench"), ("iperf", "iperf"))
_LOG_PREFIX = re.compile(r"^\s*(?:<\d>)?\s*\[\s*\d+\.\d+\]")  # a kernel log line's timestamp
_WORD = re.compile(r"\S*[A-Za-z]\S*")  # a word of prose: a whitespace-separated token with a letter


@dataclass(frozen=True)
class PlotFact:
    """One plot found in the report."""

    line: int  # 1-based line of its first row
    rows: int
    columns: int
    title: str | None
    labels: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "rows": self.rows, "columns": self.columns, "title": self.title,
                "labels": list(self.labels)}  # fmt: skip


@dataclass(frozen=True)
class ReportFacts:
    """What can be measured of a report; `problems` are lines the teacher (and the student) should see."""

    name: str
    size: int  # bytes
    kind: str  # "text", else what it is ("a PDF document", "binary", "empty")
    utf8: bool
    truncated: bool  # longer than MAX_BYTES: only its start was measured
    lines: int
    words: int  # whitespace-separated, as `wc -w`
    prose_words: int  # words with a letter, outside the plots
    paragraphs: int  # blank-line-separated blocks outside the plots with PARAGRAPH_WORDS words or more
    workloads: tuple[str, ...]  # the WORKLOADS named, in the table's order
    assignment_kinds: tuple[str, ...]  # of kernel build, sysbench, iperf: those named
    plots: int  # plots of the assignment's size, 30 rows x 70 columns
    plot_blocks: tuple[PlotFact, ...]  # every plot found, whatever its size
    problems: tuple[str, ...] = ()
    flag: str = ""  # always there: FLAG with the file's name

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "kind": self.kind,
            "utf8": self.utf8,
            "truncated": self.truncated,
            "lines": self.lines,
            "words": self.words,
            "prose_words": self.prose_words,
            "paragraphs": self.paragraphs,
            "workloads": list(self.workloads),
            "assignment_kinds": list(self.assignment_kinds),
            "plots": self.plots,
            "plot_blocks": [p.to_json() for p in self.plot_blocks],
            "problems": list(self.problems),
            "flag": self.flag,
        }


def kind_of(data: bytes, text: str) -> str:
    """What the bytes are: "empty", one of NOT_TEXT, "binary" (NUL bytes or many control characters), "text"."""
    if not data:
        return "empty"
    for magic, what in NOT_TEXT:
        if data.startswith(magic):
            return what
    control = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\n\r\f") or ch == "\x7f")
    return "binary" if b"\x00" in data or control > CONTROL_SHARE * len(text) else "text"


def plots_in(lines: Sequence[str]) -> list[FoundPlot]:
    """The plots in the lines with a kernel log's prefixes stripped (when there are any: a pasted dmesg), or
    as they are (which keeps an indented plot's rows aligned): whichever finds more of the assignment's
    size, then more plots."""
    logged = any(_LOG_PREFIX.match(line) for line in lines)
    candidates = [*([find_plots(strip_prefixes(lines))] if logged else []), find_plots(lines)]
    return max(candidates, key=lambda ps: (sum((p.rows, p.columns) == (PLOT_ROWS, PLOT_COLUMNS) for p in ps), len(ps)))


def paragraphs(lines: Sequence[str], skip: set[int]) -> list[int]:
    """The prose-word count of each paragraph (blank-line-separated, lines in `skip` left out)."""
    counts, words = [], 0
    for n, line in enumerate([*lines, ""]):
        if n in skip:
            continue
        if line.strip():
            words += len(_WORD.findall(line))
        elif words:
            counts.append(words)
            words = 0
    return counts


def named(prose: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(workloads, assignment kinds) named in the prose; "sysbench" alone only when no test is named."""
    found = [w for w, pattern in WORKLOADS if re.search(pattern, prose, re.I)]
    if any(w.startswith("sysbench ") for w in found):
        found = [w for w in found if w != "sysbench"]
    kinds = tuple(kind for kind, prefix in ASSIGNMENT_KINDS if any(w.startswith(prefix) for w in found))
    return tuple(found), kinds


def measure_bytes(data: bytes, name: str = "report.txt", size: int | None = None) -> ReportFacts:
    """The facts of a report's bytes (at most MAX_BYTES of them are measured)."""
    truncated = len(data) > MAX_BYTES
    head = data[:MAX_BYTES].removeprefix(b"\xef\xbb\xbf")
    try:
        text, utf8 = head.decode("utf-8"), True
    except UnicodeDecodeError as exc:  # UTF-8 still when the only error is a character cut at MAX_BYTES
        text, utf8 = head.decode("utf-8", "replace"), truncated and exc.start >= len(head) - 3
    kind = kind_of(head, text)
    lines = text.splitlines()
    plots = plots_in(lines) if kind == "text" else []
    in_plots = {n for p in plots for n in range(p.first, p.first + p.rows)}
    prose = "\n".join(line for n, line in enumerate(lines) if n not in in_plots)
    workloads, kinds = named(prose) if kind == "text" else ((), ())
    counts = paragraphs(lines, in_plots)
    problems = [
        *([f"{name} is {kind}, not text: hand in plain text"] if kind != "text" else []),
        *([f"{name} is not UTF-8 (read with replacement characters)"] if not utf8 and kind == "text" else []),
        *([f"{name} is longer than {MAX_BYTES:,} bytes: only its start was measured"] if truncated else []),
    ]
    return ReportFacts(
        name=name,
        size=len(data) if size is None else size,
        kind=kind,
        utf8=utf8,
        truncated=truncated,
        lines=len(lines),
        words=len(text.split()),
        prose_words=sum(counts),
        paragraphs=sum(1 for c in counts if c >= PARAGRAPH_WORDS),
        workloads=workloads,
        assignment_kinds=kinds,
        plots=sum(1 for p in plots if (p.rows, p.columns) == (PLOT_ROWS, PLOT_COLUMNS)),
        plot_blocks=tuple(PlotFact(p.first + 1, p.rows, p.columns, p.title, p.labels) for p in plots),
        problems=tuple(problems),
        flag=FLAG.format(name=name),
    )


def measure(path: Path) -> ReportFacts:
    """measure_bytes of a file (its first MAX_BYTES + 1 bytes); PfhError when it cannot be read."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
            size = path.stat().st_size
    except OSError as exc:
        raise PfhError(f"cannot read {path} ({exc.strerror or exc}): check the unpacked submission") from exc
    return measure_bytes(data, path.name, size)
