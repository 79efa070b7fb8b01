"""pfharness benchmarks: per-fault cost against perf and bpftrace, harness turnaround,
build times and scale, in one guest boot. Writes BENCHMARKS.md. Prints figures; no pass/fail.

    .venv/bin/python bench/run.py                 # the full run (~10 minutes under TCG)
    .venv/bin/python bench/run.py --quick --out X # tiny configuration (the CI smoke test)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grade_bench  # noqa: E402
import records_bench  # noqa: E402

from pfharness import proc, step  # noqa: E402
from pfharness.kmod import kernels  # noqa: E402
from pfharness.pipeline.events import Events, notes_to  # noqa: E402
from pfharness.pipeline.prepare import Prepared  # noqa: E402
from pfharness.pipeline.prepare import prepare as prepare_kernel  # noqa: E402
from pfharness.pipeline.steps import Step  # noqa: E402
from pfharness.pipeline.targets import VmSpec  # noqa: E402
from pfharness.results import output_format as fmt  # noqa: E402
from pfharness.values import LETTERS, Accelerator, Module  # noqa: E402

BENCH = ROOT / "bench"
PFHARNESS = [sys.executable, "-m", "pfharness.cli"]
VNG_VENV = Path.home() / ".cache" / "pfharness" / "vng-venv"
SETTLE_MS = 200  # fault_bench sleeps this long before its timed loop (see bench/fault_bench.c)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Setup:
    release: str
    modules: dict[str, Path]  # A, B, C, bare (kprobe), bare-ret (kretprobe)
    program: Path  # fault_bench
    touch: Path  # tests/programs/touch_pages
    work: Path
    prepared: Prepared  # the kernel (resolved once) and pf_probe_A/B/C built for it


def prepare(work: Path) -> Setup:
    prepared = VmSpec().prepare(None, work / "modules")
    kmods = work / "kmods"
    shutil.copytree(BENCH / "kmods", kmods)
    made = proc.run(["make", "-C", prepared.kdir, f"M={kmods}", "modules"], merge_stderr=True)
    if made.returncode != 0:
        raise SystemExit(made.stdout)
    program, touch = work / "fault_bench", work / "touch_pages"
    for src, out in ((BENCH / "fault_bench.c", program), (ROOT / "tests" / "programs" / "touch_pages.c", touch)):
        made = proc.run(["gcc", "-O2", "-pthread", "-o", out, src], merge_stderr=True)
        if made.returncode != 0:
            raise SystemExit(made.stdout)
    modules = {**prepared.modules, "bare": kmods / "bare_kprobe.ko", "bare-ret": kmods / "bare_kretprobe.ko"}
    return Setup(prepared.release, modules, program, touch, work, prepared)


#: The modules a benchmark boot may load: its guest's kernel log is sized for pf_probe_A's line per fault.
EVERY_MODULE = [Step(Module(letter), ("true",)) for letter in LETTERS]


@contextlib.contextmanager
def booted(setup: Setup, transcript: Path, *, icount: bool = False):
    """One boot of the benchmark's kernel: 2 vCPUs (KVM when it works), or with `icount` one vCPU under
    TCG with -icount shift=0 (a guest nanosecond is one instruction)."""
    spec = VmSpec(smp=1, icount_shift=0) if icount else VmSpec(accel=Accelerator.auto, smp=2)
    events = Events(notes_to(log))
    with spec.open(setup.prepared, transcript=transcript, save_dir=None, steps=EVERY_MODULE, events=events) as on:
        yield on.target


# ---- per-fault cost ----


@dataclass(frozen=True)
class Variant:
    name: str
    module: str | None  # a module loaded by run_step.sh (held before exec), or None
    wrap: tuple[str, ...] = ()  # a peer tool that starts the program itself


def variants(pages: int) -> list[Variant]:
    bpf_tp = "tracepoint:exceptions:page_fault_user /pid == cpid/ { @faults = count(); }"
    bpf_kp = "kprobe:handle_mm_fault /pid == cpid/ { @faults = count(); }"
    bpf_rec = 'kprobe:handle_mm_fault /pid == cpid/ { printf("%llu %lx\\n", nsecs, arg1); }'
    return [
        Variant("untraced", None),
        Variant("bare kprobe (pid filter only)", "bare"),
        Variant("bare kretprobe (pid filter at entry)", "bare-ret"),
        Variant("pf_probe_A", "A"),
        Variant("pf_probe_B", "B"),
        Variant("pf_probe_C", "C"),
        Variant("perf stat -e page-faults", None, ("perf", "stat", "-e", "page-faults", "--")),
        Variant(
            "perf record -e page-faults -c 1 -d",
            None,
            ("perf", "record", "-q", "-B", "-N", "-e", "page-faults", "-c", "1", "-d", "-o", "/tmp/perf.data", "--"),
        ),
        Variant("bpftrace tracepoint:exceptions:page_fault_user", None, ("bpftrace", "-q", "-e", bpf_tp, "-c")),
        Variant("bpftrace kprobe:handle_mm_fault", None, ("bpftrace", "-q", "-e", bpf_kp, "-c")),
        Variant(
            "bpftrace kprobe:handle_mm_fault printf time+address",
            None,
            ("bpftrace", "-q", "-o", "/dev/null", "-e", bpf_rec, "-c"),
        ),
    ]


def run_variant(vm, setup: Setup, v: Variant, pages: int) -> float:
    program = [str(setup.program), str(pages), str(SETTLE_MS)]
    command = (*v.wrap, " ".join(program)) if v.wrap and v.wrap[0] == "bpftrace" else (*v.wrap, *program)
    ko = setup.modules[v.module] if v.module else None
    request = step.TraceRequest(v.module or "B", ko, command, timeout=600)
    result = step.trace(vm, request)
    m = re.search(r"ns_per_fault=([\d.]+)", result.workload_output)
    if not m or result.splats:
        raise RuntimeError(f"{v.name}: no figure (status {result.workload_status}): {result.workload_output[-500:]}")
    return float(m.group(1))


def mount_debugfs(vm) -> None:
    """bpftrace and perf need tracefs and debugfs."""
    vm.run(
        [
            "sh",
            "-c",
            "mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing; "
            "mountpoint -q /sys/kernel/debug || mount -t debugfs nodev /sys/kernel/debug",
        ],
        stage="mount",
        timeout=60,
    )


def per_fault(vm, setup: Setup, pages: int, rounds: int) -> dict[str, list[float]]:
    vs = variants(pages)
    log("per-fault cost: warm-up")
    for v in vs:
        run_variant(vm, setup, v, pages)
    results: dict[str, list[float]] = {v.name: [] for v in vs}
    for r in range(rounds):
        order = vs[r % len(vs) :] + vs[: r % len(vs)]  # interleaved, rotated each round
        for v in order:
            results[v.name].append(run_variant(vm, setup, v, pages))
        log(f"  round {r + 1}/{rounds}: " + ", ".join(f"{v.name.split()[0]} {results[v.name][-1]:.0f}" for v in vs))
    return results


# ---- per-fault cost for a process outside the traced tree (follow=1) ----

OUTSIDE_VARIANTS: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("untraced (no module)", None, ()),
    ("bare kprobe (pid filter only)", "bare", ()),
    ("pf_probe_B", "B", ()),
    ("pf_probe_B follow=1", "B", ("follow=1",)),
)


def run_outside(vm, setup: Setup, module: str | None, params: tuple[str, ...], pages: int) -> float:
    """fault_bench, not traced, while `module` traces another process (a sleeping one)."""
    script = (
        "ko=$1 name=$2 program=$3 pages=$4; shift 4; sleep 600 & s=$!; st=0; "
        'if [ -n "$ko" ]; then busybox insmod "$ko" "tpid=$s" "$@" || st=1; fi; '
        '"$program" "$pages"; '
        'if [ -n "$ko" ]; then busybox rmmod "$name" || st=1; fi; '
        'kill "$s"; wait "$s" 2>/dev/null; echo "module_status=$st"'
    )
    ko = str(setup.modules[module]) if module else ""
    name = Path(ko).stem if ko else ""
    out = vm.run(
        ["sh", "-c", script, "outside", ko, name, str(setup.program), str(pages), *params],
        stage="outside-tree",
        timeout=600,
    ).output
    m = re.search(r"ns_per_fault=([\d.]+)", out)
    if not m or "module_status=0" not in out:
        raise RuntimeError(f"outside the tree, {module} {params}: no figure: {out[-500:]}")
    return float(m.group(1))


def outside_tree(vm, setup: Setup, pages: int, rounds: int) -> dict[str, list[float]]:
    """Interleaved rounds of every OUTSIDE_VARIANTS entry (one warm-up each)."""
    log("per-fault cost outside the traced tree: warm-up")
    for _, module, params in OUTSIDE_VARIANTS:
        run_outside(vm, setup, module, params, pages)
    results: dict[str, list[float]] = {name: [] for name, _, _ in OUTSIDE_VARIANTS}
    n = len(OUTSIDE_VARIANTS)
    for r in range(rounds):
        order = OUTSIDE_VARIANTS[r % n :] + OUTSIDE_VARIANTS[: r % n]
        for name, module, params in order:
            results[name].append(run_outside(vm, setup, module, params, pages))
        log(f"  round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in results.items()))
    return results


def outside_tree_markdown(data: dict, *, icount: bool = False) -> list[str]:
    """The section on the cost for processes outside the tree, from data["outside_tree"]."""
    pf = data["outside_tree"]
    base = pf["untraced (no module)"]
    lines = [
        OUTSIDE_HEADING,
        "",
        f"The same `fault_bench` ({data['pages']} fresh pages), now **not** traced: the module is loaded for "
        "another process (a `sleep`), so every fault of `fault_bench` pays only the handler's test that it is not "
        "traced. With `follow=1` that test is one `test_bit()` in the set of traced thread-group ids "
        "(after reading `vma->vm_mm->owner`, as without follow). One warm-up run each, then "
        f"{data['outside_rounds']} interleaved rounds; ratios paired per round against the run with no module. "
        + (
            ""
            if icount
            else "Other jobs on the host only ever add time, so the fastest run of each variant (min) is the "
            "steadiest figure; the ratio of the minima is given too."
        ),
        "",
        "| variant | min ns/fault | ratio of minima | median ns/fault | median paired ratio | min-max paired ratio |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, xs in pf.items():
        ratios = [x / b for x, b in zip(xs, base, strict=True)]
        lines.append(
            f"| {name} | {min(xs):.0f} | {min(xs) / min(base):.3f}x | {med(xs):.0f} | {med(ratios):.3f}x | "
            f"{min(ratios):.3f}-{max(ratios):.3f} |"
        )
    if icount:
        return [*lines, ""]
    lines += [
        "",
        "Under TCG (software emulation, on a machine shared with other jobs) wall-clock figures are noisy: "
        "differences of a few per cent between these rows are within the spread of the min-max column.",
        "",
    ]
    return lines


OUTSIDE_HEADING = "## Per-fault cost for a process outside the traced tree (follow=1)"
OUTSIDE_ICOUNT_HEADING = "## Per-fault cost outside the traced tree, in guest instructions (follow=1, -icount)"


def replace_section(text: str, heading: str, lines: list[str]) -> str:
    """`text` (markdown) with the section under `heading` replaced by `lines`, or `lines` appended."""
    parts = re.split(r"(?m)^(?=## )", text)
    body = "\n".join(lines).rstrip("\n") + "\n\n"
    for i, part in enumerate(parts):
        if part.startswith(heading):
            parts[i] = body
            return "".join(parts)
    return text.rstrip("\n") + "\n\n" + body


# ---- deterministic cost: guest instructions per fault under -icount ----

BARE_RET = "bare kretprobe (pid filter at entry)"
# Variants that record every fault's address (the goal: B and C below every peer among them).
RECORDING_PEERS = ("perf record -e page-faults -c 1 -d", "bpftrace kprobe:handle_mm_fault printf time+address")


def icount_costs(setup: Setup, pages: int, repeats: int) -> dict[str, list[float]]:
    """Each variant `repeats` times in a guest whose clock counts instructions (-icount shift=0: 1 ns each).

    fault_bench's ns per fault is then guest instructions per fault: the loop, the fault and whatever
    the tracer adds, on one vCPU (so a peer's user-space reader counts too). No warm-up is needed for
    a count, but one unmeasured run of each variant loads its files into the guest's page cache.
    """
    vs = variants(pages)
    with booted(setup, setup.work / "icount.log", icount=True) as vm:
        mount_debugfs(vm)
        for v in vs:
            run_variant(vm, setup, v, pages)
        results: dict[str, list[float]] = {v.name: [] for v in vs}
        for r in range(repeats):
            for v in vs:
                results[v.name].append(run_variant(vm, setup, v, pages))
            figures = ", ".join(f"{v.name.split()[0]} {results[v.name][-1]:.1f}" for v in vs)
            log(f"  icount repeat {r + 1}/{repeats}: {figures}")
    return results


# ---- scale ----

#: (max_records, faults asked) of each scale row; --quick (with --only scale) the small ones.
SCALE_RUNS = ((1 << 20, 300_000), (4 << 20, 300_000))
SCALE_RUNS_QUICK = ((1 << 17, 100_000), (1 << 18, 100_000))


def scale(vm, setup: Setup, capacity: int, faults: int) -> dict:
    """Load B with max_records=capacity for a program with `faults` faults; measure memory and unload time."""
    ko = setup.modules["B"]
    script = (
        "grep -c . /proc/modules >/dev/null; before=$(awk '/VmallocUsed/ {print $2}' /proc/meminfo); "
        f'"$2" {faults} >/dev/null & pid=$!; busybox insmod "$1" tpid=$pid max_records={capacity}; '
        "after=$(awk '/VmallocUsed/ {print $2}' /proc/meminfo); wait $pid; "
        "t0=$(date +%s%N); busybox rmmod pf_probe_B; t1=$(date +%s%N); "
        'echo "vmalloc_kib=$((after - before)) unload_ms=$(( (t1 - t0) / 1000000 ))"; '
        'dmesg | grep "pf_probe_B: summary pid=$pid comm=.* recorded=" | tail -1'
    )
    out = vm.run(["sh", "-c", script, "scale", str(ko), str(setup.touch)], stage="scale", timeout=600).output
    m = re.search(r"vmalloc_kib=(-?\d+) unload_ms=(\d+)", out)
    s = re.search(r"recorded=(\d+) dropped=(\d+) capacity=(\d+)", out)
    return {
        "capacity": capacity,
        "faults_asked": faults,
        "vmalloc_kib": int(m.group(1)),
        "unload_ms": int(m.group(2)),
        "recorded": int(s.group(1)),
        "dropped": int(s.group(2)),
        "record_bytes": fmt.RECORD.size,  # the layout the module allocates (output_format.RECORD)
        "records_version": fmt.RECORDS_VERSION,
    }


def scale_markdown(rows: list[dict]) -> list[str]:
    """BENCHMARKS.md's "Scale (pf_probe_B)"; the bytes a record are the measured growth over the largest
    max_records (older rows, before record_bytes was kept, say only that)."""
    largest = max(rows, key=lambda s: s["capacity"])
    measured = largest["vmalloc_kib"] * 1024 / largest["capacity"]
    layout = (
        f"; the record is {largest['record_bytes']} bytes, records version {largest['records_version']}"
        if "record_bytes" in largest
        else ""
    )
    L = [
        "## Scale (pf_probe_B)",
        "",
        "| max_records | faults asked | vmalloc at load | recorded | dropped | unload (plot) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in rows:
        L.append(
            f"| {s['capacity']:,} | {s['faults_asked']:,} | {s['vmalloc_kib'] / 1024:.1f} MiB | {s['recorded']:,} | "
            f"{s['dropped']:,} | {s['unload_ms']} ms |"
        )
    asked = largest["faults_asked"]
    return [
        *L,
        "",
        f"The workload (`touch_pages {asked}`) is started before `insmod` here, so its first faults are not "
        "recorded; what matters is dropped = 0 below capacity. vmalloc at load: the growth of VmallocUsed "
        f"across insmod: the record buffer, allocated once, {measured:.1f} bytes a record at "
        f"max_records={largest['capacity']:,}{layout}. Unload: rmmod's wall time, which includes drawing the plot "
        "over every record.",
        "",
    ]


# ---- turnaround and build ----


def _pfharness_true(out: Path, *, fresh: bool = False) -> tuple[float, dict]:
    """One `pfharness run --module B -- true` (modules built), restored from the guest's snapshot or with
    `fresh` booted (--fresh-boot): (wall seconds, the run's stage seconds)."""
    t = time.monotonic()
    fresh_boot = ["--fresh-boot"] if fresh else []
    argv = [*PFHARNESS, "run", "--module", "B", *fresh_boot, "--out", str(out), "--json", "--", "true"]
    r = proc.run(argv, cwd=ROOT, timeout=300)
    wall = time.monotonic() - t
    return wall, json.loads(r.stdout)["stage_seconds"]


OUTPUT_BYTES = 100_000_000  # the measure: `yes | head -c 100000000`


def _pfharness_output(out: Path) -> dict:
    """One `pfharness run --module B -- sh -c 'yes | head -c 100000000'`: the workload's 100 MB travel on
    the virtio port to the harness, which streams them on (here to /dev/null) and keeps them in the
    transcript. Returns the run stage's seconds, the wall time and the bytes the transcript received."""
    t = time.monotonic()
    r = proc.run(
        [
            *PFHARNESS,
            "run",
            "--module",
            "B",
            "--out",
            str(out),
            "--json",
            "--",
            "sh",
            "-c",
            f"yes | head -c {OUTPUT_BYTES}",
        ],
        cwd=ROOT,
        timeout=600,
        discard_stderr=True,  # with --json the workload's output goes to stderr
    )
    wall = time.monotonic() - t
    result = json.loads(r.stdout)
    return {"run_s": result["stage_seconds"]["run"], "wall_s": wall, "status": result.get("exit_status")}


def output_throughput(setup: Setup, runs: int) -> dict:
    """Workload-output throughput, `runs` times (median reported): MB (10^6 bytes) per second of run stage."""
    out = setup.work / "turnaround"
    out.mkdir(exist_ok=True)
    rel = out / setup.release
    if not rel.exists():
        rel.symlink_to(setup.modules["B"].parent)
    load = [os.getloadavg()[0]]
    runs_data = []
    for _i in range(runs):
        d = _pfharness_output(out)
        runs_data.append(d)
        log(f"  yes | head -c {OUTPUT_BYTES}: run stage {d['run_s']:.2f} s, {OUTPUT_BYTES / 1e6 / d['run_s']:.1f} MB/s")
    load.append(os.getloadavg()[0])
    return {"runs": runs_data, "bytes": OUTPUT_BYTES, "load_before_after": load}


def _vng_ready() -> Path:
    """virtme-ng in a virtualenv of its own under the cache (never a dependency of pfharness)."""
    vng = VNG_VENV / "bin" / "vng"
    if not vng.exists():
        for argv in (
            [sys.executable, "-m", "venv", VNG_VENV],
            [VNG_VENV / "bin" / "pip", "install", "-q", "virtme-ng"],
        ):
            done = proc.run(argv, merge_stderr=True)
            if done.returncode != 0:
                raise OSError(f"{' '.join(map(str, argv))} failed: {done.stdout[-300:]}")
    return vng


def _vng_true(vng: Path, image: Path) -> tuple[float, int, str]:
    t = time.monotonic()
    env = {"PATH": f"{VNG_VENV / 'bin'}:{os.environ['PATH']}"}  # over the caller's (proc.run)
    try:
        r = proc.run(
            [vng, "--run", image, "--disable-kvm", "--force-9p", "-e", "true"],
            env=env,
            cwd=Path(tempfile.gettempdir()),
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        return time.monotonic() - t, -1, "vng did not finish within 300 s"
    return time.monotonic() - t, r.returncode, (r.stderr or r.stdout)[-300:]


def turnaround(setup: Setup, runs: int, with_vng: bool = True) -> tuple[dict, dict]:
    """`pfharness run -- true` and virtme-ng's `vng -e true`, interleaved, `runs` times each.

    Returns (pfharness figures, virtme-ng figures); the load average before and after is kept, so
    figures taken on a busy machine say so.
    """
    out = setup.work / "turnaround"
    out.mkdir(exist_ok=True)
    rel = out / setup.release
    if not rel.exists():
        rel.symlink_to(setup.modules["B"].parent)
    vng, vng_error = None, ""
    if with_vng:
        try:
            vng = _vng_ready()
        except OSError as e:
            vng_error = f"could not install virtme-ng: {e}"
    assert setup.prepared.kernel is not None, "a VM's kernel"
    image = setup.prepared.kernel.require_image()
    _, first = _pfharness_true(out)  # makes the snapshot when there is none (not counted)
    made = f"saved the snapshot in {first['snapshot']:.2f} s" if "snapshot" in first else "the snapshot was there"
    log(f"  first run: {made}")
    load = [os.getloadavg()[0]]
    totals, boots, cold_totals, cold_boots, vtimes = [], [], [], [], []
    for _i in range(runs):
        wall, stages = _pfharness_true(out)
        totals.append(wall)
        boots.append(stages["boot"])
        log(f"  pfharness run -- true (restored): {wall:.2f} s (restore {stages['boot']:.2f} s)")
        wall, stages = _pfharness_true(out, fresh=True)
        cold_totals.append(wall)
        cold_boots.append(stages["boot"])
        log(f"  pfharness run --fresh-boot -- true: {wall:.2f} s (boot {stages['boot']:.2f} s)")
        if vng is not None and not vng_error:
            seconds, status, tail = _vng_true(vng, image)
            log(f"  vng -e true: {seconds:.2f} s (status {status})")
            if status != 0:
                vng_error = tail
            else:
                vtimes.append(seconds)
    load.append(os.getloadavg()[0])
    vng_data: dict = {"times_s": vtimes}
    if vng_error:
        vng_data["error"] = vng_error
    pfh = {"run_true_s": totals, "boot_s": boots, "cold_run_true_s": cold_totals, "cold_boot_s": cold_boots}
    return {**pfh, "snapshot_s": first.get("snapshot"), "load_before_after": load}, vng_data


def build_times(setup: Setup) -> dict:
    out = setup.work / "build-bench"
    shutil.rmtree(out, ignore_errors=True)
    cold = prepare_kernel(setup.release, out, boot=False)
    warm = prepare_kernel(setup.release, out, boot=False)
    return {"cold_s": cold.build_seconds, "unchanged_s": warm.build_seconds, "skipped": warm.build_skipped}


# ---- report ----


def med(xs):
    return statistics.median(xs)


def per_fault_markdown(data: dict) -> list[str]:
    pf = data["per_fault"]
    base = pf["untraced"]
    L = [
        "## Per-fault cost (wall clock)",
        "",
        f"`bench/fault_bench.c` writes {data['pages']} fresh anonymous pages (MADV_NOHUGEPAGE) "
        "and times only that loop. "
        f"The program is held until the tracer is armed (pfharness holds it before exec; perf and bpftrace start it). "
        f"One warm-up run of every variant, then {data['rounds']} interleaved rounds (the order rotates each round); "
        "the ratio is paired per round (variant / untraced in the same round), and the table gives medians.",
        "",
        "| variant | median ns/fault | median ratio to untraced | min-max ratio |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, xs in pf.items():
        ratios = [x / b for x, b in zip(xs, base, strict=True)]
        L.append(f"| {name} | {med(xs):.0f} | {med(ratios):.3f}x | {min(ratios):.3f}-{max(ratios):.3f} |")
    L += [
        "",
        "bpftrace counts the faults of the traced pid (`@faults = count()`) or prints each one's time and "
        "address (`printf`, to /dev/null); `perf stat` counts; `perf record -c 1 -d`, the bpftrace `printf` "
        "variant and pf_probe_A/B/C record every fault with its address.",
        "",
    ]
    return L


def icount_markdown(data: dict) -> list[str]:
    ic = data["icount"]
    base, bare = med(ic["untraced"]), med(ic["bare kprobe (pid filter only)"])
    bare_ret = med(ic[BARE_RET]) if BARE_RET in ic else None
    L = [
        "## Per-fault cost, deterministic (guest instructions)",
        "",
        f"The same program ({data.get('icount_pages', data['pages'])} pages) and variants in a guest run with "
        "QEMU's instruction counting (`-icount shift=0,sleep=off`, "
        "TCG, 1 vCPU): the guest's clock advances 1 ns per instruction executed, so fault_bench's ns per fault is "
        "the number of guest instructions per fault (loop, fault and tracer; on one vCPU a peer's reader process "
        "counts too). Host load does not change it: "
        f"each variant ran {len(ic['untraced'])} times (after one unmeasured run), and the runs are listed.",
        "",
        "| variant | instructions/fault (median) | runs | added over untraced | ratio to bare kprobe |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for name, xs in ic.items():
        x = med(xs)
        L.append(f"| {name} | {x:.1f} | {', '.join(f'{v:.1f}' for v in xs)} | {x - base:+.1f} | {x / bare:.3f}x |")
    spread = max((max(xs) - min(xs)) / min(xs) for xs in ic.values())
    L += ["", f"Largest difference between two runs of one variant: {spread * 100:.3f} %.", ""]
    peers = [p for p in RECORDING_PEERS if p in ic]
    for mod in ("pf_probe_B", "pf_probe_C"):
        if mod not in ic:
            continue
        ratio = med(ic[mod]) / bare
        below = [p for p in peers if med(ic[mod]) < med(ic[p])]
        ret = f", {med(ic[mod]) / bare_ret:.4f}x the bare kretprobe" if bare_ret else ""
        L.append(
            f"- {mod}: {ratio:.4f}x the bare kprobe ({'within' if ratio <= 1.02 else 'NOT within'} the 2 % goal)"
            f"{ret}; "
            f"below {len(below)} of {len(peers)} peers that record addresses"
            + ("" if len(below) == len(peers) else f" (not below: {', '.join(p for p in peers if p not in below)})")
            + "."
        )
    L.append("")
    return L


def _rows(t: dict) -> list[str]:
    """The table's pfharness rows: restored, then booted (older reports have only booted runs)."""
    cold = "cold_run_true_s" in t
    rows = [
        ("`pfharness run --module B -- true`" + (", restored from the snapshot" if cold else ""), t["run_true_s"]),
        ("restore (boot) to the first command, in those runs" if cold else "boot to the first command", t["boot_s"]),
    ]
    if cold:
        rows += [
            ("`pfharness run --module B --fresh-boot -- true` (cold boot)", t["cold_run_true_s"]),
            ("boot to the first command, in those runs", t["cold_boot_s"]),
        ]
    return [f"| {what} | {med(xs):.2f} s | " + ", ".join(f"{x:.2f}" for x in xs) + " |" for what, xs in rows]


def turnaround_markdown(data: dict) -> list[str]:
    t = data["turnaround"]
    load = t.get("load_before_after")
    cores = os.cpu_count() or 1
    busy = load is not None and max(load) > 0.5 * cores
    L = [
        "## Harness turnaround",
        "",
        "Five runs of each, interleaved (pfharness restored from its snapshot, pfharness --fresh-boot, "
        "virtme-ng, pfharness, ...), modules already built, the snapshot made by one run before them."
        + (
            f" **Taken under load** (load average {load[0]:.1f} before, {load[1]:.1f} after, on {cores} cores): "
            "wall-clock figures are inflated; re-run `bench/run.py --only turnaround` on an idle machine."
            if busy
            else (f" Load average {load[0]:.1f} before, {load[1]:.1f} after, on {cores} cores." if load else "")
        ),
        "",
        "| what | median | runs |",
        "| --- | ---: | --- |",
        *_rows(t),
    ]
    v = data.get("virtme_ng", {})
    if v.get("times_s") and "error" not in v:
        L.append(
            "| virtme-ng `vng --run <Debian kernel> --disable-kvm --force-9p -e true` | "
            f"{med(v['times_s']):.2f} s | " + ", ".join(f"{x:.2f}" for x in v["times_s"]) + " |"
        )
    elif v:
        L.append(f"| virtme-ng | failed: {v.get('error', '').strip()[:120]} | |")
    L.append("")
    if t.get("snapshot_s"):
        L += [f"The run before them booted and saved the guest's snapshot in {t['snapshot_s']:.2f} s.", ""]
    o = t.get("output")
    if o:
        rates = [o["bytes"] / 1e6 / r["run_s"] for r in o["runs"]]
        L += [
            "Workload output: `pfharness run --module B -- sh -c 'yes | head -c 100000000'`, three runs, the 100 MB"
            " streamed through the virtio port to the harness (and on to /dev/null here) and kept in the transcript."
            " MB/s = 10^6 bytes per second of the run stage (which also loads and unloads the module):"
            f" median **{med(rates):.1f} MB/s** ({', '.join(f'{x:.1f}' for x in rates)});"
            f" load average {o['load_before_after'][0]:.1f} before, {o['load_before_after'][1]:.1f} after.",
            "",
        ]
    return L


def write_markdown(path: Path, data: dict) -> None:
    L = [
        "# pfharness benchmarks",
        "",
        f"Measured {data['date']} on {data['machine']}; guest kernel {data['release']}, "
        f"accelerator {data.get('accel', 'tcg')}, "
        f"{data['smp']} vCPUs. Regenerate: `.venv/bin/python bench/run.py` (writes this file); "
        "`--only turnaround`, `--only icount`, `--only scale`, `--only records` or `--only grade` re-measures that "
        "section and keeps "
        "the others"
        + (
            " (re-measured since: " + ", ".join(f"{k} on {v}" for k, v in data["sections_date"].items()) + ")."
            if data.get("sections_date")
            else "."
        ),
        "",
    ]
    if "per_fault" in data:
        L += per_fault_markdown(data)
    if "icount" in data:
        L += icount_markdown(data)
    if "outside_tree" in data:
        L += outside_tree_markdown(data)
    if "turnaround" in data:
        L += turnaround_markdown(data)
    if "build" in data:
        b = data["build"]
        L += [
            "## Build",
            "",
            "| what | seconds |",
            "| --- | ---: |",
            f"| all three modules, cold | {b['cold_s']:.2f} |",
            f"| unchanged (skipped) | {b['unchanged_s']:.3f} |",
            "",
        ]
    if "scale" in data:
        L += scale_markdown(data["scale"])
    if "records_back" in data:
        L += records_back_section(data["records_back"])
    if "records_host" in data:
        L += records_bench.markdown(data["records_host"])
    if "grade" in data:
        L += grade_bench.markdown(data["grade"])
    path.write_text("\n".join(L) + "\n")


#: Written by tests/test_records_vm.py (a million records through the run directory's 9p export).
RECORDS_BACK = ROOT / "out" / "bench" / "records.json"


def records_back_section(r: dict) -> list[str]:
    """BENCHMARKS.md's "Records back": bringing a million records to the host against making them."""
    total = r["guest_copy_seconds"] + r["host_read_seconds"] + r["host_csv_seconds"]
    source = r.get("source", "the module's /proc/pf_probe_B/records")
    return [
        "## Records back (run directories)",
        "",
        f"`tests/test_records_vm.py` (kernel {r['kernel']}, {r['accelerator']}): `touch_pages {r['pages']}` touches "
        f"{r['pages']:,} fresh pages under pf_probe_B ({r['module_recorded']:,} faults recorded); then "
        f"`run_step.sh --save-dir` copies a {r['bytes'] / 2**20:.0f} MiB records file of {r['records']:,} records "
        f"({source}) "
        "before rmmod through the run directory's read-write 9p export, and the host reads, validates and "
        "writes it as records.csv.",
        "",
        "| what | seconds |",
        "| --- | ---: |",
        f"| the workload making the faults (first to last fault, the module's clock) | {r['workload_seconds']:.2f} |",
        f"| copy in the guest (`dd` of /proc/... into the 9p export, 1 MiB blocks) | {r['guest_copy_seconds']:.2f} |",
        f"| host: read and validate (`records_file.parse_records`) | {r['host_read_seconds']:.2f} |",
        f"| host: write records.csv | {r['host_csv_seconds']:.2f} |",
        f"| **bringing the records back, in all** | **{total:.2f}** |",
        "",
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pages", type=int, default=20000)
    ap.add_argument(
        "--icount-repeats", type=int, default=2, help="runs of each variant under -icount (0: skip; default 2)"
    )
    ap.add_argument(
        "--only",
        choices=("all", "turnaround", "icount", "scale", "records", "grade"),
        default="all",
        help="run only that section (default: all; records: the host's reading and writing of 1 M records, no VM)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="tiny configuration: 1 round, 500 pages, no turnaround/virtme/scale (with --only scale: small scale runs)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--grade-class", type=int, default=grade_bench.CLASS_SIZE, metavar="N", help="--only grade: N")
    ap.add_argument("--grade-students", default="", metavar="A,B", help="--only grade: these of tests/grade_class.py")
    ap.add_argument(
        "--icount",
        action="store_true",
        help="with --only-outside-tree: one vCPU under -icount shift=0, so a guest nanosecond is one instruction",
    )
    ap.add_argument(
        "--only-outside-tree",
        action="store_true",
        help="measure only the cost for a process outside the traced tree and replace that section of --out",
    )
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.pages = 1, 500
    work = Path(tempfile.mkdtemp(prefix="pfh-bench-"))
    records_back = json.loads(RECORDS_BACK.read_text()) if RECORDS_BACK.is_file() else None
    if args.only == "records":
        return only_records(args)
    if args.only == "grade":
        return only_grade(args)
    setup = prepare(work)
    if args.only_outside_tree:
        return only_outside_tree(args, setup, work)
    today = datetime.date.today().isoformat()
    data: dict = {**header_data(setup.release), "rounds": args.rounds, "pages": args.pages}
    if args.only != "all":
        # One section: the others are kept from the last full run (each section says when it was measured).
        previous = args.out.with_suffix(".json")
        if previous.is_file():
            data = json.loads(previous.read_text())
    if not args.quick and args.only in ("all", "turnaround"):
        log("build times")
        data["build"] = build_times(setup)
        log("turnaround, interleaved with virtme-ng")
        data["turnaround"], data["virtme_ng"] = turnaround(setup, 5)
        log("workload-output throughput")
        data["turnaround"]["output"] = output_throughput(setup, 3)
        data.setdefault("sections_date", {})["turnaround"] = f"{today} ({setup.release})"
    if args.only == "turnaround":
        write_report(args.out, data, keep_other_sections=True)
        return 0
    if args.only == "icount":
        data["icount"] = icount_costs(setup, args.pages, args.icount_repeats)
        data["icount_pages"] = args.pages
        data.setdefault("sections_date", {})["icount"] = f"{today} ({setup.release})"
        write_report(args.out, data, keep_other_sections=True)
        return 0
    if args.only == "scale":
        with booted(setup, work / "scale.log") as vm:
            data["scale"] = [scale(vm, setup, c, f) for c, f in (SCALE_RUNS_QUICK if args.quick else SCALE_RUNS)]
        data.setdefault("sections_date", {})["scale"] = f"{today} ({setup.release})"
        write_report(args.out, data, keep_other_sections=True)
        return 0
    with booted(setup, work / "bench.log") as vm:
        data["accel"] = vm.accelerator
        mount_debugfs(vm)
        data["per_fault"] = per_fault(vm, setup, args.pages, args.rounds)
        data["outside_tree"] = outside_tree(vm, setup, args.pages, args.rounds)
        data["outside_rounds"] = args.rounds
        if not args.quick:
            log("scale")
            data["scale"] = [scale(vm, setup, c, f) for c, f in SCALE_RUNS]
    if args.icount_repeats:
        log("deterministic cost (-icount)")
        data["icount"] = icount_costs(setup, args.pages, args.icount_repeats)
        data["icount_pages"] = args.pages
    if records_back is not None:
        data["records_back"] = records_back
    write_report(args.out, data)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def header_data(release: str) -> dict:
    """What BENCHMARKS.md's first line says: when, where, which guest kernel."""
    return {
        "date": datetime.date.today().isoformat(),
        "release": release,
        "smp": 2,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, host kernel {platform.release()}",
    }


def only_records(args) -> int:
    """--only records: a million records read, validated and written on the host (bench/records_bench.py)."""
    previous = args.out.with_suffix(".json")
    data = json.loads(previous.read_text()) if previous.is_file() else {}
    data["records_host"] = records_bench.measure(rounds=args.rounds)
    data.setdefault("sections_date", {})["records_host"] = datetime.date.today().isoformat()
    write_report(args.out, data, keep_other_sections=True)
    return 0


def only_grade(args) -> int:
    """--only grade: a class of submissions graded with --jobs 1, --jobs 2 and on a local Dask cluster."""
    previous = args.out.with_suffix(".json")
    data = json.loads(previous.read_text()) if previous.is_file() else header_data(kernels.select(None).release)
    students = [s for s in args.grade_students.split(",") if s]
    data["grade"] = grade_bench.measure(args.grade_class, students)
    data.setdefault("sections_date", {})["grade"] = datetime.date.today().isoformat()
    write_report(args.out, data, keep_other_sections=True)
    return 0


def only_outside_tree(args, setup: Setup, work: Path) -> int:
    """--only-outside-tree: one boot, the outside-the-tree rounds, that section of --out replaced."""
    data: dict = {"pages": args.pages, "outside_rounds": args.rounds}
    with booted(setup, work / "bench.log", icount=args.icount) as vm:
        data["outside_tree"] = outside_tree(vm, setup, args.pages, args.rounds)
        accel = vm.accelerator
    heading = OUTSIDE_ICOUNT_HEADING if args.icount else OUTSIDE_HEADING
    lines = outside_tree_markdown(data, icount=args.icount)
    lines[0] = heading
    how = "1 vCPU, `-icount shift=0`" if args.icount else "2 vCPUs"
    flags = "--only-outside-tree --icount" if args.icount else "--only-outside-tree"
    lines.insert(
        2,
        f"Measured {datetime.date.today().isoformat()} with `bench/run.py {flags} --rounds {args.rounds} "
        f"--pages {args.pages}` in one boot of {setup.release} ({accel}, {how}).\n",
    )
    if args.icount:
        lines.insert(
            3,
            "Under `-icount shift=0` QEMU's guest clock advances one nanosecond per guest instruction, so "
            "`ns/fault` here is guest instructions per fault: deterministic, whatever else the host runs (the "
            "rounds differ only by what the guest itself does differently).\n",
        )
    old = args.out.read_text() if args.out.exists() else "# pfharness benchmarks\n"
    args.out.write_text(replace_section(old, heading, lines))
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def write_report(out: Path, data: dict, *, keep_other_sections: bool = False) -> None:
    """Write the JSON, then the Markdown. With `keep_other_sections` (an --only run), the sections of
    the old Markdown that this run does not write (some are replaced in place, e.g. by
    --only-outside-tree) are kept after the new ones."""
    old = out.read_text() if keep_other_sections and out.is_file() else ""
    (out.with_suffix(".json")).write_text(json.dumps(data, indent=2) + "\n")  # first: the figures are kept
    out.write_text("")
    write_markdown(out, data)
    if old:
        new = out.read_text()
        written = set(re.findall(r"(?m)^## .*$", new))
        kept = [b for b in re.split(r"(?m)^(?=## )", old) if b.startswith("## ") and b.split("\n", 1)[0] not in written]
        if kept:
            out.write_text(new.rstrip("\n") + "\n\n" + "".join(kept))
    print(out.read_text())


if __name__ == "__main__":
    sys.exit(main())
