"""The class's gradebook: OUT/gradebook.csv (a row per student and item: student, item, points, max,
evidence) and OUT/gradebook.json (Gradebook.to_json), each replaced whole."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .model import Gradebook, StudentGrade
from .student_dir import write_json

CSV_NAME = "gradebook.csv"
JSON_NAME = "gradebook.json"
HEADER = ("student", "item", "points", "max", "evidence")


def rows(grade: StudentGrade) -> list[tuple[str, str, str, str, str]]:
    """A student's rows: one per item (its evidence lines joined by " | "), then the total (or the
    harness's error: not scored)."""
    if grade.harness_error is not None:
        return [(grade.student, "harness_error", "", f"{grade.max:g}", grade.harness_error)]
    out = [(grade.student, i.item, f"{i.points:g}", f"{i.max:g}", " | ".join(i.evidence)) for i in grade.items]
    findings = " | ".join(f"{f.id}: {f.message}" for f in grade.findings)
    out.append((grade.student, "total", f"{grade.total:g}", f"{grade.max:g}", findings))
    return out


def csv_text(book: Gradebook) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for grade in book.students:
        writer.writerows(rows(grade))
    return buffer.getvalue()


def write(out: Path, book: Gradebook) -> None:
    out.mkdir(parents=True, exist_ok=True)
    partial = out / (CSV_NAME + ".partial")
    partial.write_text(csv_text(book))
    partial.replace(out / CSV_NAME)
    write_json(out / JSON_NAME, book.to_json())
