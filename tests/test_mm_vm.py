"""The guest faults like this machine: `run` copies the host's transparent-huge-page and overcommit
settings into the guest (vm/init.sh, pfh.mm=), and --thp chooses THP's mode. The oracle is the
kernel's own: the guest's sysfs read back by a workload, and a program's own fault count
(ru_minflt + ru_majflt) for a region that faults once per 2 MiB with THP and once per 4 KiB without."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pfharness import mm_settings

pytestmark = pytest.mark.vm
REPO = Path(__file__).resolve().parent.parent
MIB = 64  # the region touch_thp writes: 16,384 small pages or 32 huge ones


def run_json(tmp_path, built_modules, *args):
    out_root = tmp_path / "out"
    out_root.mkdir(exist_ok=True)
    link = out_root / built_modules.kernel_release
    if not link.exists():
        link.symlink_to(built_modules.modules["B"].parent)
    argv = [sys.executable, "-m", "pfharness.cli", "run", "--accel", "tcg", "--out", str(out_root), "--json", *args]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.core
def test_the_guest_takes_the_hosts_settings(tmp_path, built_modules):
    host = mm_settings.read()
    files = [f"/{mm_settings.ROOTS[k.split('/', 1)[0]]}/{k.split('/', 1)[1]}" for k in host.fields()]
    # cat, not the shell's read: dash reads a byte at a time, and a sysctl file gives nothing past offset 0.
    script = 'for f in "$@"; do printf "%s=" "$f"; cat "$f"; done'
    data = run_json(tmp_path, built_modules, "--module", "B", "--", "sh", "-c", script, "sh", *files)
    in_guest = dict(line.split("=", 1) for line in data["workload_output"].splitlines())
    expected = dict(zip(files, host.fields().values(), strict=True))
    assert {f: mm_settings.selected(v) for f, v in in_guest.items()} == expected
    assert data["mm"] == {"settings": host.fields(), "source": "copied from this host"}


@pytest.mark.core
@pytest.mark.parametrize("mode", ["never", "always"])
def test_thp_mode_changes_the_faults_as_the_kernel_counts_them(tmp_path, built_modules, programs, mode):
    data = run_json(tmp_path, built_modules, "--module", "B", "--thp", mode, "--", str(programs["touch_thp"]), str(MIB))
    assert data["mm"]["settings"]["thp/enabled"] == mode
    rusage = int(re.search(r"rusage_faults=(\d+)", data["workload_output"]).group(1))
    # Exact either way: every fault the process took after the module was armed is recorded.
    assert data["counters"]["recorded"] == rusage - data["pre_exec_faults"] and data["exact"]
    small_pages = MIB * 256
    if mode == "never":
        assert data["counters"]["recorded"] >= small_pages
    else:  # one fault per 2 MiB of the region, and the program's own few hundred
        assert data["counters"]["recorded"] < small_pages // 10
