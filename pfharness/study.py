"""`pfharness study`: trace several kinds of workload with B and C in one VM boot,
compute figures from the records, and write report.txt with the plots."""

from __future__ import annotations

import datetime
import json
import shutil
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import __version__, assets
from .errors import PfhError
from .guest.session import VmOptions, VmSession
from .kmod import kernels
from .plot import Drawable, PlotRequest
from .plot import draw as draw_run
from .results import figures, run_dir, text, transcript
from .results import output_format as fmt
from .results.breakdown import breakdown_lines
from .results.model import TraceResult, process_table_json
from .results.step_protocol import SAVE_MOUNT
from .results.verdict import harness_error
from .run import DEFAULT_OUT, build_all
from .step import TraceRequest, trace


@dataclass(frozen=True)
class Workload:
    """One workload of the study."""

    key: str  # short name, used in file names
    title: str
    kind: str  # what it exercises
    command: tuple[str, ...]
    unseen: str = ""  # what the module does not see
    timeout: float = 300.0
    follow: bool = True  # trace the processes it creates too (follow=1)
    modules: tuple[str, ...] = ()  # only with these modules (empty: every module the study uses)
    params: tuple[str, ...] = ()  # more module parameters
    why: str = ""  # why it is traced with fewer modules or more parameters (the report's header says)


def workloads(build_dir: Path, kdir: Path, make_vars: tuple[str, ...] = ()) -> list[Workload]:
    """The study's workloads. `build_dir` holds the rendered module sources compiled by the first one
    (with `make_vars`, e.g. CC=gcc-12 for a fetched 5.10)."""
    kbuild = (
        "rm -rf /tmp/pfh-kbuild && mkdir /tmp/pfh-kbuild "
        '&& cp "$1"/pf_probe_A.c "$1"/pf_probe_B.c "$1"/pf_probe_C.c /tmp/pfh-kbuild/ '
        '&& echo "obj-m := pf_probe_A.o pf_probe_B.o pf_probe_C.o" >/tmp/pfh-kbuild/Kbuild '
        '&& kdir=$2 && shift 2 && exec make -s -C "$kdir" M=/tmp/pfh-kbuild modules "$@"'
    )
    iperf = "iperf3 -s -1 & sleep 1 && iperf3 -c 127.0.0.1 -t 3; wait"
    mmap_read = (
        "import mmap, os\n"
        "path, n = '/tmp/pfh-mmap', 4096\n"
        "with open(path, 'wb') as f:\n"
        "    f.write(bytes(4096 * n))\n"
        "with open(path, 'rb') as f:\n"
        "    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n"
        "    total = sum(m[i] for i in range(0, len(m), 4096))\n"
        "os.unlink(path)\n"
    )
    return [
        Workload(
            "kbuild",
            "kernel compilation (kbuild of pf_probe_A, B and C against the headers; make, gcc, cc1, as, ld, modpost "
            "all traced)",
            "compute and I/O",
            ("sh", "-c", kbuild, "pfh-kbuild", str(build_dir), str(kdir), *make_vars),
            timeout=1800.0,
            params=(f"max_regions={fmt.REGIONS_LIMIT}",),
            why="its ~380 processes have ~20 regions each, more than the default table (1,024) holds",
        ),
        Workload(
            "sysbench-cpu", "sysbench cpu (prime numbers, 5 s)", "compute", ("sysbench", "cpu", "--time=5", "run")
        ),
        Workload(
            "sysbench-memory",
            "sysbench memory (1 KiB blocks, 5 s)",
            "memory bandwidth",
            ("sysbench", "memory", "--time=5", "run"),
        ),
        Workload(
            "sysbench-memory-16M",
            "sysbench memory streaming over a 16 MiB block (256 MiB in all)",
            "memory bandwidth, large buffer",
            ("sysbench", "memory", "--memory-block-size=16M", "--memory-total-size=256M", "run"),
        ),
        Workload(
            "sysbench-threads",
            "sysbench threads (4 threads contending on mutexes, 3 s)",
            "multi-threaded",
            ("sysbench", "threads", "--threads=4", "--time=3", "run"),
        ),
        Workload(
            "iperf3",
            "iperf3 server and client over loopback, 3 s, as one traced tree",
            "network I/O",
            ("sh", "-c", iperf),
        ),
        Workload(
            "walk-sequential",
            "Python: write 4096 fresh pages in order",
            "sequential memory walk",
            ("python3", str(assets.vm_file("walk.py")), "sequential", "4096"),
        ),
        Workload(
            "walk-random",
            "Python: write the same 4096 pages in random order",
            "random memory walk",
            ("python3", str(assets.vm_file("walk.py")), "random", "4096"),
        ),
        Workload(
            "mmap-read",
            "Python: write a 16 MiB file in /tmp, then read it through mmap one byte per page, in order",
            "memory-mapped file read (fault-around)",
            ("python3", "-c", mmap_read),
        ),
    ]


@dataclass
class StudyRun:
    """One workload traced with one module."""

    workload: Workload
    module: str  # "B" or "C"
    result: TraceResult
    figures: figures.Figures
    seconds: float


@dataclass
class Study:
    runs: list[StudyRun] = field(default_factory=list)
    kernel_release: str = ""
    accelerator: str = ""
    smp: int = 2
    date: str = ""
    transcript: str = ""


def run_study(
    out_dir: Path,
    modules: tuple[str, ...],
    *,
    accel: str = "auto",
    smp: int = 2,
    progress: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
    only: tuple[str, ...] = (),
    kernel_release: str | None = None,
    follow: bool = True,
) -> Study:
    """Trace every workload with every module in one boot."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PfhError(
            f"cannot create {out_dir} ({exc.strerror or exc}): pass --out with a writable directory"
        ) from exc
    kernel = kernels.select(kernel_release)
    kernel.require_image()
    build = build_all(kernel, DEFAULT_OUT)
    make_vars = kernel.toolchain.make_vars
    left_out = ""
    if not kernel.toolchain.on_host:  # its kbuild needs its own build root: not in the guest
        progress(f"kbuild workload left out: {kernel.release}'s kbuild tools do not run on this machine")
        left_out = "kbuild"
    chosen = [
        w
        for w in workloads(build.modules["B"].parent, build.kdir, make_vars)
        if (not only or w.key in only) and w.key != left_out
    ]
    study = Study(
        kernel_release=build.kernel_release,
        smp=smp,
        date=datetime.date.today().isoformat(),
        transcript=str((out_dir / "study-transcript.log").resolve()),
    )
    Path(study.transcript).unlink(missing_ok=True)
    start = time.monotonic()
    save_host = (out_dir / "guest-save").resolve()
    save_host.mkdir(parents=True, exist_ok=True)
    options = VmOptions(kernel=kernel, transcript=Path(study.transcript), accel=accel, smp=smp, save_dir=save_host)
    with VmSession(options) as vm:
        study.accelerator = vm.accelerator
        total = sum(len(mods_of(w, modules)) for w in chosen)
        n = 0
        for workload in chosen:
            for module in mods_of(workload, modules):
                n += 1
                elapsed = time.monotonic() - start
                progress(f"[{n}/{total}] {workload.key} with pf_probe_{module} ... (elapsed {elapsed:.0f} s)")
                request = TraceRequest(
                    module,
                    build.modules[module],
                    workload.command,
                    params=workload.params,
                    timeout=workload.timeout,
                    follow=follow and workload.follow,
                    save_dir=SAVE_MOUNT,
                    save_dir_host=save_host,
                )
                t = time.monotonic()
                result = trace(vm, request)
                seconds = time.monotonic() - t
                error = harness_error(result)
                if error is not None:  # the same verdict as `run`: a run it would fail, the study fails
                    raise type(error)(f"the study run {workload.key} with pf_probe_{module} failed: {error}")
                if result.saved is None:  # the figures come from the saved records: no records, no study
                    raise PfhError(
                        f"the study run {workload.key} with pf_probe_{module} saved no records "
                        f"({result.saved_error or 'no records file'}): see {study.transcript}"
                    )
                fig = figures.compute(result.saved.records, result.saved.dropped)
                progress(f"      {fig.faults} faults in {seconds:.1f} s, workload status {result.workload_status}")
                progress(f"      {losses(result)}")
                for line in process_lines(result, top=5):
                    progress(f"      {line}")
                study.runs.append(StudyRun(workload, module, result, fig, seconds))
                keep_run(result, out_dir, f"{workload.key}-{module}", save_host, progress)
    progress(f"study done in {time.monotonic() - start:.0f} s")
    return study


def mods_of(workload: Workload, modules: tuple[str, ...]) -> tuple[str, ...]:
    """The modules a workload is traced with: the study's, less those it is limited away from."""
    return tuple(m for m in modules if not workload.modules or m in workload.modules)


def keep_run(result: TraceResult, out_dir: Path, name: str, save_host: Path, progress: Callable[[str], None]) -> None:
    """Keep a run's saved records as a run directory (out_dir/runs/NAME, for `pfharness plot`) and draw
    out_dir/NAME.png from them; a picture that cannot be drawn is reported, not fatal."""
    directory = out_dir / "runs" / name
    shutil.rmtree(directory, ignore_errors=True)
    guest = directory / run_dir.GUEST_SUBDIR
    guest.mkdir(parents=True)
    for f in save_host.iterdir():
        shutil.move(str(f), guest / f.name)
    if result.saved is None:
        progress(f"      no saved records for {name}: {result.saved_error or 'none'}")
        return
    run_dir.write_csvs(directory, result.saved)
    run_dir.write_run_json(directory, text.json_object(result))
    drawable = Drawable.of_result(result)
    assert drawable is not None  # result.saved was checked above
    try:
        for path in draw_run(drawable, PlotRequest(png=out_dir / f"{name}.png", ascii=False), lambda s: None):
            progress(f"      picture: {path}")
    except (PfhError, ValueError) as e:  # matplotlib's ValueError: a picture is not worth the study
        progress(f"      no picture for {name}: {e}")


def figures_table(study: Study) -> list[str]:
    head = (
        f"{'workload':<19} {'mod':<3} {'faults':>7} {'span s':>7} {'faults/s':>9} {'pages':>6} "
        f"{'seq':>5} {'start':>5} {'code':>5} {'data':>5} {'other':>5} {'run s':>6}"
    )
    lines = [head, "-" * len(head)]
    for run in study.runs:
        f = run.figures
        seg = [f"{f.segment_share[k]:>5.0%}" for k in ("code", "data", "other")] if f.segment_share else ["    -"] * 3
        lines.append(
            f"{run.workload.key:<19} {run.module:<3} {f.faults:>7} {f.span_s:>7.2f} {f.faults_per_s:>9.0f} "
            f"{f.distinct_pages:>6} {f.sequential_share:>5.0%} {f.startup_share:>5.0%} {' '.join(seg)} "
            f"{run.seconds:>6.1f}"
        )
    dropped = sum(run.figures.dropped for run in study.runs)
    capacities = sorted({run.result.report.capacity for run in study.runs if run.result.report.capacity})
    reports = [run.result.report for run in study.runs]
    nmissed = sum(r.counts.nmissed + r.counts.kp_nmissed for r in reports if r.counts is not None)
    unnamed = sum(r.regions_full or 0 for r in reports)
    overflow = sum(r.process_table.overflow for r in reports if r.process_table is not None)
    lines += [
        "",
        f"faults: records saved in /proc/<module>/records (dropped: {dropped or 'none'}, capacity "
        f"{', '.join(f'{c:,}' for c in capacities) or '?'};",
        f"probe misses (nmissed): {nmissed or 'none'}; faults without a region: {unnamed or 'none'}; processes "
        f"without a line in the table: {overflow or 'none'});",
        "span: first to last fault; pages: distinct virtual pages; seq: share of faults on the page right after",
        "the previous fault's page; start: share of faults in the first 10 % of the span; code/data/other: the",
        "segment class stored with each record (pf_probe_C's classes, which B stores too); run s: wall time of",
        "the traced run (under emulation).",
    ]
    return lines


def losses(result: TraceResult) -> str:
    """What the module lost in a run: faults past the buffer, probe misses, faults without a region,
    processes without a line in the table."""
    r = result.report
    counts, table = r.counts, r.process_table
    nmissed = f"{counts.nmissed}/{counts.kp_nmissed}" if counts is not None else "?"
    saved = result.saved
    return (
        f"dropped {saved.dropped if saved is not None else r.dropped}, nmissed {nmissed}, "
        f"without a region {r.regions_full if r.regions_full is not None else '?'} "
        f"(regions {r.regions_used}/{r.regions_capacity}), "
        f"table overflow {table.overflow if table is not None else '-'}"
    )


def process_lines(result: TraceResult, top: int = 20) -> list[str]:
    """The traced processes of a follow=1 run: how many, and the `top` ones by faults."""
    table = result.report.process_table
    if table is None:
        return []
    by_name: dict[str, list[int]] = {}
    for p in table.processes:
        by_name.setdefault(p.comm, []).append(p.faults)
    lines = [
        f"processes traced: {table.traced} (table overflow {table.overflow}); by name among the top "
        f"{len(table.processes)}: "
        + ", ".join(f"{name} x{len(f)} {sum(f)}" for name, f in sorted(by_name.items(), key=lambda kv: -sum(kv[1])))
    ]
    lines += [f"  {p.comm:<16} tgid {p.tgid:>6} ppid {p.ppid:>6} faults {p.faults:>8}" for p in table.processes[:top]]
    hidden = table.processes[top:]
    others = table.rest_processes + len(hidden) + table.overflow
    if others:
        faults = table.rest_faults + sum(p.faults for p in hidden) + table.untabled_faults
        lines.append(f"  the other {others} processes: {faults} faults")
    return lines


def _restricted_lines(study: Study) -> list[str]:
    """One line per workload traced with fewer modules or more parameters than the others."""
    seen: dict[str, Workload] = {}
    for run in study.runs:
        seen.setdefault(run.workload.key, run.workload)
    return [
        line
        for w in seen.values()
        if w.modules or w.params
        for line in textwrap.wrap(
            f"{w.key}: "
            + ", ".join(
                ([f"traced with {', '.join(f'pf_probe_{m}' for m in w.modules)} only"] if w.modules else [])
                + ([f"loaded with {' '.join(w.params)}"] if w.params else [])
            )
            + (f": {w.why}" if w.why else "")
            + ".",
            width=110,
        )
    ]


def render_report(study: Study, findings: str) -> str:
    count = len({run.workload.key for run in study.runs})
    title = f"Page faults of {count} workload{'s' if count != 1 else ''}: memory-access trends"
    lines = [
        title,
        "=" * len(title),
        "",
        f"Runs made on {study.date} with pfharness {__version__}, Debian kernel {study.kernel_release} in QEMU",
        f"(accelerator {study.accelerator}, {study.smp} vCPUs), modules pf_probe_B and pf_probe_C; each workload",
        "held before exec until the module was armed; the figures come from the records each module saved in",
        "/proc/<module>/records, copied out after each run (the kernel log gives only each module's counts,",
        "process table and plots).",
        "Regenerate with: make demo && .venv/bin/pfharness study --out out/study",
        *_restricted_lines(study),
        "",
        "FINDINGS",
        "--------",
        findings.strip(),
        "",
        "FIGURES",
        "-------",
        *figures_table(study),
        "",
        "WORKLOADS",
        "---------",
    ]
    seen = set()
    for run in study.runs:
        w = run.workload
        if w.key in seen:
            continue
        seen.add(w.key)
        lines.append(f"{w.key}: {w.title} [{w.kind}]")
        lines.append(f"    command: {' '.join(w.command)}")
        if w.unseen:
            lines.append(f"    not seen: {w.unseen}")
    lines += ["", "PROCESSES", "---------", "Each workload and every process it created were traced (follow=1)."]
    for run in study.runs:
        found = process_lines(run.result)
        if found:
            lines += ["", f"== {run.workload.key}, pf_probe_{run.module} ==", *found]
    lines += [
        "",
        "REGIONS",
        "-------",
        "From the records each module saved (/proc/<module>/records and regions): access and major/minor, then per",
        "region name (the same name in several processes counted together): faults, distinct pages, when its first",
        "and last fault came (share of the run's span), rise (share of its faults on a page above every earlier one",
        "of the same process in it: upward growth), major faults and the access mix; with several processes, the top",
        "process names and where their faults went. PNG per run: <workload>-<module>.png.",
    ]
    for run in study.runs:
        saved = run.result.saved
        if saved is not None:
            lines += [
                "",
                f"== {run.workload.key}, pf_probe_{run.module} ==",
                *breakdown_lines(saved.records, saved.regions, saved.processes),
            ]
    lines += ["", "PLOTS", "-----"]
    for run in study.runs:
        lines.append("")
        lines.append(f"== {run.workload.key}, pf_probe_{run.module} ==")
        for plot in run.result.report.plots:
            lines.extend(plot.lines)
        for cls in run.result.report.empty_classes:
            lines.append(f"(no faults in the {cls} class: plot left out)")
    return "\n".join(lines) + "\n"


def write_outputs(study: Study, out_dir: Path, findings_file: Path | None) -> Path:
    findings_path = findings_file or assets.study_file("findings.txt")
    findings = (
        findings_path.read_text()
        if findings_path.is_file()
        else (
            "(Write two or three paragraphs of findings here, from the figures and plots below, "
            f"and pass the file with --findings; none was found at {findings_path}.)"
        )
    )
    report = out_dir / "report.txt"
    report.write_text(render_report(study, findings))
    data = {
        "date": study.date,
        "kernel_release": study.kernel_release,
        "accelerator": study.accelerator,
        "smp": study.smp,
        "transcript": study.transcript,
        "runs": [
            {
                "workload": r.workload.key,
                "title": r.workload.title,
                "kind": r.workload.kind,
                "module": r.module,
                "command": list(r.workload.command),
                "workload_status": r.result.workload_status,
                "seconds": round(r.seconds, 2),
                "figures": r.figures.as_dict(),
                "processes": process_table_json(r.result.report),
            }
            for r in study.runs
        ],
    }
    (out_dir / "figures.json").write_text(json.dumps(data, indent=2) + "\n")
    return report


def reread_study(out_dir: Path, modules: tuple[str, ...] = ("B", "C")) -> Study:
    """A finished study read back from its directory (figures.json, the transcript, runs/*/guest), to write
    report.txt again (new findings) without tracing again."""
    try:
        data = json.loads((out_dir / "figures.json").read_text())
    except (OSError, ValueError) as exc:
        raise PfhError(
            f"{out_dir}/figures.json cannot be read ({exc}): run `pfharness study --out {out_dir}` first"
        ) from exc
    results = transcript.parse_transcript(out_dir / "study-transcript.log")
    by_key = {w.key: w for w in workloads(Path("."), Path("."))}
    if len(results) != len(data["runs"]):
        raise PfhError(f"{out_dir}: {len(results)} runs in the transcript, {len(data['runs'])} in figures.json")
    study = Study(
        kernel_release=data["kernel_release"],
        accelerator=data["accelerator"],
        smp=data["smp"],
        date=data["date"],
        transcript=data["transcript"],
    )
    for parsed, entry in zip(results, data["runs"], strict=True):
        name = f"{entry['workload']}-{entry['module']}"
        saved = run_dir.read_saved(out_dir / "runs" / name / run_dir.GUEST_SUBDIR)
        w = by_key.get(entry["workload"]) or Workload(
            entry["workload"], entry.get("title", entry["workload"]), entry.get("kind", "?"), tuple(entry["command"])
        )
        w = replace(w, command=tuple(entry["command"]))
        if saved is None:
            raise PfhError(f"{out_dir}/runs/{name}/{run_dir.GUEST_SUBDIR} holds no saved records: run the study again")
        result = replace(parsed, saved=saved)
        fig = figures.compute(saved.records, saved.dropped)
        study.runs.append(StudyRun(w, entry["module"], result, fig, entry["seconds"]))
    return study
