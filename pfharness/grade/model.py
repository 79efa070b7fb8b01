"""What `pfharness grade` hands between its parts (unpack, score, gradebook, page): one submission
unpacked, one rubric item scored, one student's grade and the class's gradebook, with their JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GRADEBOOK_VERSION = 1


@dataclass(frozen=True)
class GradeFinding:
    """Something about a submission itself (not one of its modules): a hostile or broken tarball, a
    missing or misnamed file, a late hand-in. `id` is one of unpack's or score's documented ids."""

    id: str  # e.g. path-traversal, not-a-tarball, missing-file, near-miss, late (docs/grade.md)
    message: str  # one line the student can act on
    evidence: tuple[str, ...] = ()  # the member names or lines that show it

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "message": self.message, "evidence": list(self.evidence)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GradeFinding:
        return cls(str(data["id"]), str(data["message"]), tuple(str(e) for e in data.get("evidence", ())))


@dataclass(frozen=True)
class Unpacked:
    """One submission after unpacking: where its files are (None when nothing could be unpacked)."""

    student: str  # from the tarball's name (alice.tar.gz -> alice), or the CSV of submission times
    tarball: str  # the tarball's file name as handed in
    digest: str  # sha256 of the tarball's bytes: with the pfharness version and kernel, the resume key
    submitted: str  # ISO 8601 UTC: the tarball's time, or the time from --times CSV
    root: str | None  # the directory holding the submission's files (one nesting level flattened)
    findings: tuple[GradeFinding, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)  # required name -> path under root
    missing: tuple[str, ...] = ()  # required names not found
    near_misses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # required name -> names seen


@dataclass(frozen=True)
class ItemScore:
    """One rubric item for one student: points with the evidence that gave them."""

    item: str  # the rubric's id: a, b, report, clean, c, late
    title: str  # the rubric's words for it
    points: float
    max: float  # 0 for an item that only deducts (late)
    extra: bool = False  # extra points (C): offset deductions, never lift the total above the maximum
    evidence: tuple[str, ...] = ()  # one line per check that gave or took points
    feedback: str = ""  # text that can be handed to the student as it is
    flags: tuple[str, ...] = ()  # for the teacher's own reading (e.g. "read report.txt")

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "title": self.title,
            "points": self.points,
            "max": self.max,
            "extra": self.extra,
            "evidence": list(self.evidence),
            "feedback": self.feedback,
            "flags": list(self.flags),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ItemScore:
        return cls(
            str(data["item"]),
            str(data["title"]),
            float(data["points"]),
            float(data["max"]),
            bool(data.get("extra", False)),
            tuple(str(e) for e in data.get("evidence", ())),
            str(data.get("feedback", "")),
            tuple(str(f) for f in data.get("flags", ())),
        )


@dataclass(frozen=True)
class StudentGrade:
    """One student's grade: every item, the total, and where the evidence lies (paths relative to the
    gradebook's directory)."""

    student: str
    tarball: str
    digest: str
    submitted: str
    items: tuple[ItemScore, ...]
    total: float  # the items' points, extra capped as the rubric says, late deducted, never below 0
    max: float  # the rubric's maximum (100 for the seed's)
    findings: tuple[GradeFinding, ...] = ()  # about the submission itself
    harness_error: str | None = None  # pfharness failed (not the student): not scored, graded again next run
    dir: str = ""  # the student's directory: build log, kernel-log lines, plots, findings
    plots: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # "B": {"student": txt, "oracle": png}

    def to_json(self) -> dict[str, Any]:
        return {
            "student": self.student,
            "tarball": self.tarball,
            "digest": self.digest,
            "submitted": self.submitted,
            "total": self.total,
            "max": self.max,
            "items": [i.to_json() for i in self.items],
            "findings": [f.to_json() for f in self.findings],
            "harness_error": self.harness_error,
            "dir": self.dir,
            "plots": {k: dict(v) for k, v in self.plots.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StudentGrade:
        return cls(
            str(data["student"]),
            str(data["tarball"]),
            str(data["digest"]),
            str(data["submitted"]),
            tuple(ItemScore.from_json(i) for i in data["items"]),
            float(data["total"]),
            float(data["max"]),
            tuple(GradeFinding.from_json(f) for f in data.get("findings", ())),
            data.get("harness_error"),
            str(data.get("dir", "")),
            {str(k): {str(a): str(b) for a, b in v.items()} for k, v in data.get("plots", {}).items()},
        )


@dataclass(frozen=True)
class Gradebook:
    """The class: every student's grade, on one kernel, by one rubric."""

    pfharness_version: str
    kernel_release: str
    rubric: str  # the rubric file's path, or "default"
    students: tuple[StudentGrade, ...]
    version: int = GRADEBOOK_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "pfharness_version": self.pfharness_version,
            "kernel_release": self.kernel_release,
            "rubric": self.rubric,
            "students": [s.to_json() for s in self.students],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Gradebook:
        if data.get("version") != GRADEBOOK_VERSION:
            raise ValueError(f"gradebook version {data.get('version')!r}, expected {GRADEBOOK_VERSION}")
        return cls(
            str(data["pfharness_version"]),
            str(data["kernel_release"]),
            str(data["rubric"]),
            tuple(StudentGrade.from_json(s) for s in data["students"]),
        )
