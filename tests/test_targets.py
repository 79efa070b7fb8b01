"""What each target knows, asked of it directly: how the run's save directory looks inside it, which
environment applies there, which paths it cannot be given, the kernel log buffer a VM boots with."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfharness.errors import UsageError
from pfharness.pipeline.steps import Step
from pfharness.pipeline.targets import HostSpec, VmSpec, log_buffer_mib
from pfharness.values import Accelerator, Module, UnknownModule


def test_the_save_directory_is_mounted_in_the_guest_and_itself_on_the_host(tmp_path):
    guest = tmp_path / "runs" / "x" / "guest"
    assert VmSpec().save_path(guest) == "/run/pfh-save"
    assert HostSpec().save_path(guest) == str(guest)


def test_the_guest_leaves_out_what_cannot_apply_there_and_the_host_keeps_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("PFH_KEPT", "yes")
    in_guest = dict(VmSpec().environment({"EXTRA": "1"}, tmp_path))
    on_host = dict(HostSpec().environment({"EXTRA": "1"}, tmp_path))
    assert "DISPLAY" not in in_guest and on_host["DISPLAY"] == ":0"
    for env in (in_guest, on_host):
        assert (env["PFH_KEPT"], env["EXTRA"], env["PWD"]) == ("yes", "1", str(tmp_path))


def test_qemu_cannot_export_a_path_with_a_comma_the_host_can_use_it(tmp_path):
    odd = tmp_path / "a,b" / "guest"
    with pytest.raises(UsageError, match="no ','"):
        VmSpec().check_save_dir(odd)
    HostSpec().check_save_dir(odd)


def test_a_vm_spec_is_checked_when_it_is_made():
    with pytest.raises(UsageError, match="--smp"):
        VmSpec(smp=0)
    with pytest.raises(UsageError, match="--memory"):
        VmSpec(memory_mib=128)
    with pytest.raises(UsageError, match="--thp"):
        VmSpec(thp="sometimes")
    assert VmSpec(accel=Accelerator.tcg).accel == "tcg"


def test_modules_are_parsed_once_into_their_letter_and_name():
    assert Module.parse(" pf_probe_b ") == Module("B") and Module("B").name == "pf_probe_B"
    with pytest.raises(UnknownModule) as caught:
        Module.parse("D")
    assert isinstance(caught.value, UsageError) and caught.value.exit_status == 2


def test_one_boot_gets_the_log_buffer_its_largest_step_needs():
    def step(letter: str, *params: str) -> Step:
        return Step(Module(letter), ("true",), params=params)

    assert log_buffer_mib([step("B"), step("C", "dump_records=0")]) == 1
    assert log_buffer_mib([step("B"), step("C", "dump_records=1")]) == 16
    assert log_buffer_mib([step("C"), step("A")]) == 16
    assert log_buffer_mib([]) == 1


def test_the_host_target_runs_only_on_the_running_kernel(monkeypatch, tmp_path):
    from pfharness.kernel import Kernel
    from pfharness.kmod import kernels

    other = Kernel("0.0.0-other", Path("/boot/vmlinuz-0"), Path("/usr/src/h"), Path("/lib/modules/0"))
    monkeypatch.setattr(kernels, "select", lambda release, *a, **k: other)
    with pytest.raises(UsageError, match="--target host runs on this machine's kernel"):
        HostSpec().prepare("0.0.0-other", tmp_path)
    assert not list(tmp_path.iterdir()), "nothing was built"
