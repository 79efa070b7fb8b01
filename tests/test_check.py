"""`pfharness check`'s findings from recorded material (issue 22): real build logs and VM console
transcripts of corpus cases (tests/student_modules: div-zero and null-deref-unload recorded with
`pfharness check` on Debian's 6.1; api-fault-handler's build log), and real tools (addr2line, objdump)
on a module built here. The whole check, VM and all, is in test_check_vm.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pfharness.check import judge, symbols, text
from pfharness.check.findings import ApiChange, Finding
from pfharness.check.model import CheckFinding, CheckReport, ModuleCheck, bounded
from pfharness.check.run import console_lines, own_lines, replayed_lines, step_findings
from pfharness.cli import app
from pfharness.errors import VmLost, VmTimeout
from pfharness.results import step_result
from pfharness.results.model import TraceResult

DATA = Path(__file__).parent / "data" / "check"


def ids(found: list[CheckFinding]) -> list[str]:
    return [f.id.value for f in found]


def test_a_build_that_fails_on_a_known_api_change():
    log = (DATA / "api_fault_handler.build.log").read_text()
    found = judge.build_findings(
        False, log, "/x/build.log", release="6.1.0-57-amd64", makefile_lines=["KDIR ?= $(shell uname -r)"]
    )
    assert ids(found) == ["build-failed", "api-change", "makefile-kdir"]
    api = found[1]
    assert api.detail == "fault-handler-5.14" and api.is_error and api.stage == "build"
    assert "no member named 'fault_handler'" in api.evidence[0] and "5.14" in api.message
    assert [f.severity for f in found] == ["error", "error", "info"]


def test_a_clean_build_has_no_finding_and_warnings_are_one():
    assert judge.build_findings(True, "", "l", release="r", makefile_lines=[]) == []
    log = "x.c:3:5: warning: unused variable 'i' [-Wunused-variable]\nx.c:9:1: warning: no return\n"
    [w] = judge.build_findings(True, log, "l", release="r", makefile_lines=[])
    assert w.id is Finding.BUILD_WARNING and w.severity == "warning" and len(w.evidence) == 2


def test_no_tpid_param_quotes_the_kernel_and_names_the_parameter():
    params = judge.parse_modinfo_params("process_id:PID of the process to trace (int)\n")
    assert params == ["process_id"]
    messages = ["pf_probe_A: unknown parameter 'tpid' ignored", "pf_probe_A: tracing pid 0"]
    [f] = judge.param_findings(params, messages)
    assert f.id is Finding.NO_TPID_PARAM and f.evidence == ("pf_probe_A: unknown parameter 'tpid' ignored",)
    assert "--pid-param process_id" in f.message
    assert judge.param_findings(["tpid", "max_records"], messages) == []


def test_pid_param_loads_with_its_own_name_and_warns_of_the_course_script():
    [f] = judge.param_findings(["process_id"], [], "process_id")
    assert f.id is Finding.NO_TPID_PARAM and f.severity == "warning" and "tpid=<pid>" in f.message
    assert f.evidence == ("modinfo -p: process_id",)
    assert judge.param_findings(["process_id", "tpid"], [], "process_id") == []  # the course's way works too
    [missing] = judge.param_findings(["tpid"], ["m: unknown parameter 'pid' ignored"], "pid")
    assert missing.severity == "error" and missing.evidence == ("m: unknown parameter 'pid' ignored",)


def result(**kw) -> TraceResult:
    return TraceResult(module="pf_probe_A", command=["/bin/true"], **kw)


def test_a_refused_probe_is_probe_symbol_and_another_refusal_load_failed():
    probe = result(insmod_status=2, kernel_messages=["pf_probe_A: register_kprobe failed: -2"])
    [f] = judge.load_findings(probe)
    assert f.id is Finding.PROBE_SYMBOL and f.evidence == ("pf_probe_A: register_kprobe failed: -2",)
    oracle_line = "pfh_oracle: tracing page faults of process 129 (sh), up to 1048576 records"
    other = result(insmod_status=1, kernel_messages=[oracle_line, "pf_probe_A: out of memory for the buffer"])
    [f] = judge.load_findings(other)
    assert f.id is Finding.LOAD_FAILED and f.evidence == ("pf_probe_A: out of memory for the buffer",)
    assert judge.load_findings(result(insmod_status=0)) == []


def test_printk_flood_by_lines_and_by_the_log_overwritten():
    plot = [f"pf_probe_B: row {i}" for i in range(35)]
    assert judge.flood_findings(result(kernel_messages=plot), "B") == []
    per_fault = plot + [f"pf_probe_B: fault {i} at 0x7f{i:04x}000" for i in range(400)]
    assert ids(judge.flood_findings(result(kernel_messages=per_fault), "B")) == ["printk-flood"]
    assert judge.flood_findings(result(kernel_messages=per_fault), "A") == []  # A prints a line per fault
    three_plots = [f"pf_probe_C: row {i}" for i in range(3 * 45)]  # pfharness's own C: 136 lines
    assert judge.flood_findings(result(kernel_messages=three_plots), "C") == []
    c_per_fault = [ln.replace("pf_probe_B", "pf_probe_C") for ln in per_fault]
    assert ids(judge.flood_findings(result(kernel_messages=c_per_fault), "C")) == ["printk-flood"]
    assert ids(judge.flood_findings(result(kernel_messages=plot, kmsg_lost=3), "A")) == ["printk-flood"]
    # a long kernel report (slub_debug's object dump) is not the module's printing
    dump = plot + [f"Object   ffff8880: {i:02x}" for i in range(500)]
    assert judge.flood_findings(result(kernel_messages=dump, splats=["BUG kmalloc-8k"]), "B") == []


@pytest.mark.parametrize(
    ("recorded", "head", "function"),
    [
        ("null_deref_unload", "BUG: kernel NULL pointer dereference", "pf_probe_exit"),
        ("div_zero", "divide error: 0000 [#1]", "pf_probe_exit"),
    ],
)
def test_a_lost_vm_gives_the_splat_at_unload_and_vm_lost(recorded, head, function):
    console = console_lines(DATA / f"{recorded}.console.log")
    found = step_findings(None, lost=VmLost("x"), console=console, name="pf_probe_B", params=["tpid"], pid_param="tpid")
    assert ids(found) == ["kernel-splat", "vm-lost"]
    splat, lost = found
    assert splat.stage == "unload" == lost.stage and head in splat.evidence[0]
    assert judge.crash_site(splat.evidence, "pf_probe_B")[0] == function
    assert all("##PFH-HOST##" not in e for e in splat.evidence)
    assert any("Kernel panic" in e for e in lost.evidence)


def test_a_panic_replays_the_modules_earlier_lines_into_the_evidence():
    """null-deref-unload checked on 6.1 with panic_print=0x20 (check.run.KERNEL_PARAMS): at the panic the kernel
    printed its whole log again, the module's info line at load among it, which the console's loglevel had
    hidden. The live console is parsed as before (one splat, the replay apart); the module's lines come from
    the replay, and the last before the crash are vm-lost's evidence."""
    transcript = DATA / "null_deref_unload_replay.console.log"
    console, replayed = console_lines(transcript), replayed_lines(transcript)
    assert not any("Linux version" in ln for ln in console) and sum("Kernel panic" in ln for ln in console) == 1
    assert replayed[0] == "pfh_oracle: loading out-of-tree module taints kernel." and "Kernel panic" in replayed[-2]
    lines = own_lines(replayed, "pf_probe_B")
    assert lines == ["pf_probe_B: recording the page faults of pid 132"]
    found = step_findings(
        None, lost=VmLost("x"), console=console, name="pf_probe_B", params=["tpid"], pid_param="tpid", before=lines
    )
    assert ids(found) == ["kernel-splat", "vm-lost"]
    assert found[1].evidence == ("Kernel panic - not syncing: Fatal exception", lines[0])
    # Without a replay (recorded before panic_print): no lines, and the evidence is the panic alone.
    old = DATA / "null_deref_unload.console.log"
    assert replayed_lines(old) == []


def test_the_replay_is_split_at_the_panic():
    live = ["boot", "[    5.1] pf_probe_B: loaded", "[    6.5] Kernel panic - not syncing: Fatal exception"]
    replay = ["[    0.0] Linux version 6.1", "[    5.1] pf_probe_B: loaded", "[    6.5] Kernel panic - not syncing"]
    assert step_result.split_panic_replay([*live, "[    6.6] Kernel Offset: disabled", *replay, "note"]) == (
        [*live, "[    6.6] Kernel Offset: disabled", "note"],
        replay,
    )
    assert step_result.split_panic_replay(live) == (live, [])
    assert step_result.split_panic_replay(live[:2]) == (live[:2], [])


def test_vm_lost_quotes_stalls_not_installing():
    lines = ["9pnet: Installing 9P2000 support", "rcu: INFO: rcu_preempt self-detected stall on CPU", "Kernel panic"]
    [lost] = judge.lost_findings(lines, False, "run")
    assert lost.evidence == tuple(lines[1:])


def test_a_hang_during_unload_is_rmmod_hung():
    console = ["x workload-begin", "x workload-end status=0", "watchdog: BUG: soft lockup - CPU#1 stuck for 22s!"]
    found = step_findings(
        None, lost=VmTimeout("t"), console=console, name="pf_probe_B", params=["tpid"], pid_param="tpid"
    )
    assert ids(found) == ["kernel-splat", "rmmod-hung", "vm-lost"]


def test_the_stage_follows_the_protocol_events():
    lines = ["boot", "P workload-begin", "fault", "P workload-end status=0", "rmmod"]
    assert [judge.stage_at(lines, i) for i in (1, 2, 4)] == ["load", "run", "unload"]


ADDR2LINE = """div64_u64
/usr/src/linux-headers-6.1.0-57-common/include/linux/math64.h:69
print_plot
/tmp/m/src/pf_probe_B.c:90 (discriminator 2)
pf_probe_exit
/tmp/m/src/pf_probe_B.c:135
"""


def test_the_source_line_is_the_modules_own_frame():
    assert (
        symbols.pick_frame(ADDR2LINE, Path("/tmp/m/src")) == "pf_probe_B.c:90 (print_plot, in div64_u64 at math64.h:69)"
    )
    assert symbols.pick_frame("??\n??:0\n", Path("/tmp/m/src")) == ""
    table = "0000000000000010 l     F .exit.text\t00000000000001db pf_probe_exit\n"
    assert symbols.find_symbol(table, "pf_probe_exit") == (".exit.text", 0x10)
    assert symbols.find_symbol(table, "pf_probe_init") is None


def test_bounded_keeps_the_first_and_last_lines():
    lines = [str(i) for i in range(100)]
    kept = bounded(lines, 10)
    assert kept[:5] == tuple("01234") and kept[-5:] == ("95", "96", "97", "98", "99") and "90 lines" in kept[5]
    assert own_lines(["pf_probe_B: a", "other"], "pf_probe_B") == ["pf_probe_B: a"]
    assert own_lines(["plain"], "pf_probe_B") == ["plain"]


def test_the_report_passes_only_without_an_error_finding():
    info = CheckFinding(Finding.MAKEFILE_KDIR, "info", "build", "m", ("a", "a"))
    assert info.evidence == ("a",)  # the same line once
    ok = ModuleCheck("pf_probe_B", "6.1", (info,), ("pf_probe_B: hello",))
    err = CheckFinding(Finding.KERNEL_SPLAT, "error", "unload", "crash", ("BUG: x",), source_line="b.c:3 (f)")
    bad = ModuleCheck("pf_probe_A", "6.1", (err,))
    assert CheckReport("6.1", (ok,)).passed and not CheckReport("6.1", (ok, bad)).passed
    data = json.loads(json.dumps(CheckReport("6.1", (ok, bad)).to_json()))
    assert data["passed"] is False and data["modules"][1]["findings"][0]["source_line"] == "b.c:3 (f)"
    shown = "\n".join(text.report_lines(CheckReport("6.1", (ok, bad))))
    assert "pf_probe_B on 6.1: passed" in shown and "ERROR kernel-splat (unload): crash" in shown
    assert "| BUG: x" in shown and "exit status 1" in shown


def test_check_usage_errors_come_before_any_build(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["check", "--source", str(tmp_path), "--pid-param", "no way", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "plain identifier" in r.output


def test_docs_explain_every_finding_and_api_change():
    """docs/check.md has a table row for each finding id; each api-change detail is explained in
    docs/bring-a-module.md (check.md points there)."""
    docs = Path(__file__).parent.parent / "docs"
    check_md = (docs / "check.md").read_text()
    for f in Finding:
        assert re.search(rf"^\|[^\n]*`{re.escape(f.value)}`[^\n]*\|[^\n]*\|$", check_md, re.M), f.value
    bring = (docs / "bring-a-module.md").read_text()
    for change in ApiChange:
        assert change.value in bring, change.value
