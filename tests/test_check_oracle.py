"""`pfharness check` with the oracle beside the module (pfharness/check/oracle.py): recorded runs (tests/data:
pfharness's own A and B in the VM) stand for the module's lines, their own faults for the oracle's saved
records; the oracle's own lines are kept out of the module's. The whole check, VM and all, is in
test_check_vm.py."""

from __future__ import annotations

import dataclasses
import json

from test_check_compare import recorded, student_plot

from pfharness.check import judge, oracle, oracle_faults, text
from pfharness.check.findings import Finding
from pfharness.check.model import ModuleCheck
from pfharness.check.run import own_lines
from pfharness.results import output_format as fmt
from pfharness.results.model import TraceResult
from pfharness.results.records_file import FaultRecord
from pfharness.results.run_dir import SavedRecords

ORACLE_LINES = [f"pfh_oracle: {i:12x} |{'*' * 70}|" for i in range(30)]


def with_oracle(result: TraceResult, records: list[FaultRecord]) -> TraceResult:
    """`result` as a check's step gives it: the oracle loaded, its saved records, its lines in the log."""
    messages = [*result.kernel_messages, *ORACLE_LINES]
    saved = SavedRecords.of(records, 0)
    return dataclasses.replace(result, saved=saved, oracle_insmod_status=0, insmod_status=0, kernel_messages=messages)


def b_records(result: TraceResult) -> list[FaultRecord]:
    return [FaultRecord(r.t_ns, r.address, r.tgid or 0, fmt.REGION_NONE, 0, 0) for r in result.report.records]


def test_b_beside_the_oracle_passes_and_a_70x30_plot_is_plot_size():
    b = with_oracle(recorded("run_b_records.log"), b_records(recorded("run_b_records.log")))
    lines = own_lines(b.kernel_messages, "pf_probe_B")
    assert not any(ln.startswith("pfh_oracle: ") for ln in lines) and lines
    judged = oracle.judge("B", lines, b)
    assert not [f for f in judged.findings if f.is_error] and not judged.notes, judged
    [shown] = judged.figures["plots"]["shown"]
    assert (shown["rows"], shown["columns"], shown["oracle_faults"]) == (30, 70, 98)
    faults = oracle_faults.from_records_file(b.saved.records)
    wrong = oracle.judge("B", student_plot(faults, rows=70, cols=30), b)
    by_id = {f.id: f for f in wrong.findings}
    assert by_id[Finding.PLOT_SIZE].is_error and by_id[Finding.PLOT_SIZE].stage == "unload"
    assert by_id[Finding.PLOT_AGREEMENT].severity == "info"
    assert wrong.figures["plots"]["shown"][0]["agreement"]["student_in_oracle"] > 0.5


def test_a_beside_the_oracle_and_a_thread_it_missed():
    a = recorded("run_a.log")
    own = [FaultRecord(i, addr, a.pid, fmt.REGION_NONE, 0, 0, a.pid) for i, addr in enumerate(a.report.fault_addresses)]
    judged = oracle.judge("A", own_lines(with_oracle(a, own).kernel_messages, "pf_probe_A"), with_oracle(a, own))
    assert [(f.id, f.stage) for f in judged.findings] == [(Finding.A_ADDRESSES, "run")]
    assert judged.figures["a"]["matched"] == judged.figures["a"]["real_pages"] > 90
    thread = [FaultRecord(0, 0x7F00_0000_0000 + p * 4096, a.pid, fmt.REGION_NONE, 0, 0, a.pid + 1) for p in range(50)]
    missed = oracle.judge("A", a.kernel_messages, with_oracle(a, own + thread))
    assert [f.id for f in missed.findings if f.is_error] == [Finding.A_MISSES_THREADS]
    assert missed.figures["a"]["thread_pages"] == 50 and missed.figures["a"]["thread_pages_printed"] == 0


def test_no_oracle_records_is_a_note_not_a_finding():
    b = recorded("run_b_records.log")
    ran = with_oracle(b, b_records(b))
    cases = {
        "did not load (insmod status 1)": dataclasses.replace(ran, oracle_insmod_status=1),
        "records are missing (no records file)": dataclasses.replace(ran, saved=None, saved_error="no records file"),
        "the module did not load": dataclasses.replace(ran, insmod_status=2),
        "the VM was lost": None,
    }
    for why, result in cases.items():
        judged = oracle.judge("B", b.kernel_messages, result)
        assert not judged.findings and not judged.figures
        [note] = judged.notes
        assert why in note and "not judged" in note, note


def test_the_oracles_lines_are_not_the_modules():
    plot = [f"pf_probe_B: row {i}" for i in range(35)]
    result = TraceResult(module="pf_probe_B", command=["/bin/true"], kernel_messages=plot + ORACLE_LINES * 4)
    assert judge.flood_findings(result, "B") == []
    assert own_lines(["plain", *ORACLE_LINES], "pf_probe_B") == ["plain"]


def test_the_figures_are_in_the_text_and_the_json():
    figures = {"plots": {"plots": 1, "shown": [{"rows": 30, "agreement": {"student_in_oracle": 0.95}}]}}
    check = ModuleCheck("pf_probe_B", "6.1", (), figures=figures)
    shown = text.module_lines(check)
    assert "  figures plots: plots 1, shown [rows 30, agreement student in oracle 95%]" in shown
    assert json.loads(json.dumps(check.to_json()))["figures"] == figures
