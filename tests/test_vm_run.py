"""Real runs in QEMU (TCG): the modules load in Debian's kernel and give exact results.

Most tests share one boot (the `vm` fixture); those that test the command line
as a user runs it start `pfharness run` themselves.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import qemu_pids, traced

from pfharness import step
from pfharness.results import folded, output_format
from pfharness.results.records_file import FaultRecord

pytestmark = pytest.mark.vm
PFHARNESS = [sys.executable, "-m", "pfharness.cli"]


REPO = Path(__file__).resolve().parent.parent


def region_of(output: str) -> tuple[int, int]:
    m = re.search(r"region=0x([0-9a-f]+)-0x([0-9a-f]+)", output)
    assert m, output
    return int(m.group(1), 16), int(m.group(2), 16)


@pytest.mark.core
def test_b_plots_30_by_70(vm, built_modules, programs):
    result = traced(vm, built_modules, "B", programs["touch_pages"], 200)
    assert result.insmod_status == 0 and result.rmmod_status == 0 and result.workload_status == 0
    report = result.report
    assert report.recorded >= 200 and report.dropped == 0 and report.capacity == 1_048_576
    [plot] = report.plots
    assert plot.complete and plot.plot_class == "all" and plot.comm == "touch_pages"
    assert len(plot.rows) == 30 and all(len(r) == 70 for r in plot.rows)
    assert plot.faults == report.recorded and plot.outside == 0
    assert plot.x_labels[0] == "0.000" and len(plot.x_labels) == 3
    # Folded (the default): every label is a band's first or last page, the lowest at the bottom row.
    assert plot.scale == "folded" and plot.bands and 29 in plot.y_labels
    labels = {int(v, 16) for v in plot.y_labels.values()}
    assert labels <= {b.pmin for b in plot.bands} | {b.pmax for b in plot.bands}
    assert int(plot.y_labels[29], 16) == plot.page_min == plot.bands[0].pmin
    assert plot.bands[-1].pmax == plot.page_max
    assert plot.marks() > 0


def test_a_prints_exactly_the_touched_pages(vm, built_modules, programs):
    """Oracle: touch_pages faults each of its N fresh pages exactly once, in order."""
    n = 64
    result = traced(vm, built_modules, "A", programs["touch_pages"], n)
    start, end = region_of(result.workload_output)
    in_region = [a for a in result.report.fault_addresses if start <= a < end]
    assert len(in_region) == n
    assert in_region == sorted(in_region)
    assert {a >> 12 for a in in_region} == set(range(start >> 12, end >> 12))
    assert result.report.faults == len(result.report.fault_addresses)


def test_c_plots_only_classes_with_faults(vm, built_modules, programs):
    result = traced(vm, built_modules, "C", programs["touch_pages"], 100)
    report = result.report
    drawn = {p.plot_class for p in report.plots}
    assert drawn | set(report.empty_classes) == {"code", "data", "other"}
    assert not drawn & set(report.empty_classes)
    assert all(p.faults > 0 and len(p.rows) == 30 for p in report.plots)
    assert sum(p.faults for p in report.plots) == report.recorded
    other = next(p for p in report.plots if p.plot_class == "other")
    assert other.faults >= 100  # the anonymous region is neither code nor data
    assert len({p.t_span_ns for p in report.plots}) == 1  # C's plots on one clock (the run's)


def test_c_plots_on_one_clock_redraw_alike(vm, built_modules, programs):
    """Each of C's plots is drawn on the clock of all the records, as folded.py redraws it from the records the
    module printed (dump_records=1; the linear scale needs no region table): line for line, and its span is the
    run's, not the class's."""
    result = traced(
        vm, built_modules, "C", programs["touch_pages"], 100, params=("dump_records=1", "plot_scale=linear")
    )
    report = result.report
    assert len(report.records) == report.recorded and len(report.plots) >= 2
    keys = [key for key, _ in output_format.FAULT_CLASSES]
    shift = output_format.RECORD_FLAG_CLASS_SHIFT
    records = [
        FaultRecord(r.t_ns, r.address, r.tgid or 0, r.region or 0, 0, keys.index(r.fault_class or "other") << shift)
        for r in report.records
    ]
    clock = folded.time_extent(records)
    spans = set()
    for plot in report.plots:
        mine = [r for r in records if r.flags >> shift == keys.index(plot.plot_class)]
        spans.add(folded.time_extent(mine))
        drawn = folded.draw(
            mine,
            [],
            scale="linear",
            pid=plot.pid,
            comm=plot.comm,
            plot_class=plot.plot_class,
            class_title=dict(output_format.FAULT_CLASSES)[plot.plot_class],
            clock=clock,
        )
        assert drawn.lines == plot.lines
        assert plot.t_span_ns == clock[1] - clock[0]
    assert len(spans) > 1  # the classes' own spans differ: one clock is not a coincidence


@pytest.mark.core
def test_hold_before_exec_keeps_the_start_up_faults(vm, built_modules, programs):
    """With the hold, the loader's faults come before main()'s page; started first (the course
    script), the module is armed too late for some or all of them."""

    def faults_before_main(hold):
        result = traced(vm, built_modules, "A", programs["hold_probe"], 1500, hold=hold)
        main_page = int(re.search(r"main_page=0x([0-9a-f]+)", result.workload_output).group(1), 16) >> 12
        pages = [a >> 12 for a in result.report.fault_addresses]
        assert main_page in pages, "the fault of main()'s page was not recorded"
        return pages.index(main_page), len(pages)

    held_before, held_total = faults_before_main(True)
    late_before, late_total = faults_before_main(False)
    print(f"faults before main's page: held {held_before} of {held_total}, course script {late_before} of {late_total}")
    assert held_before >= 20  # exec, the loader and libc start-up, all before main()
    # Started first, the program races the module's load: it always loses at least
    # its exec-time faults (how many more depends on timing). run_step.sh starts it directly
    # (no wrapper to exec first: the step's session is set up before), as the course's `$* &`.
    assert late_before < held_before
    assert late_total < held_total


def test_host_target_inside_the_vm(vm, built_modules, host_run_out, tmp_path):
    """The guest sees the host's root, so the same virtualenv runs `--target host` there."""
    out_root = host_run_out
    command = [
        "sh",
        "-c",
        'cd "$1" && shift && exec "$@"',
        "pfh",
        str(REPO),
        *PFHARNESS,
        "run",
        "--target",
        "host",
        "--module",
        "B",
        "--out",
        str(out_root),
        "--transcript",
        "/tmp/host-run.log",
        "--json",
        "--",
        "/bin/true",
    ]
    request = step.TraceRequest("B", None, tuple(command), timeout=300)
    result = step.trace(vm, request)
    assert result.workload_status == 0, result.workload_output
    data = json.loads(result.workload_output[result.workload_output.index("{") :])
    assert data["target"] == "host" and data["accelerator"] == "host"
    assert data["kernel_release"] == built_modules.kernel_release
    assert data["counters"]["recorded"] > 0 and data["counters"]["dropped"] == 0
    assert len(data["plots"]) == 1 and len(data["plots"][0]["rows"]) == 30
    assert data["kernel_warnings"] == []


def run_cli(*args, timeout=300):
    return subprocess.run([*PFHARNESS, *args], check=False, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_cli_run_passes_exit_status_and_json_matches_parse(tmp_path, built_modules):
    transcript = tmp_path / "run.log"
    out_root = tmp_path / "out"
    out_root.mkdir()
    (out_root / built_modules.kernel_release).symlink_to(built_modules.modules["B"].parent)
    run = run_cli(
        "run",
        "--accel",
        "tcg",
        "--module",
        "B",
        "--out",
        str(out_root),
        "--transcript",
        str(transcript),
        "--json",
        "--",
        "sh",
        "-c",
        "echo hello from the workload; exit 3",
    )
    assert run.returncode == 3, run.stderr
    data = json.loads(run.stdout)
    assert data["workload_status"] == 3 and data["exit_status"] == 3
    assert data["workload_output"] == "hello from the workload\n"
    assert data["module"] == "pf_probe_B" and data["accelerator"] == "tcg" and data["pid"] > 1
    assert data["counters"]["recorded"] > 0 and data["kernel_warnings"] == []
    assert set(data["stage_seconds"]) == {"build", "boot", "run", "collect"}
    assert [len(r) for r in data["plots"][0]["rows"]] == [70] * 30
    assert data["transcript"] == str(transcript)

    parsed = run_cli("parse", "--json", str(transcript))
    assert parsed.returncode == 3
    assert json.loads(parsed.stdout) == data
    text = run_cli("parse", str(transcript))
    assert "---- BEGIN PLOT" in text.stdout and "workload status: 3" in text.stdout


def test_panicking_guest_is_reported_lost_and_leaves_no_qemu(tmp_path, built_modules):
    before = qemu_pids()
    transcript = tmp_path / "panic.log"
    out_root = tmp_path / "out"
    out_root.mkdir()
    (out_root / built_modules.kernel_release).symlink_to(built_modules.modules["B"].parent)
    start = time.monotonic()
    run = run_cli(
        "run",
        "--accel",
        "tcg",
        "--module",
        "B",
        "--out",
        str(out_root),
        "--transcript",
        str(transcript),
        "--timeout",
        "60",
        "--",
        "sh",
        "-c",
        "echo c > /proc/sysrq-trigger",
    )
    elapsed = time.monotonic() - start
    assert run.returncode == 123, (run.returncode, run.stderr)
    assert "the VM was lost" in run.stderr and "Kernel panic - not syncing" in run.stderr
    assert str(transcript) in run.stderr
    assert elapsed < 60
    assert qemu_pids() <= before
    assert "sysrq: Trigger a crash" in transcript.read_text(errors="replace")


@pytest.mark.core
def test_handin_archive_builds_with_plain_make_and_plots(vm, tmp_path, default_kernel):
    """The tar.gz stands alone: extract, `make` (no pfharness), load the built B in the VM."""
    import tarfile

    from pfharness import proc
    from pfharness.kmod import handin, toolchain

    report = tmp_path / "report.txt"
    report.write_text("findings\n")
    archive = handin.make_dist(tmp_path / "handin.tar.gz", report, default_kernel.release)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x")
    src = tmp_path / "x" / "pf_probe"
    # plain `make`; for a kernel not installed, its headers' directory and its toolchain (KERNELS.md)
    kdir = f"KDIR={default_kernel.headers}"
    argv = ["make"] if default_kernel.installed else toolchain.make_argv(default_kernel.toolchain, src, [kdir])
    build = proc.run(argv, cwd=src, merge_stderr=True)
    assert build.returncode == 0, build.stdout
    assert not re.search(r"\bwarning:", build.stdout)
    for letter in "ABC":
        assert (src / f"pf_probe_{letter}.ko").is_file()
    request = step.TraceRequest("B", src / "pf_probe_B.ko", ("/bin/true",))
    result = step.trace(vm, request)
    assert result.insmod_status == 0 and not result.splats
    [plot] = result.report.plots
    assert len(plot.rows) == 30 and plot.faults > 0


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_qemu_dies_with_the_harness(tmp_path, built_modules, how):
    """Killing the harness (a crash) or interrupting it (Ctrl-C) leaves no QEMU behind."""
    import signal

    out_root = tmp_path / "out"
    out_root.mkdir()
    (out_root / built_modules.kernel_release).symlink_to(built_modules.modules["B"].parent)
    transcript = tmp_path / "t.log"

    def ours() -> set[int]:
        """This run's QEMU: its argv exports the run directory under out_root (other QEMUs on a shared
        machine come and go meanwhile)."""
        found = set()
        for pid in qemu_pids():
            try:
                if str(out_root).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.add(pid)
            except OSError:
                pass
        return found

    harness = subprocess.Popen(
        [
            *PFHARNESS,
            "run",
            "--accel",
            "tcg",
            "--out",
            str(out_root),
            "--transcript",
            str(transcript),
            "--",
            "sleep",
            "60",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while "workload-begin" not in (transcript.read_text(errors="replace") if transcript.exists() else ""):
        assert time.monotonic() < deadline and harness.poll() is None, "the run did not reach its workload"
        time.sleep(0.2)
    assert ours(), "no QEMU running during the workload"
    harness.send_signal(getattr(signal, how))
    harness.wait(timeout=30)
    deadline = time.monotonic() + 10
    while ours() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not ours(), f"QEMU survived the harness's {how}"


def test_host_target_timeout_unloads_the_module(vm, built_modules, host_run_out):
    """--target host (inside the VM): a run that times out is stopped, children included, and the module unloaded."""
    out_root = host_run_out
    command = [
        "sh",
        "-c",
        'cd "$1" && shift && "$@"; echo "harness_status=$?"; '
        'if grep -q "^pf_probe_B " /proc/modules; then echo still_loaded; fi; '
        "if pgrep -x sleep >/dev/null; then echo sleep_left; fi",
        "pfh",
        str(REPO),
        *PFHARNESS,
        "run",
        "--target",
        "host",
        "--module",
        "B",
        "--out",
        str(out_root),
        "--transcript",
        "/tmp/host-timeout.log",
        "--timeout",
        "3",
        "--",
        "sleep",
        "60",
    ]
    result = step.trace(vm, step.TraceRequest("B", None, tuple(command), timeout=120))
    assert "harness_status=124" in result.workload_output, result.workload_output
    assert "still_loaded" not in result.workload_output and "sleep_left" not in result.workload_output


@pytest.mark.core
def test_a_step_waits_for_a_port_that_is_still_held(vm, built_modules):
    """A virtio port opens only once. While something still holds pfh.out (here a process that keeps it for
    0.6 s; on 5.10 the previous step's last holder still being released), the console shell cannot start the
    step script: the harness tries again (for up to 2 s) instead of reporting a lost step."""
    from pfharness.results import step_protocol as sp

    hold = f"(sleep 0.6 </dev/null >{sp.port_path(sp.OUT_PORT)} 2>&1 &)"
    held = vm.run(["sh", "-c", hold], stage="hold", timeout=30)
    assert held.status == 0
    result = traced(vm, built_modules, "B", "echo", "ran after the port was free")
    assert result.verdict.error is None, result.verdict.error
    assert "ran after the port was free" in result.workload_output and result.report.recorded
