"""The module check's missing-pid and exited-pid steps (check/pid_steps.py) from recorded material: the console
transcripts of two real `pfharness check` runs on Debian's 6.1 (tests/student_modules/missing-pid-null, whose
init dereferences the NULL task of tpid=30000 and panics the guest; the project's own pf_probe_B, which
refuses the pid and unloads cleanly after its target exited), and the step command's options. The steps in a
VM are in test_check_vm.py and test_check_handin_vm.py."""

from __future__ import annotations

from pathlib import Path

from pfharness.check import pid_steps
from pfharness.check.findings import Finding
from pfharness.check.run import console_lines, step_findings
from pfharness.errors import VmLost, VmTimeout
from pfharness.results.model import TraceResult
from pfharness.step import TraceRequest

DATA = Path(__file__).parent / "data" / "check"
NAME = "pf_probe_B"


def result(**kw) -> TraceResult:
    values = {"insmod_status": 0, "rmmod_status": 0, "workload_status": 0, "complete": True, **kw}
    return TraceResult(NAME, ["/bin/true"], **values)


def same(finding):
    return finding


def test_the_console_splits_at_each_steps_note():
    console = console_lines(DATA / "dist_b_pid_steps.console.log")
    main, missing, exited = pid_steps.split_console(console)
    assert len(main) + len(missing) + len(exited) == len(console)
    assert "oracle_touch" not in "".join(missing) and any("insmod status=0" in ln for ln in main)
    assert any("no process with pid 30000" in ln for ln in missing)
    assert not any("no process with pid" in ln for ln in (*main, *exited))
    assert pid_steps.split_console(console[:5]) == [console[:5]]  # one step: one part


def test_a_splat_in_the_missing_pid_step_is_its_finding_never_the_main_steps():
    console = console_lines(DATA / "missing_pid_null.console.log")
    main, missing = pid_steps.split_console(console)
    assert step_findings(result(), lost=None, console=main, name=NAME, params=["tpid"], pid_param="tpid") == []
    found = pid_steps.finding(Finding.MISSING_PID, None, VmLost("lost"), missing, name=NAME, with_source=same)
    assert found is not None and found.id is Finding.MISSING_PID and found.is_error and found.stage == "load"
    assert found.evidence[0].startswith("BUG: kernel NULL pointer dereference")
    assert any("pf_probe_init+0x88" in e for e in found.evidence)
    assert "tpid=30000, a pid no process has" in found.message and "pid_task() gives NULL" in found.message


def test_what_handled_well_means():
    refused = result(insmod_status=1, kernel_messages=["pf_probe_B: no process with pid 30000: start it first"])
    f = pid_steps.finding(Finding.MISSING_PID, refused, None, [], name=NAME, with_source=same)
    assert f is not None and f.severity == "info" and f.stage == "load" and "refused to load" in f.message
    assert f.evidence == ("pf_probe_B: no process with pid 30000: start it first",)
    silent = pid_steps.finding(Finding.MISSING_PID, result(insmod_status=1), None, [], name=NAME, with_source=same)
    assert silent is not None and silent.severity == "info" and "printed no reason" in silent.message
    clean = result(kernel_messages=["pf_probe_B: no page faults recorded for pid 30000"])
    f = pid_steps.finding(Finding.EXITED_PID, clean, None, [], name=NAME, with_source=same)
    assert f is not None and f.severity == "info" and "unloaded cleanly" in f.message


def test_a_failed_rmmod_garbage_or_a_hang_is_an_error():
    stuck = result(rmmod_status=1, kernel_messages=["pf_probe_B: busy"])
    f = pid_steps.finding(Finding.EXITED_PID, stuck, None, [], name=NAME, with_source=same)
    assert f is not None and f.is_error and "rmmod failed (status 1)" in f.message
    poison = result(kernel_messages=["pf_probe_B: target kkkkkkkkkkkkkkkk\\xa5 exited"])
    f = pid_steps.finding(Finding.EXITED_PID, poison, None, [], name=NAME, with_source=same)
    assert f is not None and f.is_error and "garbage" in f.message and f.evidence == tuple(poison.kernel_messages)
    hung = ["x workload-begin", "x workload-end status=0", "watchdog: BUG: soft lockup - CPU#0 stuck for 22s!"]
    f = pid_steps.finding(Finding.EXITED_PID, None, VmTimeout("t"), hung, name=NAME, with_source=same)
    assert f is not None and f.is_error and f.stage == "unload"


def test_a_pid_that_was_not_free_shows_nothing():
    taken = result(workload_status=1)
    assert pid_steps.finding(Finding.MISSING_PID, taken, None, [], name=NAME, with_source=same) is None
    assert pid_steps.not_shown([], [(taken, None)]) == [
        "missing-pid was not checked: the pid was not free in the guest (/proc/30000 was there)",
        "exited-pid was not checked: the VM was lost in the step before it",
    ]


def test_the_steps_follow_only_a_clean_main_step():
    assert pid_steps.not_run(result()) == []
    assert pid_steps.not_run(None) == [f"{pid_steps.NOT_RUN}: the VM was lost in the main step"]
    assert "did not load" in pid_steps.not_run(result(insmod_status=1))[0]
    assert "did not run and unload cleanly" in pid_steps.not_run(result(splats=["BUG: x"]))[0]


def test_the_missing_pid_step_loads_the_module_with_the_pid_of_no_process():
    missing, exited = pid_steps.steps("B", "tpid", 120.0)
    assert missing.pid_value == pid_steps.MISSING_PID and exited.pid_value is None
    assert not missing.save and not exited.save and missing.timeout == pid_steps.STEP_TIMEOUT
    request = TraceRequest("B", Path("/m/pf_probe_B.ko"), missing.command, pid_value=missing.pid_value)
    argv = request.argv("0" * 32)
    assert argv[argv.index("--pid-value") + 1] == "30000" and "--save-dir" not in argv


def test_the_students_lines_and_plot_are_the_main_steps_only():
    """grade's pf_probe_B.log and plot: what the module printed tracing the check's workload, not its lines of
    the pid steps after it (the exited-pid step prints a second plot, of /bin/true)."""
    from pfharness.grade import student_dir

    transcript = DATA / "dist_b_pid_steps.console.log"
    lines = student_dir.module_lines(transcript, NAME)
    assert sum("BEGIN PLOT" in ln for ln in lines) == 1, lines
    assert not any("30000" in ln or "comm=true" in ln for ln in lines), [ln for ln in lines if "30000" in ln]
