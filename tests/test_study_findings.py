"""The committed study's findings: every number of the text is a value of figures.json, no hedge, and the
first screen of report.txt holds the set-up line, the table and the three paragraphs (issue 25)."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from pfharness.study import cite, experiments, findings, firstpage

STUDY = Path(__file__).resolve().parent.parent / "study"
HEDGES = ("presumably", "most likely", "probably", "we did not check", "consistent with", "perhaps", "maybe")
#: A number as the text writes one: 1,073 or 15.9 or 83, not the digits of a name (libc.so.6, x86_64, iperf3).
NUMBER = re.compile(r"(?<![\w.\-/])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])")


@pytest.fixture(scope="module")
def data():
    return json.loads((STUDY / "figures.json").read_text())


@pytest.fixture(scope="module")
def text(data):
    return "\n".join(findings.paragraphs(data)[0])


def sources(data, token: str) -> list[str]:
    """The paths of figures.json whose value the text could show as `token`."""
    found = []
    for path, value in cite.leaves(data):
        try:
            shown = {fmt(value) for fmt in cite.FORMATS}
        except (ValueError, OverflowError):
            continue
        if token in shown:
            found.append(path)
    return found


def test_every_number_of_the_findings_is_a_value_of_figures_json(data, text):
    tokens = NUMBER.findall(text)
    assert len(tokens) > 40, "the findings state their figures"
    where = {token: sources(data, token) for token in tokens}
    missing = [token for token, paths in where.items() if not paths]
    assert not missing, f"numbers of the findings not in figures.json: {missing}"
    # the numbers a test can only find in one place: each comes from where the text says
    assert "derived/buffer/passes" in where[findings.count(data["derived"]["buffer"]["passes"])]


def test_every_number_of_the_findings_went_through_a_formatter_of_a_figure(data):
    """No number typed into a sentence: the text's numbers are those the formatters gave (as many times)."""
    with cite.recording() as shown:
        paragraphs, _ = findings.paragraphs(data)
    in_text = Counter(token for p in paragraphs for token in NUMBER.findall(p))
    assert in_text == Counter(shown), (in_text - Counter(shown), Counter(shown) - in_text)


def test_the_numbers_found_include_a_typed_one_only_when_figures_json_holds_it(data):
    """The oracle can fail: a figure no run has is not found."""
    assert sources(data, "123,457") == [] and sources(data, "7,777") == []
    assert sources(data, findings.count(data["runs"][0]["figures"]["faults"]))


def test_no_hedge_in_the_findings(text):
    lowered = text.lower()
    assert not [h for h in HEDGES if h in lowered]


def test_three_paragraphs_of_120_to_200_words(data):
    paragraphs = findings.paragraphs(data)[0]
    assert len(paragraphs) == 3
    assert [120 <= len(p.split()) <= 200 for p in paragraphs] == [True] * 3, [len(p.split()) for p in paragraphs]


def test_report_txt_opens_with_the_setup_the_table_and_the_three_paragraphs(data):
    report = (STUDY / "report.txt").read_text()
    head = report.splitlines()[:60]
    joined = " ".join(line.strip() for line in head)
    assert firstpage.setup_line(data) in joined
    rows = firstpage.table(data)
    assert rows[0] in head and all(row in head for row in rows)
    runs = firstpage.workload_runs(data)
    workloads = [line.split(" ")[0] for line in rows[2 : 2 + len(runs)]]
    assert workloads == [r["workload"] for r in runs], "a row per workload"
    tried = experiments.table(data, width=len(rows[0]))
    assert len(tried) > 10 and all(row in head for row in tried), "the experiments table under the first"
    for paragraph in findings.paragraphs(data)[0]:
        assert paragraph in joined, "report.txt is stale: run `pfharness study --report-only`"
    assert len(report.splitlines()) < 650


def test_a_study_without_a_workload_leaves_its_sentences_out(data):
    fewer = copy.deepcopy(data)
    fewer["runs"] = [r for r in fewer["runs"] if r["workload"] not in ("sysbench-memory-16M", "kbuild")]
    fewer["derived"] = findings.derive(fewer)
    paragraphs, _ = findings.paragraphs(fewer)
    assert len(paragraphs) == 3 and "compilation" not in " ".join(paragraphs)
    assert "buffer" not in fewer["derived"] and "16 MiB block" not in paragraphs[0]


def test_every_number_of_the_experiments_table_is_a_figure_of_figures_json(data):
    with cite.recording() as shown:
        rows, _ = experiments.rows(data)
    assert [row[1] for row in rows] == [
        "thp-on",
        "thp-off",
        "fork-read",
        "fork-write",
        "sysbench-memory-16M",
        "cache",
        "cache",
        "mmap-read",
        "sysbench-cpu",
    ], "every experiment has its row"
    tokens = [token for row in rows for cell in row[2:] for token in NUMBER.findall(cell)]
    assert Counter(tokens) == Counter(shown), "no number typed into a row"
    missing = [token for token in tokens if not sources(data, token)]
    assert not missing, f"numbers of the experiments not in figures.json: {missing}"


def test_the_experiments_prove_what_they_claim(data):
    """The mechanisms, against their arithmetic: huge pages on = pages / 512 faults, off = one a page;
    a forked child that reads faults 0 times, one that writes once a page; a warm cache no major fault."""
    fig = findings.Figures(data)
    on, off = (fig.run(k)["facts"]["buffer"] for k in ("thp-on", "thp-off"))
    pages = int(fig.run("thp-on")["command"][-1])
    assert (on["faults"], on["huge"]) == (pages // 512, pages // 512)
    assert (off["faults"], off["huge"]) == (pages, 0)
    written = int(fig.run("fork-write")["command"][-1])
    assert experiments.child(fig, "fork-read")["faults"] == 0
    assert experiments.child(fig, "fork-write")["writes"] == written
    cold, warm = experiments.readers(fig)
    assert cold["major"] > 0 and warm["major"] == 0


def test_the_setup_line_says_which_memory_settings_the_guest_ran_with(data):
    said = dict(data, memory="THP never, defrag madvise (copied from this host)")
    assert "2 vCPUs) with THP never, defrag madvise (copied from this host), each" in firstpage.setup_line(said)
    unknown = {k: v for k, v in data.items() if k != "memory"}
    assert "with the guest kernel's own THP setting" in firstpage.setup_line(unknown)
