"""`pfharness check` end to end on corpus cases (tests/student_modules): the real build, a fresh VM
per module on the default kernel (6.1), the findings each case's expected.toml names. About 15 s a
case under TCG."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfharness.check.findings import Finding
from pfharness.check.run import CheckRequest, check
from pfharness.kmod.spec import parse_spec
from pfharness.values import Accelerator

CORPUS = Path(__file__).parent / "student_modules"
tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")

pytestmark = pytest.mark.vm


def run_check(tmp_path, default_kernel, name, timeout=120.0, pid_param="tpid"):
    """Check corpus case `name` (skipped on a kernel its expected.toml does not list: the core ones also run on
    7.2 through scripts/test-matrix.sh)."""
    series = tomllib.loads((CORPUS / name / "expected.toml").read_text())["kernels"]
    if not any(parse_spec(s).matches(default_kernel.release) for s in series):
        pytest.skip(f"{name}'s expectations are for {', '.join(series)}, not {default_kernel.release}")
    request = CheckRequest(
        (CORPUS / name,),
        tmp_path / name,
        kernel_release=default_kernel.release,
        pid_param=pid_param,
        accel=Accelerator.tcg,
        timeout=timeout,
    )
    return check(request)


def findings(report, finding: Finding):
    return [f for m in report.modules for f in m.findings if f.id is finding] + [
        f for f in report.findings if f.id is finding
    ]


@pytest.mark.core
def test_correct_b_passes(tmp_path, default_kernel):
    report = run_check(tmp_path, default_kernel, "correct-B")
    [module] = report.modules
    assert report.passed and module.passed, report.to_json()
    assert not [f for f in module.findings if f.is_error]
    assert any("Page faults of pid" in line for line in module.lines)
    assert not any(line.startswith("pfh_oracle: ") for line in module.lines) and not module.notes
    [shown] = module.figures["plots"]["shown"]
    print(module.figures)
    assert (shown["rows"], shown["columns"]) == (30, 70) and shown["oracle_faults"] >= 400
    assert shown["agreement"] is not None and shown["agreement"]["oracle_in_student"] > 0.5
    [agreement] = findings(report, Finding.PLOT_AGREEMENT)
    assert agreement.severity == "info" and agreement.stage == "unload"


@pytest.mark.parametrize(
    ("name", "finding", "stage"),
    [("pid-not-tgid", Finding.A_MISSES_THREADS, "run"), ("plot-70x30", Finding.PLOT_SIZE, "unload")],
)
def test_only_the_oracle_can_judge(tmp_path, default_kernel, name, finding, stage):
    """The module loads, runs and unloads cleanly: what is wrong shows only against the oracle's records."""
    report = run_check(tmp_path, default_kernel, name)
    [module] = report.modules
    print(name, module.figures)
    assert [f.id for f in module.findings if f.is_error] == [finding], module.findings
    assert findings(report, finding)[0].stage == stage and not module.notes
    if finding is Finding.A_MISSES_THREADS:
        assert module.figures["a"]["thread_pages"] >= 200 and module.figures["a"]["thread_pages_printed"] == 0


def test_wrong_param_name_is_no_tpid_param(tmp_path, default_kernel):
    report = run_check(tmp_path, default_kernel, "wrong-param-name")
    [f] = findings(report, Finding.NO_TPID_PARAM)
    assert f.evidence == ("pf_probe_A: unknown parameter 'tpid' ignored",) and not report.passed
    assert "process_id" in f.message


def test_pid_param_loads_the_module_with_its_own_name(tmp_path, default_kernel):
    """--pid-param process_id: the module traces the workload (A's addresses all matched); what the course's
    script would do (tpid=, ignored) stays a warning."""
    report = run_check(tmp_path, default_kernel, "wrong-param-name", pid_param="process_id")
    [module] = report.modules
    assert report.passed and not [f for f in module.findings if f.is_error], report.to_json()
    [f] = findings(report, Finding.NO_TPID_PARAM)
    assert f.severity == "warning" and "tpid=<pid>" in f.message and f.evidence == ("modinfo -p: process_id",)
    a = module.figures["a"]
    assert a["missed"] <= a["real_pages"] // 10 and a["thread_pages_printed"] == a["thread_pages"], a


def test_probe_symbol(tmp_path, default_kernel):
    report = run_check(tmp_path, default_kernel, "probe-symbol")
    [f] = findings(report, Finding.PROBE_SYMBOL)
    assert "pf_probe_A: register_kprobe failed: -2" in f.evidence and f.stage == "load"


@pytest.mark.core
@pytest.mark.parametrize(
    ("name", "head", "source"),
    [
        ("null-deref-unload", "BUG: kernel NULL pointer dereference", "pf_probe_B.c:"),
        ("div-zero", "divide error: 0000 [#1]", "pf_probe_B.c:"),
    ],
)
def test_a_crash_is_a_splat_with_its_source_line(tmp_path, default_kernel, name, head, source):
    report = run_check(tmp_path, default_kernel, name)
    [splat] = findings(report, Finding.KERNEL_SPLAT)
    assert splat.stage == "unload" and head in splat.evidence[0], splat
    assert splat.source_line.startswith(source) and splat.source_line in splat.message
    line = int(splat.source_line.split(":")[1].split()[0])
    assert 0 < line <= len((CORPUS / name / "pf_probe_B.c").read_text().splitlines())
    # The module's info line at load, hidden by the console's loglevel, came back in the kernel's replay at the panic.
    [lost] = findings(report, Finding.VM_LOST)
    [module] = report.modules
    loaded = [ln for ln in module.lines if ln.startswith("pf_probe_B: recording the page faults of pid ")]
    assert len(loaded) == 1 and loaded[0] in lost.evidence, (module.lines, lost.evidence)


def test_a_build_break_is_an_api_change(tmp_path, default_kernel):
    report = run_check(tmp_path, default_kernel, "api-fault-handler")
    [api] = findings(report, Finding.API_CHANGE)
    assert api.detail == "fault-handler-5.14" and findings(report, Finding.BUILD_FAILED) and not report.modules


def test_a_handler_that_loops_hangs_its_vm_in_the_run(tmp_path, default_kernel):
    """The kernel's report names the handler: the RCU stall or the soft-lockup watchdog, whichever of the two
    (both about 20 s) fires first; the VM is killed at the step's timeout (40 s here)."""
    report = run_check(tmp_path, default_kernel, "handler-loops", timeout=40.0)
    [splat] = findings(report, Finding.KERNEL_SPLAT)
    assert splat.stage == "run" and any(s in splat.evidence[0] for s in ("self-detected stall", "soft lockup"))
    assert splat.source_line.startswith("pf_probe_A.c:") and "handler_pre" in splat.source_line
    [lost] = findings(report, Finding.VM_LOST)
    assert lost.stage == "run" and "killed" in lost.message and not findings(report, Finding.RMMOD_HUNG)


@pytest.mark.core
def test_a_hung_rmmod_then_the_next_check_starts_clean(tmp_path, default_kernel):
    """rmmod-hangs waits ten minutes in its exit function: at the step's timeout (30 s here) the VM is
    killed, rmmod-hung at unload; the next check (correct-C) boots a fresh VM and passes, its c-split
    within the oracle's."""
    report = run_check(tmp_path, default_kernel, "rmmod-hangs", timeout=30.0)
    [module] = report.modules
    assert {f.id for f in module.findings if f.is_error} == {Finding.RMMOD_HUNG, Finding.VM_LOST}, module.findings
    assert all(f.stage == "unload" for f in module.findings if f.is_error)
    assert "rmmod did not return" in findings(report, Finding.RMMOD_HUNG)[0].message
    report = run_check(tmp_path, default_kernel, "correct-C")
    [module] = report.modules
    assert report.passed and not module.notes, report.to_json()
    [split] = findings(report, Finding.C_SPLIT)
    assert split.severity == "info", split
    c = module.figures["c_split"]
    print(c)
    assert all(c["module"][k] is not None for k in ("code", "data", "other")) and sum(c["oracle"].values()) > 400, c


@pytest.mark.core
@pytest.mark.parametrize(("name", "errors"), [("correct-A", set()), ("printk-flood", {Finding.PRINTK_FLOOD})])
def test_a_core_case_gives_exactly_its_errors(tmp_path, default_kernel, name, errors):
    report = run_check(tmp_path, default_kernel, name)
    [module] = report.modules
    assert {f.id for f in module.findings if f.is_error} == errors, module.findings
    assert not module.notes  # the oracle judged it


@pytest.mark.core
def test_a_null_task_for_a_missing_pid_is_its_finding(tmp_path, default_kernel):
    """missing-pid-null passes its main step (it is correct-B with the workload's pid); loaded with tpid=30000
    it dereferences the NULL task in its init function: missing-pid at load, with the kernel's lines and the
    source line, and nothing held against its main run (no kernel-splat, no vm-lost)."""
    report = run_check(tmp_path, default_kernel, "missing-pid-null")
    [module] = report.modules
    assert {f.id for f in module.findings if f.is_error} == {Finding.MISSING_PID}, module.findings
    [missing] = findings(report, Finding.MISSING_PID)
    assert missing.stage == "load" and "BUG: kernel NULL pointer dereference" in missing.evidence[0], missing
    assert missing.source_line.startswith("pf_probe_B.c:") and "pf_probe_init" in missing.source_line
    assert "tpid=30000" in missing.message and not findings(report, Finding.EXITED_PID)
    assert module.notes == ("exited-pid was not checked: the VM was lost in the step before it",)
    [shown] = module.figures["plots"]["shown"]  # the main step was judged as correct-B's
    assert (shown["rows"], shown["columns"]) == (30, 70)


def test_correct_b_handles_a_missing_and_an_exited_pid(tmp_path, default_kernel):
    """correct-B checks only tpid <= 0: with a pid no process has it loads, records nothing and unloads."""
    report = run_check(tmp_path, default_kernel, "correct-B")
    [missing] = findings(report, Finding.MISSING_PID)
    [exited] = findings(report, Finding.EXITED_PID)
    assert missing.severity == exited.severity == "info", (missing, exited)
    assert "loaded and unloaded cleanly" in missing.message and missing.evidence == (
        "pf_probe_B: no page faults recorded for pid 30000",
    )


def test_an_init_that_never_returns_is_lost_in_the_load(tmp_path, default_kernel):
    """init-hangs spins in pf_probe_init waiting for a fault of its held target: insmod never returns; the
    kernel reports the soft lockup (or RCU stall) in pf_probe_init, and the VM is killed at the step's timeout
    (40 s here)."""
    report = run_check(tmp_path, default_kernel, "init-hangs", timeout=40.0)
    [module] = report.modules
    [splat] = findings(report, Finding.KERNEL_SPLAT)
    assert splat.stage == "load" and ("soft lockup" in splat.evidence[0] or "stall" in splat.evidence[0]), splat
    assert "pf_probe_init" in splat.source_line and "RIP: 0010:pf_probe_init+" in " ".join(splat.evidence)
    [lost] = findings(report, Finding.VM_LOST)
    assert lost.stage == "load" and "killed" in lost.message
    assert module.notes[-1] == "missing-pid and exited-pid were not checked: the VM was lost in the main step"
