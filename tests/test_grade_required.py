"""The required files of a hand-in and the near misses named (pfharness/grade/required.py), on directories
made here; and the CSV of submission times (pfharness/grade/times.py). No VM."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfharness.errors import UsageError
from pfharness.grade.required import REQUIRED, distance, find_required, near_names
from pfharness.grade.times import parse_times, read_times

A, B, C = "pf_probe_A.c", "pf_probe_B.c", "pf_probe_C.c"


def make(root: Path, *names: str) -> Path:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    return root


@pytest.mark.parametrize(
    ("name", "nearest"),
    [
        ("pf_probe_A1.c", (A,)),
        ("pf_probeA.c", (A,)),
        ("pf-probe-a.c", (A,)),
        ("PF_PROBE_B.C", (B,)),
        ("pf_probe_B.cpp", (B,)),
        ("pf_probe_c.c", (C,)),
        ("pf_probe_D.c", (A, B, C)),  # one letter from each: named for whichever is missing
        ("Readme.txt", ("README",)),
        ("README.md", ("README",)),
        ("readme", ("README",)),
        ("READ_ME", ("README",)),
        ("makefile", ("Makefile",)),
        ("Makefile.txt", ("Makefile",)),
        ("Makefil", ("Makefile",)),
        ("report.pdf", ("report.txt",)),
        ("Report.TXT", ("report.txt",)),
        ("reprot.txt", ("report.txt",)),
        ("reports.txt", ("report.txt",)),
    ],
)
def test_near_names(name, nearest):
    assert near_names(name) == nearest


@pytest.mark.parametrize(
    "name", [A, "Makefile", "README", "notes.txt", "main.c", "Kbuild", "trace.sh", "pf_probe.h", "GNUmakefile", "r.txt"]
)
def test_not_near(name):
    assert near_names(name) == ()


def test_distance_counts_a_swap_as_one_edit():
    assert distance("kitten", "sitting") == 3
    assert distance("report", "reprot") == 1
    assert distance("", "abc") == 3


def test_a_hand_in_with_near_misses(tmp_path):
    root = make(tmp_path, "pf_probe_A1.c", B, "pf_probe_B1.c", "makefile", "Readme.txt", "report.pdf", "notes.txt")
    found = find_required(root)
    assert found.files == {B: B}
    assert found.missing == (A, "Makefile", "README", "report.txt")
    assert found.near_misses == {
        A: ("pf_probe_A1.c",),
        "Makefile": ("makefile",),
        "README": ("Readme.txt",),
        "report.txt": ("report.pdf",),
    }
    assert [f.id for f in found.findings] == ["missing-file", "near-miss"]
    assert found.findings[0].evidence == found.missing
    assert "pf_probe_A.c: saw pf_probe_A1.c" in found.findings[1].evidence


def test_a_complete_hand_in_has_no_findings_and_the_optional_file_is_used(tmp_path):
    found = find_required(make(tmp_path, *REQUIRED, C, "pf_probe_A_old.c", "report.pdf"))
    assert found.files == {name: name for name in (*REQUIRED, C)}
    assert found.missing == () and found.near_misses == {} and found.findings == ()


def test_the_optional_files_near_miss_is_named_without_a_missing_finding(tmp_path):
    found = find_required(make(tmp_path, *REQUIRED, "pf_probe_c.c"))
    assert found.near_misses == {C: ("pf_probe_c.c",)}
    assert [f.id for f in found.findings] == ["near-miss"]


def test_files_in_a_subdirectory_are_used_and_named(tmp_path):
    root = make(tmp_path, "README", "report.txt", "src/Makefile", "src/" + A, "src/" + B, "old/deeper/" + A)
    found = find_required(root)
    assert found.files[A] == "src/" + A and found.files["README"] == "README"
    assert [f.id for f in found.findings] == ["file-in-subdirectory"]
    assert found.findings[0].evidence == ("src/pf_probe_A.c", "src/pf_probe_B.c", "src/Makefile")


def test_macos_junk_is_not_looked_at(tmp_path):
    found = find_required(make(tmp_path, *REQUIRED, "._README", "__MACOSX/._pf_probe_C.c", ".DS_Store"))
    assert found.findings == () and C not in found.files


def test_nothing_unpacked_means_everything_missing():
    found = find_required(None)
    assert found.missing == REQUIRED and [f.id for f in found.findings] == ["missing-file"]


def test_the_times_csv(tmp_path):
    text = (
        "Student,Time\n"
        "alice,2020-03-05T23:59:00-05:00\n"
        "\n# late ones\n"
        "Bob Smith,2020-03-06 10:00\n"
        "carol,1583452740\n"
        "dave,2020-03-05T23:59:00Z\n"
    )
    (tmp_path / "times.csv").write_text(text)
    assert read_times(tmp_path / "times.csv") == {
        "alice": "2020-03-06T04:59:00+00:00",
        "Bob_Smith": "2020-03-06T10:00:00+00:00",
        "carol": "2020-03-05T23:59:00+00:00",
        "dave": "2020-03-05T23:59:00+00:00",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice,2020-03-05,extra\n", "line 1: expected `student,time`, got 3 fields"),
        ("alice\n", "line 1: expected"),
        ("alice,yesterday\n", "line 1: 'yesterday' is not a time"),
        ("alice,2020-03-05\nalice,2020-03-06\n", "line 2: alice appears twice"),
        ("student,time\nbob,99999999999999999999\n", "line 2: '99999999999999999999' is not a time"),
    ],
)
def test_a_wrong_times_csv_names_the_line(text, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        parse_times(text)


def test_an_unreadable_times_csv(tmp_path):
    with pytest.raises(UsageError, match="cannot read the times CSV"):
        read_times(tmp_path / "absent.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UsageError, match="cannot read the times CSV"):
        read_times(tmp_path / "bin.csv")
