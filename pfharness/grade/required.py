"""The assignment's files in an unpacked hand-in: each found by its exact name (beside the others at the
root, else the shallowest in a subdirectory), the missing ones, and the near misses named.

The near-miss rule (docs/grade.md): a file's name is compared with every wanted name by a key, its stem
(the name before the first `.`) in lower case without `_`, `-`, `.` and spaces. Its score for a wanted
name is 0 when the whole names differ only in case (makefile), 1 when the keys are equal (pf_probeA.c,
Readme.txt, README.md, report.pdf), 1 + d when the keys are d edits apart (insert, delete, change or swap
two neighbours) with d at most 1 for a key of six letters or fewer, else 2, and the extensions (after the
last `.`, any case) are the same (pf_probe_A1.c, reprot.txt; not pf_probe.h).
A file is a near miss of the wanted names it scores best on, when those are not found; a file with a
wanted name exactly is never a near miss, and near misses are named, never used."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .model import GradeFinding
from .submission_ids import Sub

REQUIRED = ("pf_probe_A.c", "pf_probe_B.c", "Makefile", "README", "report.txt")
OPTIONAL = ("pf_probe_C.c",)
WANTED = REQUIRED + OPTIONAL
JUNK_DIRS = {"__MACOSX", ".git"}  # not looked in
JUNK_FILES = {".DS_Store"}  # nor at these (or AppleDouble ._* files)


@dataclass(frozen=True)
class Required:
    """What was found under a hand-in's root (Unpacked's files, missing, near_misses and findings)."""

    files: Mapping[str, str] = field(default_factory=dict)  # wanted name -> path relative to root
    missing: tuple[str, ...] = REQUIRED
    near_misses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    findings: tuple[GradeFinding, ...] = ()


def key(name: str) -> str:
    stem = name.split(".", 1)[0] if not name.startswith(".") else name
    return "".join(ch for ch in stem.lower() if ch not in "_-. ")


def extension(name: str) -> str:
    return name.rsplit(".", 1)[1].lower() if "." in name.lstrip(".") else ""


def distance(a: str, b: str) -> int:
    """Edits from a to b: insert, delete, change one letter, or swap two neighbours (optimal string
    alignment distance)."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def score(name: str, wanted: str) -> int | None:
    """How near `name` is to `wanted` (lower is nearer; None: not near)."""
    if name.lower() == wanted.lower():
        return 0
    a, b = key(name), key(wanted)
    if a == b:
        return 1
    most = 1 if len(b) <= 6 else 2
    if not a or abs(len(a) - len(b)) > most or extension(name) != extension(wanted):
        return None
    d = distance(a, b)
    return 1 + d if d <= most else None


def near_names(name: str) -> tuple[str, ...]:
    """The wanted names `name` is nearest to (none when it is one of them exactly, or near none)."""
    if name in WANTED:
        return ()
    scores = {w: s for w in WANTED if (s := score(name, w)) is not None}
    best = min(scores.values(), default=None)
    return tuple(w for w, s in scores.items() if s == best)


def files_under(root: Path) -> list[str]:
    """Every regular file under root, as a path relative to it, shallowest first, then by name."""
    found = []
    for top, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in JUNK_DIRS)
        rel = Path(top).relative_to(root)
        for name in names:
            if name not in JUNK_FILES and not name.startswith("._") and (Path(top) / name).is_file():
                found.append((rel / name).as_posix())
    return sorted(found, key=lambda p: (p.count("/"), p))


def find_required(root: Path | None) -> Required:
    """The wanted files under `root` (None: nothing was unpacked: every required file is missing)."""
    if root is None:
        return Required(findings=(Sub.MISSING_FILE.finding(REQUIRED),))
    seen = files_under(root)
    files: dict[str, str] = {}
    for path in seen:  # shallowest first: the first of a name is the one used
        if (base := path.rsplit("/", 1)[-1]) in WANTED:
            files.setdefault(base, path)
    near: dict[str, list[str]] = {}
    for path in seen:
        for wanted in near_names(path.rsplit("/", 1)[-1]):
            if wanted not in files:
                near.setdefault(wanted, []).append(path)
    files = {w: files[w] for w in WANTED if w in files}
    near = {w: near[w] for w in WANTED if w in near}
    missing = tuple(w for w in REQUIRED if w not in files)
    deeper = [p for p in files.values() if "/" in p]
    findings = []
    if missing:
        findings.append(Sub.MISSING_FILE.finding(missing))
    if near:
        findings.append(Sub.NEAR_MISS.finding(f"{w}: saw {', '.join(ps)}" for w, ps in near.items()))
    if deeper:
        findings.append(Sub.FILE_IN_SUBDIRECTORY.finding(deeper))
    return Required(files, missing, {w: tuple(ps) for w, ps in near.items()}, tuple(findings))
