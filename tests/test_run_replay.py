"""`pfharness run` after a panic: booted with panic_print=0x20 as check is (step_result.PANIC_PRINT), its error
quotes the module's own last lines before the crash from the kernel's replay of its log (recorded transcripts of
null-deref-unload on 6.1, with and without the replay). No VM: tests/test_run_own_vm.py runs it."""

from __future__ import annotations

from pathlib import Path

from pfharness import run
from pfharness.check import run as check_run
from pfharness.errors import VmLost
from pfharness.results import step_result

DATA = Path(__file__).parent / "data" / "check"


def test_run_quotes_the_modules_last_lines_from_the_replay():
    error = VmLost("the VM was lost during the run: Kernel panic - not syncing: Fatal exception")
    with_lines = run.with_last_lines(error, DATA / "null_deref_unload_replay.console.log", "pf_probe_B")
    assert isinstance(with_lines, VmLost)
    assert str(with_lines).splitlines() == [
        str(error),
        "the module's last kernel lines before the crash (replayed by the panic):",
        "    pf_probe_B: recording the page faults of pid 132",
    ]


def test_without_a_replay_the_error_is_as_it_was():
    error = VmLost("the VM was lost during the run")
    assert run.with_last_lines(error, DATA / "null_deref_unload.console.log", "pf_probe_B") is error
    assert run.with_last_lines(error, DATA / "no-such.console.log", "pf_probe_B") is error


def test_run_and_check_boot_with_the_same_panic_print():
    assert step_result.PANIC_PRINT == "panic_print=0x20" and step_result.PANIC_PRINT in check_run.KERNEL_PARAMS
