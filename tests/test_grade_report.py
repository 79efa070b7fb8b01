"""The report item's measures (pfharness/grade/report_txt.py) on the project's own study/report.txt (8
plots of 30 x 70, three kinds of workload), the hand-in's README, and reports made here. No VM."""

from __future__ import annotations

import json

import pytest

from pfharness import assets
from pfharness.grade.report_txt import MAX_BYTES, measure, measure_bytes
from pfharness.kmod import handin

PROSE = (
    "I traced a kernel compilation, sysbench --test=cpu and iperf3 against a local server. The compiler "
    "faults steadily over the whole run, in fresh anonymous memory, while sysbench faults only at start-up.\n"
)


def plot_rows(prefix: str = "") -> list[str]:
    """A 30 x 70 plot as a student's module might print it, each line behind `prefix`."""
    rows = [f"{prefix}Page faults of pid 1234 over time"]
    rows += [f"{prefix}{0x7F00 - r:>6x} |" + "".join("*" if (r + c) % 9 == 0 else " " for c in range(70)) + "|"
             for r in range(30)]  # fmt: skip
    rows += [f"{prefix}       +" + "-" * 70 + "+", f"{prefix}        time (ms) 0 ... 5000"]
    return rows


def test_the_studys_report():
    facts = measure(assets.study_file("report.txt"))
    assert facts.kind == "text" and facts.utf8 and not facts.truncated
    assert facts.lines == 603 and facts.words > 5_000  # the study of issue 25: the answer first, then appendices
    assert facts.plots == 8  # one per `---- BEGIN PLOT` block: B's plot of 8 of the 9 workloads (sysbench memory's:
    # its PNG only, the same start-up as sysbench cpu's)
    assert facts.paragraphs >= 3
    assert facts.workloads == ("kernel build", "sysbench cpu", "sysbench memory", "sysbench threads", "iperf")
    assert facts.assignment_kinds == ("kernel build", "sysbench", "iperf")
    assert facts.problems == () and facts.flag.startswith("read report.txt:")
    data = facts.to_json()
    assert json.loads(json.dumps(data)) == data and data["plots"] == 8 and len(data["plot_blocks"]) == 10


def test_the_handins_readme_names_no_workload_and_no_plot():
    readme = handin.handin_files(assets.study_file("report.txt"), "6.1.0-57-amd64")["README"]
    facts = measure_bytes(readme.encode(), "README")
    assert facts.workloads == () and facts.plots == 0 and facts.plot_blocks == () and facts.kind == "text"
    assert facts.lines == readme.count("\n") and facts.paragraphs >= 3
    assert facts.flag.startswith("read README:")


def test_a_short_report_with_a_pasted_dmesg_plot():
    lines = [PROSE, "", *plot_rows("[ 1234.567890] pf_probe_B: "), "", PROSE]
    facts = measure_bytes("\n".join(lines).encode())
    assert [(p.rows, p.columns) for p in facts.plot_blocks] == [(30, 70)] and facts.plots == 1
    assert facts.plot_blocks[0].line == 5 and facts.plot_blocks[0].title == "Page faults of pid 1234 over time"
    assert facts.paragraphs == 2 and facts.workloads == ("kernel build", "sysbench cpu", "iperf")


def test_a_plot_of_the_wrong_size_is_counted_but_not_as_30x70():
    rows = [r[:40] + "|" if "|" in r else r for r in plot_rows()]
    facts = measure_bytes("\n".join([PROSE, "", *rows[:21]]).encode())
    assert [(p.rows, p.columns) for p in facts.plot_blocks] == [(20, 32)] and facts.plots == 0


@pytest.mark.parametrize(
    ("text", "workloads"),
    [
        ("We ran sysbench memory and sysbench-fileio, then stress-ng and fio.", ("sysbench memory",
         "sysbench fileio", "fio", "stress-ng")),
        ("sysbench alone, with no test named", ("sysbench",)),
        ("Building the Linux kernel with make -j4; also dd if=/dev/zero of=x", ("kernel build", "dd")),
        ("We stress the memory. make KDIR=<kbuild dir> builds the modules; the kernel's fault handler.", ()),
        ("Compiling the kernel, then netperf and firefox.", ("kernel build", "netperf", "a web browser")),
    ],
)  # fmt: skip
def test_the_workloads_named(text, workloads):
    assert measure_bytes(text.encode()).workloads == workloads


@pytest.mark.parametrize(
    ("data", "kind", "problem"),
    [
        (b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document", "report.txt is a PDF document, not text"),
        (b"PK\x03\x04\x14\x00\x06\x00word/document.xml", "a zip file (a .docx or .odt?)", "not text"),
        (b"{\\rtf1\\ansi Page faults", "an RTF document", "not text"),
        (b"text\x00with\x00nuls\x00", "binary", "report.txt is binary, not text"),
        (b"", "empty", "report.txt is empty, not text"),
    ],
)
def test_what_is_not_text_is_said(data, kind, problem):
    facts = measure_bytes(data)
    assert facts.kind == kind and facts.plot_blocks == () and facts.workloads == ()
    assert any(problem in p for p in facts.problems)


def test_latin1_is_read_and_said():
    facts = measure_bytes("Les défauts de page: sysbench cpu, iperf, compilation du noyau.\n".encode("latin-1"))
    assert facts.kind == "text" and not facts.utf8
    assert facts.problems == ("report.txt is not UTF-8 (read with replacement characters)",)
    assert facts.workloads == ("sysbench cpu", "iperf")


def test_a_huge_report_is_measured_from_its_start(tmp_path):
    path = tmp_path / "report.txt"
    line = ("é" + PROSE.strip() * 20 + "\n").encode()  # long lines: the plot finder's time goes by lines
    path.write_bytes(line * (MAX_BYTES // len(line) + 10))
    facts = measure(path)
    assert facts.truncated and facts.utf8 and facts.size == path.stat().st_size
    assert facts.problems == (f"report.txt is longer than {MAX_BYTES:,} bytes: only its start was measured",)


def test_garbage_never_raises():
    import random

    rng = random.Random(5)
    for n in range(50):
        facts = measure_bytes(rng.randbytes(rng.randint(0, 3000)) if n % 2 else rng.choice([b"|", b" ", b"x\n"]) * 900)
        assert facts.flag and facts.lines >= 0
