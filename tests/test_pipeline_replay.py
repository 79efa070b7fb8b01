"""The whole pipeline without QEMU: `run` and `study` (their functions and their commands) on a fake
target that replays recorded transcripts (tests/replay_target.py). What they give is checked against
what the recordings say, read here from their raw text with regular expressions of this file's own."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from conftest import DATA
from replay_target import ReplaySpec
from typer.testing import CliRunner

from pfharness import cli
from pfharness.pipeline.events import Events, Note, Output, StageStarted, StepDone
from pfharness.results import transcript
from pfharness.run import RunRequest, run
from pfharness.study import run_study
from pfharness.values import Module

B_RECORDS = DATA / "run_b_records.log"
C_RECORDS = DATA / "run_c_records.log"


class Recorded:
    """What a recording says, read from its raw text."""

    def __init__(self, path: Path, letter: str) -> None:
        text = path.read_text(errors="replace")
        kmsg = [m.group(1) for m in re.finditer(rf"kmsg \d+,\d+,\d+,[^;]*;pf_probe_{letter}: (.*)", text)]
        self.recorded = int(next(re.search(r"recorded=(\d+)", k) for k in kmsg if k.startswith("summary ")).group(1))
        self.records = sum(1 for k in kmsg if re.match(r"rec \d+ ", k))
        self.workload_status = int(re.search(r"workload-end status=(\d+)", text).group(1))
        begin = next(i for i, k in enumerate(kmsg) if k.startswith("---- BEGIN PLOT"))
        end = next(i for i, k in enumerate(kmsg) if k.startswith("---- END PLOT"))
        self.plot = kmsg[begin : end + 1]
        self.release = re.search(r"boot release=(\S+)", text).group(1)


def replay(tmp_path: Path) -> ReplaySpec:
    return ReplaySpec({"B": B_RECORDS, "C": C_RECORDS})


def test_run_gives_what_the_recording_says_and_keeps_it_in_a_run_directory(tmp_path):
    said = Recorded(B_RECORDS, "B")
    seen = []
    request = RunRequest(Module("B"), ("touch_pages", "40"), target=replay(tmp_path), out_dir=tmp_path / "out")
    result = run(request, Events(seen.append))
    assert (result.report.recorded, result.workload_status) == (said.recorded, said.workload_status)
    assert result.report.plots[0].lines == said.plot
    assert result.kernel_release == said.release and result.module == "pf_probe_B"
    assert set(result.stage_seconds) == {"build", "boot", "run", "collect"}
    # The run directory: the module's records file, the CSVs made from it, run.json, the transcript.
    directory = Path(result.run_dir)
    assert directory.parent == (tmp_path / "out" / "runs").resolve()
    assert sorted(p.name for p in directory.iterdir()) == [
        "guest",
        "records.csv",
        "records.parquet",
        "regions.csv",
        "run.json",
        "transcript.log",
    ]
    with open(directory / "records.csv") as f:
        assert len(list(csv.reader(f))) - 1 == said.records == said.recorded
    info = json.loads((directory / "run.json").read_text())
    assert info["counters"]["recorded"] == said.recorded and info["run_dir"] == str(directory)
    assert info["workload_status"] == said.workload_status
    # The transcript the pipeline wrote reads back as the same run (`pfharness parse`).
    [again] = transcript.parse_transcript(directory / "transcript.log")
    assert (again.report.recorded, again.workload_status, again.run_dir) == (said.recorded, 0, str(directory))
    # One event stream: the stages in order, the workload's output, then the result.
    stages = [e.name for e in seen if isinstance(e, StageStarted)]
    assert stages == ["build", "boot", "run", "collect"]
    output = b"".join(e.data for e in seen if isinstance(e, Output)).decode()
    assert output == result.workload_output and "pages=40" in output
    assert [e.result.report.recorded for e in seen if isinstance(e, StepDone)] == [said.recorded]


def test_pfharness_run_prints_the_recorded_plot_and_exits_with_the_workloads_status(tmp_path, monkeypatch):
    said = Recorded(B_RECORDS, "B")
    spec = replay(tmp_path)
    monkeypatch.setattr(cli, "target_spec", lambda *a, **k: spec)
    out = tmp_path / "out"
    args = ["run", "--module", "b", "--out", str(out), "--", "touch_pages", "40"]
    got = CliRunner().invoke(cli.app, args)
    assert got.exit_code == said.workload_status, got.output
    lines = got.stdout.splitlines()
    start = lines.index(said.plot[0])
    assert lines[start : start + len(said.plot)] == said.plot
    assert f"recorded={said.recorded}" in got.stdout
    [directory] = (out / "runs").iterdir()
    assert directory.name.endswith("-pf_probe_B") and (directory / "guest" / "records").is_file()
    as_json = CliRunner().invoke(cli.app, ["run", "--json", "--out", str(out), "--", "touch_pages", "40"])
    data = json.loads(as_json.stdout)
    assert data["counters"]["recorded"] == said.recorded and data["exit_status"] == said.workload_status
    assert data["records_file"]["records"] == said.records
    assert len(list((out / "runs").iterdir())) == 2


def test_run_options_are_checked_at_the_edge_before_anything_runs(tmp_path, monkeypatch):
    spec = replay(tmp_path)
    monkeypatch.setattr(cli, "target_spec", lambda *a, **k: spec)
    got = CliRunner().invoke(cli.app, ["run", "--env", "1=x", "--out", str(tmp_path), "--", "true"])
    assert got.exit_code == 2 and "--env" in got.output
    got = CliRunner().invoke(cli.app, ["run", "--param", "tpid=3", "--out", str(tmp_path), "--", "true"])
    assert got.exit_code == 2 and "tpid" in got.output
    got = CliRunner().invoke(cli.app, ["run", "--json", "--env", "1=x", "--out", str(tmp_path), "--", "true"])
    assert got.exit_code == 2 and json.loads(got.stdout)["exit_status"] == 2, "--json: the error as JSON too"
    assert spec.build_dirs == [] and spec.opened == [], "nothing was built or started"


def test_study_traces_each_workload_with_each_module_and_keeps_everything_under_out(tmp_path, monkeypatch):
    said = {"B": Recorded(B_RECORDS, "B"), "C": Recorded(C_RECORDS, "C")}
    monkeypatch.chdir(tmp_path)
    spec = replay(tmp_path)
    out = tmp_path / "study"
    notes: list[str] = []
    events = Events(lambda e: notes.append(e.text) if isinstance(e, Note) else None)
    study = run_study(out, ("B", "C"), target=spec, events=events, only=("sysbench-cpu", "walk-random"))
    assert [(r.workload.key, r.module) for r in study.runs] == [
        ("sysbench-cpu", "B"),
        ("sysbench-cpu", "C"),
        ("walk-random", "B"),
        ("walk-random", "C"),
    ]
    assert len(spec.opened) == 1, "one boot for every run"
    assert [r.command for r in spec.opened[0].steps_run] == [r.workload.command for r in study.runs]
    for kept in study.runs:
        assert kept.figures.faults == said[kept.module].records == said[kept.module].recorded
        assert kept.result.report.plots[0].lines == said[kept.module].plot
        directory = out / "runs" / f"{kept.workload.key}-{kept.module}"
        assert kept.result.run_dir == str(directory)
        assert {"run.json", "records.csv", "regions.csv"} <= {p.name for p in directory.iterdir()}
        assert (directory / "guest" / "records").is_file()
    assert not list((out / "guest-save").iterdir()), "each run's files were moved into its run directory"
    assert "[1/4] sysbench-cpu with pf_probe_B ... (elapsed 0 s)" in notes
    # The builds go under --out, nothing into the current directory's out/.
    assert spec.build_dirs == [out] and (out / said["B"].release).is_dir()
    assert not (tmp_path / "out").exists()
    assert len(transcript.parse_transcript(out / "study-transcript.log")) == 4


def test_pfharness_study_writes_the_report_with_the_recorded_plots(tmp_path, monkeypatch):
    said = Recorded(C_RECORDS, "C")
    spec = ReplaySpec({"C": C_RECORDS})
    asked: list[dict] = []
    monkeypatch.setattr(cli, "target_spec", lambda *a, **k: asked.append(k) or spec)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "s"
    args = ["study", "--out", str(out), "--module", "C", "--workload", "sysbench-cpu"]
    got = CliRunner().invoke(cli.app, args)
    assert got.exit_code == 0, got.output
    assert [k["thp"].value for k in asked] == ["host"], "the study copies the host's settings, as run does"
    report = (out / "report.txt").read_text()
    assert "\n".join(said.plot) not in report and "(the code plot left out: 1 fault)" in report, "near-empty"
    assert "---- BEGIN PLOT pid=175 comm=touch_pages class=other scale=folded ----" in report
    figures = json.loads((out / "figures.json").read_text())
    assert [(r["workload"], r["module"], r["figures"]["faults"]) for r in figures["runs"]] == [
        ("sysbench-cpu", "C", said.recorded)
    ]
    assert f"sysbench-cpu        C   {said.recorded:>7}" in got.stdout
    assert "[1/1] sysbench-cpu with pf_probe_C" in got.stderr
    assert not (tmp_path / "out").exists()


def test_a_run_without_records_is_kept_without_csvs(tmp_path):
    said = Recorded(DATA / "run_b.log", "B")
    spec = ReplaySpec({"B": DATA / "run_b.log"})
    result = run(RunRequest(Module("B"), ("touch_pages", "40"), target=spec, out_dir=tmp_path))
    assert result.saved is None and result.report.recorded == said.recorded
    assert sorted(p.name for p in Path(result.run_dir).iterdir()) == ["guest", "run.json", "transcript.log"]
