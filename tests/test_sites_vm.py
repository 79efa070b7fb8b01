"""Fault sites of a real run (issue 26): tests/programs/sites.c under pf_probe_B in the VM, its records saved
through the run directory's 9p export; the sites view gives exactly each function's known count, and the
file-reading function's faults are major, slower in the median than the minor ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pfharness import step
from pfharness.cli import app
from pfharness.guest.session import VmOptions, VmSession
from pfharness.results import output_format as fmt
from pfharness.results import run_dir, sites, sites_view
from pfharness.results.step_protocol import SAVE_MOUNT

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def save_vm(tmp_path_factory, default_kernel):
    directory = run_dir.new_run_dir(tmp_path_factory.mktemp("runs"), "pf_probe_B")
    options = VmOptions(
        kernel=default_kernel,
        transcript=directory / run_dir.TRANSCRIPT,
        accel="tcg",
        smp=2,
        save_dir=directory / run_dir.GUEST_SUBDIR,
    )
    with VmSession(options) as session:
        yield session, directory


def test_each_function_of_the_oracle_program_gets_exactly_its_faults(save_vm, built_modules, programs):
    vm, directory = save_vm
    request = step.TraceRequest(
        "B",
        built_modules.modules["B"],
        (str(programs["sites"]), str(programs["kinds.dat"])),
        timeout=300,
        save_dir=SAVE_MOUNT,
        save_dir_host=directory / run_dir.GUEST_SUBDIR,
    )
    result = step.trace(vm, request)
    assert result.complete and result.workload_status == 0 and not result.splats, result.kernel_messages[-5:]
    saved = result.saved
    assert saved is not None and saved.version == 2, result.saved_error
    code = [r for r in saved.regions if r.kind == "code"]
    assert str(programs["sites"]) in {r.path for r in code}, saved.regions
    view = sites.sites(saved.table, saved.regions, 100)
    by = {r.function: r for r in view.functions}
    counts = {name: (by[name].faults, by[name].major) for name in ("touch_100", "touch_300", "read_file")}
    assert counts == {"touch_100": (100, 0), "touch_300": (300, 0), "read_file": (64, 64)}, view.functions
    assert (by["touch_300"].write, by["read_file"].read) == (300, 64)
    table = saved.table
    minor = table["service_ns"][(table["flags"] & fmt.RECORD_FLAG_MAJOR) == 0]
    assert by["read_file"].median_ns > np.median(minor), (by["read_file"], np.median(minor))
    # The command over the run directory the step wrote, as a user runs it.
    run_dir.write_run_json(directory, {"module": "pf_probe_B"})
    out = CliRunner().invoke(app, ["sites", str(directory), "--json", "--top", "100"])
    assert out.exit_code == 0, out.output
    rows = {r["function"]: r["faults"] for r in json.loads(out.output)["functions"]}
    assert (rows["touch_100"], rows["touch_300"], rows["read_file"]) == (100, 300, 64)
    print("\n".join(sites_view.sites_text(view)))
