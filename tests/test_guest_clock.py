"""The guest's clock keeps the host's pace, however busy the host is.

The modules' timestamps (the plot's time axis) and every timing in the guest come from its TSC.
Left to calibrate the TSC against the emulated HPET/PIT, a guest on a busy host once measured it
57 times too slow (its clock ran 57 times too fast); pfharness gives it the host's TSC frequency.
"""

from __future__ import annotations

import time

import pytest

from pfharness.guest.boot import host_tsc_khz


def test_host_tsc_khz_from_bogomips(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nbogomips\t: 5192.28\n")
    assert host_tsc_khz(cpuinfo) == 2596140
    cpuinfo.write_text("processor\t: 0\nbogomips\t: 1.0\n")  # not a TSC-derived figure
    assert host_tsc_khz(cpuinfo) is None
    cpuinfo.write_text("processor\t: 0\n")
    assert host_tsc_khz(cpuinfo) is None


def _uptime(vm) -> float:
    return float(vm.run(["cat", "/proc/uptime"], stage="uptime", timeout=120).output.split()[0])


@pytest.mark.vm
def test_guest_clock_keeps_the_hosts_pace(vm):
    assert "tsc_early_khz=" in vm.run(["cat", "/proc/cmdline"], stage="cmdline", timeout=120).output
    host0, guest0 = time.monotonic(), _uptime(vm)
    time.sleep(5)
    guest1 = _uptime(vm)
    host1 = time.monotonic()
    # The guest's interval lies inside the host's (the two reads take time): never more, not much less.
    assert guest1 - guest0 <= (host1 - host0) * 1.02 + 0.05
    assert guest1 - guest0 >= 5 * 0.98
