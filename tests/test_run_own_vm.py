"""`pfharness run --source DIR --module X -- CMD`: the user's own module through run's pipeline (build in
the sandbox, a VM, the workload held before exec, the splat scan); its kernel log lines shown as printed,
not read as pfharness's format. Two VMs, about 15 s each under TCG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pfharness.cli import app

CORPUS = Path(__file__).parent / "student_modules"

pytestmark = pytest.mark.vm


def run_own(tmp_path: Path, release: str, case: str, *args: str):
    argv = ["run", "--source", str(CORPUS / case), "-m", "B", "--accel", "tcg", "--kernel-release", release]
    return CliRunner().invoke(app, [*argv, "--out", str(tmp_path / case), *args])


def test_run_shows_your_module_lines_as_printed(tmp_path, default_kernel):
    r = run_own(tmp_path, default_kernel.release, "correct-B", "--json", "--", "/bin/echo", "hello")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["own_module"] and data["harness_error"] is None and data["workload_status"] == 0
    lines = data["module_lines"]
    assert any(ln.startswith("pf_probe_B: Page faults of pid ") for ln in lines), lines
    assert sum("|" in ln for ln in lines) >= 30  # its plot, row by row, unparsed
    assert data["plots"] == [] and data["counters"]["seen"] is None  # not read as pfharness's format
    assert (Path(data["run_dir"]) / "run.json").is_file()


def test_run_catches_your_module_crashing_its_kernel(tmp_path, default_kernel):
    """div-zero divides by a zero time span at unload: the Oops is reported, the VM is lost, not the host. Booted
    with panic_print=0x20 (as check), the error quotes the module's own info line at load, which the console's
    loglevel hid, from the kernel's replay of its log at the panic."""
    r = run_own(tmp_path, default_kernel.release, "div-zero", "--", "/bin/true")
    assert r.exit_code not in (0, 1, 120), r.output
    assert "divide error" in r.output and "Traceback" not in r.output, r.output
    assert "the module's last kernel lines before the crash" in r.output, r.output
    assert "    pf_probe_B: recording the page faults of pid " in r.output, r.output
