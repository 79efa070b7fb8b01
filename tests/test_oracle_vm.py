"""The oracle beside a module (run_step.sh --oracle-ko, issue 22): pfharness's own recorder, built as pfh_oracle.ko,
loaded before pfharness's own A for the same pid in one step. Both modules' output is there, each under its own
name; the oracle's saved records are exactly the workload's own fault count (tests/programs/exact_end.h), and
A's printed addresses, compared with them (check/compare.py), match every page, the other thread's too."""

from __future__ import annotations

import re

import pytest
from test_student_corpus import case, corpus_built  # noqa: F401 - a fixture: the corpus, built

from pfharness import step
from pfharness.check import compare, oracle_faults
from pfharness.check.findings import Finding
from pfharness.guest.session import VmOptions, VmSession
from pfharness.kmod import kbuild
from pfharness.results import output_format, run_dir
from pfharness.results.step_protocol import SAVE_MOUNT

pytestmark = [pytest.mark.vm, pytest.mark.kbuild]


@pytest.fixture(scope="module")
def oracle_ko(tmp_path_factory, default_kernel):
    return kbuild.build(kbuild.oracle_request(tmp_path_factory.mktemp("oracle"), default_kernel)).modules["B"]


@pytest.fixture(scope="module")
def save_vm(tmp_path_factory, default_kernel):
    directory = run_dir.new_run_dir(tmp_path_factory.mktemp("runs"), "pf_probe_A")
    options = VmOptions(
        kernel=default_kernel,
        transcript=directory / run_dir.TRANSCRIPT,
        accel="tcg",
        smp=2,
        save_dir=directory / run_dir.GUEST_SUBDIR,
    )
    with VmSession(options) as session:
        yield session, directory


def test_the_oracle_records_what_a_prints_and_every_fault(save_vm, built_modules, programs, oracle_ko):
    vm, directory = save_vm
    assert oracle_ko.name == "pfh_oracle.ko"
    request = step.TraceRequest(
        "A",
        built_modules.modules["A"],
        (str(programs["touch_pages"]), "60", "2"),  # two threads, 60 pages each
        timeout=300,
        save_dir=SAVE_MOUNT,
        save_dir_host=directory / run_dir.GUEST_SUBDIR,
        oracle_ko=oracle_ko,
        oracle_params=("max_records=100000",),
    )
    result = step.trace(vm, request)
    assert result.complete and not result.splats and result.workload_status == 0, result.kernel_messages[-5:]
    assert (result.oracle_insmod_status, result.insmod_status, result.rmmod_status, result.oracle_rmmod_status) == (
        0,
        0,
        0,
        0,
    )
    # The report is A's; the oracle's lines are its own, under its own name.
    assert result.report.module == "pf_probe_A" and result.report.fault_addresses
    oracle_lines = [m.split(": ", 1)[1] for m in result.kernel_messages if m.startswith("pfh_oracle: ")]
    summary = next(v for line in oracle_lines if (v := output_format.LINES["records_summary"].parse(line)))
    assert summary["pid"] == result.pid
    # The saved files are the oracle's (saved module=pfh_oracle), all of its records.
    assert re.search(r" saved module=pfh_oracle files=records,regions", vm.transcript_path.read_text(errors="replace"))
    saved = result.saved
    assert saved is not None and saved.dropped == 0 and len(saved.records) == summary["recorded"]
    own = int(re.search(r"rusage_faults=(\d+)", result.workload_output).group(1)) - result.pre_exec_faults
    assert len(saved.records) == own, (len(saved.records), own)
    faults = oracle_faults.from_records_file(saved.records)
    assert len({f.tid for f in faults} - {result.pid}) == 2, "both threads seen (beside the main thread)"
    compared = compare.compare_a(result.report.lines, faults, result.pid)
    print(compared.figures)
    assert [i.finding for i in compared.items] == [Finding.A_ADDRESSES], compared.items
    assert compared.figures["matched"] == compared.figures["real_pages"] and compared.figures["thread_pages"] >= 60


@pytest.mark.parametrize(
    ("name", "command", "expected"),
    [
        ("correct-A", (60, 2), set()),
        ("pid-not-tgid", (60, 2), {Finding.A_MISSES_THREADS}),
        ("correct-B", (200,), set()),
        ("plot-70x30", (200,), {Finding.PLOT_SIZE}),
        ("plot-no-labels", (200,), {Finding.PLOT_NO_LABELS}),
    ],
)
def test_the_corpus_against_the_oracle(save_vm, corpus_built, programs, oracle_ko, name, command, expected):  # noqa: PLR0917, F811 - fixtures (corpus_built's, imported) and parameters
    """tests/student_modules beside the oracle: each gives the comparison's findings its expected.toml names."""
    vm, directory = save_vm
    c = case(name)
    request = step.TraceRequest(
        c.module,
        corpus_built[name].ko,
        (str(programs["touch_pages"]), *map(str, command)),
        timeout=300,
        save_dir=SAVE_MOUNT,
        save_dir_host=directory / run_dir.GUEST_SUBDIR,
        oracle_ko=oracle_ko,
    )
    result = step.trace(vm, request)
    assert result.complete and result.oracle_insmod_status == 0 and result.insmod_status == 0, result.kernel_messages
    assert result.saved is not None and result.saved.records
    faults = oracle_faults.from_records_file(result.saved.records)
    mine = [m for m in result.kernel_messages if m.startswith(f"pf_probe_{c.module}: ")]
    if c.module == "A":
        compared = compare.compare_a(mine, faults, result.pid)
    else:
        compared = compare.compare_plots(mine, faults, result.pid, saved=result.saved)
    print(name, compared.figures)
    found = {i.finding for i in compared.items if i.severity != "info"}
    assert found == expected, compared.items
    assert found <= {Finding(f["id"]) for f in c.data.get("finding", [])}
