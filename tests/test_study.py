"""Figures computed from recorded runs, the report's layout, and the hand-in archive."""

from __future__ import annotations

import dataclasses
import itertools
import shutil
import tarfile
from pathlib import Path

import pytest
from conftest import DATA
from replay_target import saved_of

from pfharness import study
from pfharness.errors import PfhError
from pfharness.kmod import handin, render
from pfharness.results import figures, output_format, run_dir, transcript
from pfharness.results.records_file import FaultRecord, records_bytes
from pfharness.study.workloads import EXPERIMENT


def records_of(name):
    [result] = transcript.parse_transcript(DATA / name)
    assert result.report.records, "the recorded run has no dumped records"
    return result


def flags_of(cls: str) -> int:
    return [k for k, _ in output_format.FAULT_CLASSES].index(cls) << output_format.RECORD_FLAG_CLASS_SHIFT


def test_figures_on_synthetic_records():
    recs = [
        FaultRecord(t, a, 7, 0, 1, flags_of(c))
        for t, a, c in [
            (0, 0x1000, "code"),
            (10, 0x2000, "data"),
            (20, 0x3000, "other"),
            (30, 0x9000, "other"),
            (1000, 0x9000, "other"),
        ]
    ]
    f = figures.compute(recs)
    assert f.faults == 5 and f.distinct_pages == 4
    assert f.span_s == pytest.approx(1e-6)
    assert f.faults_per_s == pytest.approx(5 / 1e-6)
    assert f.sequential_share == pytest.approx(2 / 4)  # 1->2, 2->3
    assert f.startup_share == pytest.approx(4 / 5)  # first 10 % of 1000 ns: t = 0, 10, 20, 30
    assert f.segment_share == {"code": 0.2, "data": 0.2, "other": 0.6}


def test_figures_order_by_time_then_buffer_slot():
    """A later slot with an earlier time (another CPU's clock) counts at its time; equal times keep slot order."""
    recs = [FaultRecord(t, a, 7, 0, 1, 0) for t, a in [(0, 0x1000), (50, 0x3000), (20, 0x2000), (50, 0x4000)]]
    f = figures.compute(recs, dropped=3)
    assert f.sequential_share == pytest.approx(1.0) and f.dropped == 3  # 1, 2, 3, 4 once ordered


def test_figures_of_one_instant_and_of_nothing():
    one = figures.compute([FaultRecord(5, 0x1000, 7, 0, 1, 0)])
    assert (one.faults, one.span_s, one.faults_per_s, one.sequential_share) == (1, 0.0, 0.0, 0.0)
    assert figures.compute([]).faults == 0


def test_figures_on_a_recorded_b_run():
    """touch_pages 40 writes 40 fresh pages in a row: they show as sequential steps."""
    result = records_of("run_b_records.log")
    r = result.report
    f = figures.compute(saved_of(r), r.dropped or 0)
    assert f.faults == r.recorded == len(r.records) and f.dropped == 0
    assert f.distinct_pages == len({rec.address >> 12 for rec in r.records})
    ordered = sorted(r.records, key=lambda rec: (rec.t_ns, rec.index))
    steps = sum(1 for a, b in itertools.pairwise(ordered) if (b.address >> 12) == (a.address >> 12) + 1)
    assert steps >= 39 and f.sequential_share == pytest.approx(steps / (len(ordered) - 1))
    assert f.span_s == pytest.approx((ordered[-1].t_ns - ordered[0].t_ns) / 1e9)
    assert r.plots[0].t_span_ns == ordered[-1].t_ns - ordered[0].t_ns


def test_segment_shares_on_a_recorded_c_run():
    result = records_of("run_c_records.log")
    f = figures.compute(saved_of(result.report))
    assert set(f.segment_share) == {"code", "data", "other"}
    assert sum(f.segment_share.values()) == pytest.approx(1.0)
    by_plot = {p.plot_class: p.faults for p in result.report.plots}
    for cls, share in f.segment_share.items():
        assert share * f.faults == pytest.approx(by_plot.get(cls, 0))


def test_report_has_header_findings_table_and_plots():
    parsed = records_of("run_c_records.log")
    result = dataclasses.replace(parsed, saved=run_dir.SavedRecords.of(saved_of(parsed.report), 0))
    w = study.Workload("touch", "touch 40 pages", "memory", ("touch_pages", "40"), unseen="nothing", tag="walk")
    s = study.Study(
        runs=[study.StudyRun(w, "C", result, figures.compute(saved_of(result.report)), 1.5)],
        kernel_release="6.1.0-56-amd64",
        accelerator="tcg",
        date="2026-11-26",
    )
    text = study.render_report(s, "Our findings.")
    for needle in (
        "2026-11-26",
        "6.1.0-56-amd64",
        "(tcg, 2 vCPUs",
        "pfharness study --out",
        f"touch               walk         1 {len(parsed.report.records):>8,}",
        "NOTES\n-----\nOur findings.",
        "APPENDIX E. Plots",
        "not seen: nothing",
        "== touch, pf_probe_C ==",
        "HOW TO READ THE PLOTS",
        "---- BEGIN PLOT",
    ):
        assert needle in text, needle


def test_every_workload_is_named_and_the_compile_builds_a_module_followed(tmp_path):
    ws = study.workloads(tmp_path, tmp_path)
    keys = [w.key for w in ws]
    assert {
        "kbuild",
        "sysbench-cpu",
        "sysbench-memory",
        "sysbench-memory-16M",
        "sysbench-threads",
        "iperf3",
        "walk-sequential",
        "walk-random",
        "mmap-read",
    } <= set(keys)
    assert len(keys) == len(set(keys))
    kbuild = next(w for w in ws if w.key == "kbuild")
    assert kbuild.follow and "modules" in kbuild.command[2]
    assert 'obj-m := pf_probe_A.o pf_probe_B.o pf_probe_C.o" >' in kbuild.command[2], "all three modules"
    assert "dump_records=1" not in kbuild.params, "the figures come from the saved records, not the kernel log"
    assert all(w.follow for w in ws), "the study follows every workload's processes"
    iperf = next(w for w in ws if w.key == "iperf3")
    assert "iperf3 -s" in iperf.command[2] and "iperf3 -c" in iperf.command[2], "server and client in one tree"
    big = next(w for w in ws if w.key == "sysbench-memory-16M")
    assert "--memory-block-size=16M" in big.command


def test_every_workload_is_traced_with_both_modules_and_a_restricted_one_with_fewer(tmp_path):
    ws = {w.key: w for w in study.workloads(tmp_path, tmp_path)}
    trends = [w for w in ws.values() if w.tag != EXPERIMENT]
    assert all(study.mods_of(w, ("B", "C")) == ("B", "C") for w in trends)
    experiments = [w.key for w in ws.values() if w.tag == EXPERIMENT]
    assert experiments == ["thp-on", "thp-off", "fork-read", "fork-write", "cache"]
    assert all(study.mods_of(ws[k], ("B", "C")) == ("B",) for k in experiments), "the experiments: B only"
    only_b = dataclasses.replace(ws["kbuild"], modules=("B",))
    assert study.mods_of(only_b, ("B", "C")) == ("B",) and study.mods_of(only_b, ("C",)) == ()
    assert "max_regions=16384" in ws["kbuild"].params


def test_the_header_says_why_a_workload_is_loaded_differently(tmp_path):
    result = records_of("run_c_records.log")
    ws = {w.key: w for w in study.workloads(tmp_path, tmp_path)}
    only_b = dataclasses.replace(ws["sysbench-cpu"], modules=("B",), why="because")
    s = study.Study(runs=[study.StudyRun(w, "B", result, figures.compute([]), 1.0) for w in (ws["kbuild"], only_b)])
    text = study.render_report(s, "")
    assert "kbuild: loaded with max_regions=16384: its ~380 processes" in text
    assert "sysbench-cpu: traced with pf_probe_B only: because." in text


def test_dist_archive_holds_the_six_files(tmp_path):
    report = tmp_path / "report.txt"
    report.write_text("findings\n")
    archive = handin.make_dist(tmp_path / "handin.tar.gz", report, "6.1.0-56-amd64")
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
        readme = tar.extractfile("pf_probe/README").read().decode()
        makefile = tar.extractfile("pf_probe/Makefile").read().decode()
        sources = {m: tar.extractfile(f"pf_probe/pf_probe_{m}.c").read().decode() for m in "ABC"}
    assert names == [
        "pf_probe",
        "pf_probe/Makefile",
        "pf_probe/README",
        "pf_probe/pf_probe_A.c",
        "pf_probe/pf_probe_B.c",
        "pf_probe/pf_probe_C.c",
        "pf_probe/report.txt",
    ]
    assert "Shortcomings" in readme and "Special features" in readme and "{{" not in readme
    assert "KRELEASE ?= $(shell uname -r)" in makefile and "KRELEASE := 6.1.0-56-amd64" in makefile
    # the course profile's modules (docs/modules.md), not the full ones `run` loads
    assert sources == {m: render.render_module(m, profile=render.Profile.course) for m in "ABC"}


def test_dist_without_a_report_says_how_to_make_one(tmp_path):
    with pytest.raises(Exception, match="pfharness study"):
        handin.make_dist(tmp_path / "x.tar.gz", tmp_path / "missing.txt", "6.1.0-56-amd64")


def test_breakdown_counts_regions_access_and_upward_growth():
    from pfharness.results.breakdown import breakdown_lines, region_shares
    from pfharness.results.records_file import FaultRecord, ProcessEntry, Region

    regions = [Region(0, "heap", 0x1000, 0x9000, 4, "[heap]"), Region(1, "code", 0x40000, 0x50000, 2, "cc1")]
    # heap: pages 1, 2, 3 (rising), then 2 again (not rising); code: two exec faults; one with no region
    recs = [
        FaultRecord(0, 0x1000, 7, 0, 1, 0),
        FaultRecord(10, 0x40000, 7, 1, 2, 1),
        FaultRecord(20, 0x2000, 7, 0, 1, 0),
        FaultRecord(30, 0x3000, 7, 0, 1, 0),
        FaultRecord(40, 0x2000, 7, 0, 0, 0),
        FaultRecord(50, 0x41000, 7, 1, 2, 1),
        FaultRecord(100, 0x99000, 7, 0xFFFF, 0, 0),
    ]
    shares = {s.name: s for s in region_shares(recs, regions)}
    heap, code, none = shares["[heap]"], shares["cc1"], shares["?"]
    assert (heap.faults, heap.pages, heap.major, heap.access) == (4, 3, 0, {"write": 3, "read": 1})
    assert heap.rising == pytest.approx(2 / 3)  # after its first fault: 2 and 3 rise, the second 2 does not
    assert (code.faults, code.major, code.access) == (2, 2, {"exec": 2})
    assert heap.first == 0.0 and none.last == 1.0 and code.first == pytest.approx(0.1)
    lines = breakdown_lines(recs, regions, [ProcessEntry(7, 1, 7, "cc1")])
    assert "major 2 (28.6%)" in lines[0] and "read 29% write 43% exec 29%" in lines[0]


def test_report_only_reads_a_finished_study_back(tmp_path):
    """--report-only: the figures and plots of a study written again from its transcript and figures.json."""
    shutil.copy(DATA / "run_c_records.log", tmp_path / "study-transcript.log")
    parsed = records_of("run_c_records.log")
    saved = run_dir.SavedRecords.of(saved_of(parsed.report), 0)
    result = dataclasses.replace(parsed, saved=saved)
    guest = tmp_path / "runs" / "touch-C" / run_dir.GUEST_SUBDIR
    guest.mkdir(parents=True)
    (guest / "records").write_bytes(records_bytes(saved.records, saved.dropped))
    w = study.Workload("touch", "touch 40 pages", "memory", ("touch_pages", "40"))
    s = study.Study(
        runs=[study.StudyRun(w, "C", result, figures.compute(saved.records, saved.dropped), 1.5)],
        kernel_release="6.1.0-56-amd64",
        accelerator="tcg",
        date="2026-11-26",
        transcript=str(tmp_path / "study-transcript.log"),
    )
    first = study.render_report(s, "Old findings.")
    (tmp_path / "notes.txt").write_text("Old findings.")
    study.write_outputs(s, tmp_path, tmp_path / "notes.txt")
    again = study.reread_study(tmp_path)
    assert [r.figures for r in again.runs] == [r.figures for r in s.runs]
    assert study.render_report(again, "Old findings.") == first
    assert again.runs[0].figures.faults == len(parsed.report.records) > 40
    with pytest.raises(Exception, match="pfharness study --out"):
        study.reread_study(tmp_path / "nothing")
    (guest / "records").unlink()
    with pytest.raises(PfhError, match="no saved records"):
        study.reread_study(tmp_path)


def test_the_workloads_appendix_shows_paths_that_do_not_depend_on_where_the_study_ran(tmp_path):
    from pfharness.study.report import shown_command

    ws = {w.key: w for w in study.workloads(tmp_path / "out" / "6.1.0-57-amd64", Path("/lib/modules/6.1/build"))}
    kbuild = shown_command(ws["kbuild"].command, str(tmp_path / "out"))
    assert "$OUT/6.1.0-57-amd64 /lib/modules/6.1/build" in kbuild and str(tmp_path) not in kbuild
    walk = shown_command(ws["walk-random"].command, str(tmp_path / "out"))
    assert walk == "python3 $PFHARNESS/vm/walk.py random 4096"
    assert shown_command(("python3", "/elsewhere/vm/experiment.py", "cache", "4096"), "") == (
        "python3 $PFHARNESS/vm/experiment.py cache 4096"
    )
