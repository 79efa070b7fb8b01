"""`pfharness check --source DIR` on the hand-in archive's contents, as `pfharness dist` writes it (not a
copy of today's files): every check passes on the default kernel, and with one module broken (B's pid
parameter renamed, as real hand-ins do) only that module has findings. Four VMs, about 25 s each under TCG."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pfharness.check.findings import Finding
from pfharness.check.run import CheckRequest, check
from pfharness.cli import app
from pfharness.values import Accelerator

pytestmark = pytest.mark.vm


def handin_dir(tmp_path: Path, release: str, name: str) -> Path:
    """The archive `pfharness dist` writes, unpacked into tmp_path/name: its pf_probe directory."""
    archive = tmp_path / f"{name}.tar.gz"
    r = CliRunner().invoke(app, ["dist", "--out", str(archive), "--kernel-release", release])
    assert r.exit_code == 0, r.output
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / name, filter="data")
    return tmp_path / name / "pf_probe"


def run_check(source: Path, out: Path, release: str, modules: tuple[str, ...] = ()):
    request = CheckRequest((source,), out, modules, kernel_release=release, accel=Accelerator.tcg)
    return check(request)


def errors(module) -> set[Finding]:
    return {f.id for f in module.findings if f.is_error}


def handles_pids(module) -> None:
    """The project's modules refuse a pid no process has, saying why, and unload cleanly after their target
    exited (docs/check.md: both handled well, so both info)."""
    found = {f.id: f for f in module.findings if f.id in (Finding.MISSING_PID, Finding.EXITED_PID)}
    assert set(found) == {Finding.MISSING_PID, Finding.EXITED_PID} and not any(f.is_error for f in found.values())
    missing = found[Finding.MISSING_PID]
    assert "refused to load" in missing.message and "no process with pid 30000" in missing.message, missing
    assert "unloaded cleanly" in found[Finding.EXITED_PID].message


def test_the_handin_passes_and_one_broken_module_has_only_its_findings(tmp_path, default_kernel):
    release = default_kernel.release
    good = handin_dir(tmp_path, release, "good")
    report = run_check(good, tmp_path / "out-good", release, ("B",))
    [b] = report.modules
    assert report.passed and b.passed and not errors(b), report.to_json()
    assert not [f for f in report.findings if f.is_error]
    handles_pids(b)

    broken = handin_dir(tmp_path, release, "broken")
    source = broken / "pf_probe_B.c"
    text, renamed = re.subn(r"\btpid\b", "process_id", source.read_text())
    assert renamed > 0  # the module has a tpid parameter to rename
    source.write_text(text)
    report = run_check(broken, tmp_path / "out-broken", release)
    by_name = {m.module: m for m in report.modules}
    assert sorted(by_name) == ["pf_probe_A", "pf_probe_B", "pf_probe_C"] and not report.passed
    for name in ("pf_probe_A", "pf_probe_C"):
        assert by_name[name].passed and not errors(by_name[name]), by_name[name].to_json()
        assert not by_name[name].notes  # the oracle judged it
        handles_pids(by_name[name])
    found = errors(by_name["pf_probe_B"])
    assert Finding.NO_TPID_PARAM in found, found
    # renamed, it refuses process_id=0 (load-failed), or loads and traces nothing (no plot)
    assert found <= {Finding.NO_TPID_PARAM, Finding.LOAD_FAILED, Finding.PLOT_MISSING}, found
    [param] = [f for f in by_name["pf_probe_B"].findings if f.id is Finding.NO_TPID_PARAM]
    assert param.evidence == ("pf_probe_B: unknown parameter 'tpid' ignored",) and "process_id" in param.message
