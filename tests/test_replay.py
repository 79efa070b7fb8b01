"""Fast tests: replay recorded transcripts and kernel logs (tests/data, made by
tests/data/regenerate.py from real QEMU runs) through the parsers."""

from __future__ import annotations

import json

import pytest
from conftest import DATA
from typer.testing import CliRunner

from pfharness.cli import app
from pfharness.results import model, module_output, protocol, splat, step_result, transcript
from pfharness.results import step_protocol as sp


def parsed(name: str) -> model.TraceResult:
    [result] = transcript.parse_transcript(DATA / name)
    return result


@pytest.fixture(scope="module")
def run_b() -> model.TraceResult:
    return parsed("run_b.log")


def test_run_b_transcript(run_b):
    assert run_b.module == "pf_probe_B" and run_b.complete
    assert run_b.kernel_release.startswith("6.1.") and run_b.accelerator == "tcg"
    assert run_b.command[-1] == "40" and run_b.command[0].endswith("touch_pages")
    assert run_b.insmod_status == 0 and run_b.workload_status == 0 and run_b.rmmod_status == 0
    assert "region=0x" in run_b.workload_output and "rusage_faults=" in run_b.workload_output
    r = run_b.report
    assert r.recorded > 40 and r.dropped == 0 and r.comm == "touch_pages" and r.pid == run_b.pid
    [plot] = r.plots
    assert plot.complete and len(plot.rows) == 30 and {len(row) for row in plot.rows} == {70}
    assert plot.faults == r.recorded and plot.outside == 0
    assert plot.lines[0].startswith("---- BEGIN PLOT") and plot.lines[-1] == "---- END PLOT ----"
    assert run_b.splats == [] and run_b.verdict.exit_status == 0


def test_run_c_transcript_has_a_plot_or_a_line_per_class():
    c = parsed("run_c.log")
    classes = [p.plot_class for p in c.report.plots] + c.report.empty_classes
    assert sorted(classes) == ["code", "data", "other"]
    assert sum(p.faults for p in c.report.plots) == c.report.recorded


def test_run_a_transcript_lists_every_fault():
    a = parsed("run_a.log")
    assert a.report.faults == len(a.report.fault_addresses) > 40
    start, end = (int(x, 16) for x in a.workload_output.split("region=")[1].split()[0].split("-"))
    assert len([x for x in a.report.fault_addresses if start <= x < end]) == 40


@pytest.mark.parametrize("name", ["dmesg_b_timestamps.txt", "dmesg_b_no_timestamps.txt", "dmesg_b_interleaved.txt"])
def test_dmesg_logs_give_the_same_plot(run_b, name):
    result = transcript.parse_kernel_log(DATA / name)
    [plot] = result.report.plots
    [expected] = run_b.report.plots
    assert plot.rows == expected.rows and plot.y_labels == expected.y_labels and plot.x_labels == expected.x_labels
    assert plot.lines == expected.lines
    assert result.report.recorded == run_b.report.recorded


def test_panic_in_the_middle_of_a_plot():
    result = parsed("run_b_panic_mid_plot.log")
    assert not result.complete
    [plot] = result.report.plots
    assert not plot.complete and 0 < len(plot.rows) < 30
    assert any("Kernel panic - not syncing" in s for s in result.splats)
    error = result.verdict.error
    assert error.exit_status == 123 and "panicked" in str(error)


def test_truncated_transcript():
    result = parsed("run_b_truncated.log")
    assert not result.complete and not result.report.plots[0].complete
    assert result.verdict.exit_status == 123


def test_panic_transcript_shows_the_splat():
    text = (DATA / "panic.log").read_text(errors="replace").splitlines()
    found = splat.scan(text)
    assert any("Kernel panic - not syncing" in s for s in found)
    assert any("sysrq" in s or "Call Trace" in s for s in found)


def test_cli_parse_prints_what_run_printed(run_b):
    cli = CliRunner()
    text = cli.invoke(app, ["parse", str(DATA / "run_b.log")])
    assert text.exit_code == 0
    for line in run_b.report.plots[0].lines:
        assert line in text.output
    assert "workload status: 0" in text.output
    data = json.loads(cli.invoke(app, ["parse", "--json", str(DATA / "run_b.log")]).output)
    assert data["counters"]["recorded"] == run_b.report.recorded
    assert len(data["plots"][0]["rows"]) == 30


def test_cli_parse_refuses_a_file_without_module_output(tmp_path):
    empty = tmp_path / "x.log"
    empty.write_text("nothing here\n")
    result = CliRunner().invoke(app, ["parse", str(empty)])
    assert result.exit_code == 2 and "no pf_probe output" in result.output


def test_protocol_lines_are_taken_apart():
    lines = (
        "pid pid=42 hold=1", "insmod status=0", "workload-begin", "workload-end status=7", "rmmod status=0",
        "kmsg 6,9,100,-;pf_probe_B: before kmsg-begin: not a record of the step",
        "kmsg-begin", "kmsg 6,10,100,-;pf_probe_B: summary pid=42 comm=x y recorded=1 dropped=2 capacity=3",
        "kmsg  SUBSYSTEM=ignored", "not an event at all", "kmsg-end", "step-end status=0", "rmmod status=9",
    )  # fmt: skip
    step = protocol.parse_lines(lines)
    assert step.complete and step.status(sp.WorkloadEnd) == 7
    assert step.status(sp.Rmmod) == 0  # nothing after step-end counts
    assert step.event(sp.Pid) == sp.Pid(pid=42, hold=True, prefaults=None)
    [record] = step.kernel_records
    assert record.seq == 10 and record.level == 6
    report = module_output.parse_module_output([record.message])
    assert (report.comm, report.recorded, report.dropped, report.capacity) == ("x y", 1, 2, 3)


def test_a_token_is_stripped_only_when_it_is_the_steps():
    token = "0123456789abcdef" * 2
    assert sp.strip_token(f"{token} step-end status=0", token) == "step-end status=0"
    assert sp.strip_token(f"{token[:-1]}0 step-end status=0", token) is None
    assert sp.strip_token(f"x{token} step-end status=0", token) is None
    assert sp.strip_token("step-end status=0", "") is None


def test_splat_scan_ignores_ordinary_lines():
    assert splat.scan(["pf_probe_B: tracing page faults", "usb 1-1: new device"]) == []
    assert splat.scan(["WARNING: CPU: 0 PID: 1 at kernel/x.c:1 f+0x1/0x2"]) != []
    assert splat.scan(["BUG: sleeping function called from invalid context at mm/x.c:1"]) != []


def step_data(*lines: str, output: str = "", console: str = "") -> protocol.StepData:
    return protocol.StepData(tuple(lines), output, console)


COMPLETE = (
    "pid pid=5 hold=1 prefaults=3",
    "insmod status=0",
    "workload-begin",
    "workload-end status=0",
    "rmmod status=0",
    "kmsg-begin",
    "kmsg 6,1,1,-;pf_probe_B: summary pid=5 comm=x recorded=1 dropped=0 capacity=9",
    "kmsg-end",
    "step-end status=0",
)


def test_workload_output_and_a_complete_steps_console_are_not_scanned_for_splats():
    output = "WARNING: this is pip talking, not the kernel\nKernel panic - not syncing: just a string\n"
    console = "[   12.5] Kernel panic - not syncing: written to /dev/kmsg by the workload\nPFH-INIT-ERROR: printed\n"
    result = step_result.read_step(step_data(*COMPLETE, output=output, console=console), model.RunContext("B", ("x",)))
    assert result.splats == [] and result.complete and result.verdict.exit_status == 0
    assert result.workload_output == output
    assert splat.scan(step_result.console_kernel_lines(console)) == [
        "[   12.5] Kernel panic - not syncing: written to /dev/kmsg by the workload"
    ]


def test_a_step_without_step_end_is_not_complete_whatever_the_output_says():
    output = "".join(f"{line}\n" for line in COMPLETE)  # the workload printing the whole protocol
    result = step_result.read_step(step_data(*COMPLETE[:4], output=output), model.RunContext("B", ("x",)))
    assert not result.complete and result.report.recorded is None and result.verdict.exit_status == 123


def test_a_failed_hold_is_a_harness_error():
    data = step_data("error what=hold state=", "step-end status=1")
    result = step_result.read_step(data, model.RunContext("B", ("x",)))
    error = result.verdict.error
    assert error is not None and "hold" in str(error) and result.verdict.exit_status == 120


def test_lost_kernel_log_lines_fail_the_run():
    data = step_data(
        *COMPLETE[:6], "kmsg-lost", "kmsg 6,9,1,-;pf_probe_A: summary pid=5 comm=x faults=3", *COMPLETE[7:]
    )
    result = step_result.read_step(data, model.RunContext("A", ("x",)))
    assert result.kmsg_lost == 1 and "overwrote" in str(result.verdict.error)


def test_missing_summary_fails_the_run():
    data = step_data(*COMPLETE[:6], *COMPLETE[7:])
    result = step_result.read_step(data, model.RunContext("B", ("x",)))
    assert "no summary" in str(result.verdict.error)


def test_parse_of_a_timed_out_run_gives_the_timeout_status(tmp_path):
    cut = (DATA / "run_b_truncated.log").read_text() + "\n\x1e##PFH-HOST## lost why=timeout\n"
    path = tmp_path / "timeout.log"
    path.write_text(cut)
    [result] = transcript.parse_transcript(path)
    assert result.verdict.exit_status == 124


def test_kmsg_utf8_is_decoded():
    record = protocol.parse_kmsg_line(
        "6,1,2,-;pf_probe_B: summary pid=1 comm=na\\xc3\\xafve recorded=1 dropped=0 capacity=2"
    )
    assert "comm=naïve" in record.message


def test_a_working_directory_that_cannot_be_entered_is_a_harness_error():
    result = step_result.read_step(step_data("error what=cwd", "step-end status=2"), model.RunContext("B", ("x",)))
    error = result.verdict.error
    assert error is not None and "--cwd" in str(error) and result.verdict.exit_status == 120


def test_counts_regions_and_bands_of_a_recorded_b_run(run_b):
    """The kretprobe's counts, the region table and the folded plot's bands, as a real B run printed them."""
    r = run_b.report
    c = r.counts
    assert c is not None and c.exact and run_b.exact() is True
    assert c.completed == r.recorded and c.read + c.write + c.exec == c.completed == c.major + c.minor
    assert c.write >= 40 and c.exec > 0 and c.remote == 0
    # The workload's own count (exact_end.h) against the records, as the VM tests check.
    rusage = int(run_b.workload_output.split("rusage_faults=")[1].split()[0])
    assert r.recorded == rusage - run_b.pre_exec_faults
    assert 0 < r.regions_used <= r.regions_capacity and r.regions_full == 0
    [plot] = r.plots
    assert plot.scale == "folded" and 2 <= len(plot.bands) <= 15
    assert sum(b.faults for b in plot.bands) == plot.faults
    assert sorted(plot.row_bands.values()) == sorted(b.name for b in plot.bands)
    assert len(plot.cuts) == len(plot.bands) - 1
    data = run_b.to_json()
    assert data["exact"] is True and data["fault_counts"]["completed"] == r.recorded
    assert data["plots"][0]["scale"] == "folded" and len(data["plots"][0]["bands"]) == len(plot.bands)
    text = "\n".join(run_b_text(run_b))
    assert "exact:           yes" in text and f"read {c.read}, write {c.write}, exec {c.exec}" in text


def run_b_text(result: model.TraceResult) -> list[str]:
    from pfharness.results import text

    return text.summary_lines(result)


def test_a_run_counts_its_fault_lines():
    a = parsed("run_a.log")
    assert a.report.counts.completed == a.report.faults == len(a.report.fault_addresses)


def test_dumped_records_carry_process_region_access_and_major():
    b = parsed("run_b_records.log")
    records = b.report.records
    assert records and {rec.tgid for rec in records} == {b.pid}
    assert {rec.access for rec in records} <= {"read", "write", "exec"}
    assert all(rec.region is not None and rec.region < b.report.regions_used for rec in records)
    assert sum(rec.major for rec in records) == b.report.counts.major
    c = parsed("run_c_records.log")
    assert {rec.fault_class for rec in c.report.records} <= {"code", "data", "other"}


def test_json_records_list_the_version_2_fields():
    """--json "records": each dumped record with every field of its line, in model.RECORD_JSON_FIELDS' order."""
    b = parsed("run_b_records.log")
    rows, records = b.to_json()["records"], b.report.records
    assert len(rows) == len(records) and all(len(row) == len(model.RECORD_JSON_FIELDS) == 13 for row in rows)
    for row, rec in zip(rows, records, strict=True):
        assert dict(zip(model.RECORD_JSON_FIELDS, row, strict=True)) == {
            name: getattr(rec, name) for name in model.RECORD_JSON_FIELDS
        }
    assert model.RECORD_JSON_FIELDS[:7] == ("t_ns", "address", "fault_class", "tgid", "region", "access", "major")
    assert rows[0][7:] == [None] * 6  # a version-1 transcript: no tid ... service_ns
    v2 = module_output.Record(0, 5, 0x7F0000200000, None, 42, 1, "write", False, 44, 1, True, 0x401136, "user", 812)
    assert model.record_json(v2) == [5, 0x7F0000200000, None, 42, 1, "write", False, 44, 1, True, 0x401136, "user", 812]


def test_a_run_whose_probe_missed_faults_is_not_exact(tmp_path):
    """nmissed > 0 (here edited into a real log): the run says NOT EXACT, in text and JSON."""
    log = tmp_path / "missed.log"
    log.write_bytes((DATA / "run_b.log").read_bytes().replace(b" nmissed=0 ", b" nmissed=3 ", 1))
    [result] = transcript.parse_transcript(log)
    assert result.report.counts.nmissed == 3 and result.exact() is False
    text = "\n".join(run_b_text(result))
    assert "NOT EXACT" in text and "nmissed 3" in text
    assert result.to_json()["exact"] is False


def test_the_oracle_beside_the_module_is_read_apart_from_it():
    """--oracle-ko: the oracle's events and lines are its own; the report and statuses are the module's."""
    data = step_data(
        COMPLETE[0],
        "oracle-insmod status=0",
        *COMPLETE[1:5],
        "saved module=pfh_oracle files=records,regions failed=none centiseconds=2",
        "oracle-rmmod status=0",
        COMPLETE[5],
        "kmsg 6,1,1,-;pfh_oracle: summary pid=5 comm=x recorded=7 dropped=0 capacity=9",
        *COMPLETE[6:],
    )
    result = step_result.read_step(data, model.RunContext("B", ("x",)))
    assert (result.oracle_insmod_status, result.insmod_status, result.rmmod_status) == (0, 0, 0)
    assert result.oracle_rmmod_status == 0 and result.report.recorded == 1 and result.verdict.exit_status == 0
    # An oracle that does not load stops the step before the module loads: pfharness's failure, said so.
    failed = step_result.read_step(
        step_data(COMPLETE[0], "oracle-insmod status=1", "kmsg-begin", "kmsg-end", "step-end status=3"),
        model.RunContext("B", ("x",)),
    )
    assert failed.insmod_status is None and "pfharness's oracle" in str(failed.verdict.error)
