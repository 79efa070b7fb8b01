"""`pfharness check`: build a student's module once, then check each built pf_probe_X in a VM of its
own (a module can crash its VM: the next starts clean), with the oracle (pfharness's own B with records,
oracle.py) beside it for the same pid, and say what was found (judge.py, compare.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import assets, proc
from ..errors import PfhError, UsageError, VmLost, VmTimeout
from ..kernel import Kernel
from ..kmod import foreign, kernels, matrix
from ..pipeline.core import run_steps
from ..pipeline.events import Events
from ..pipeline.prepare import Prepared
from ..pipeline.steps import Step
from ..pipeline.targets import VmSpec
from ..results import step_result
from ..results.model import TraceResult
from ..results.step_result import console_lines, replayed_lines
from ..values import Accelerator, Module
from . import judge, oracle, pid_steps, symbols
from .findings import Finding
from .model import CheckFinding, CheckReport, ModuleCheck, bounded

WORKLOAD = "oracle_touch.c"  # vm/: the default workload, compiled on the host at check time
WORKLOAD_ARGS = ("200", "2")  # pages per thread, threads: quick, with a second thread
# slub_debug: SLUB finds redzone writes and use after free (Debian has no KASAN). PANIC_PRINT: at a panic the
# kernel's log again, the module's own lines before the crash among it (step_result.replayed_lines).
KERNEL_PARAMS = ("slub_debug=FZPU", step_result.PANIC_PRINT)
_NAME = re.compile(r"^pf_probe_([ABC])$")


@dataclass(frozen=True)
class CheckRequest:
    """What `pfharness check` was asked."""

    source: tuple[Path, ...]  # the module's directory or its .c files
    out: Path  # where the build, the workload and each VM's transcript go
    modules: tuple[str, ...] = ()  # letters to check (default: every pf_probe_X the source builds)
    kernel_release: str | None = None
    pid_param: str = judge.PID_PARAM  # the module's name for the pid parameter
    hold: bool = True  # hold the workload before exec until the module is loaded
    accel: Accelerator = Accelerator.auto
    timeout: float = 120.0  # seconds for one module's step

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", self.pid_param):
            raise UsageError(f"--pid-param {self.pid_param!r} must be a plain identifier, e.g. --pid-param process_id")


def check(request: CheckRequest, events: Events | None = None) -> CheckReport:
    """Build the module at request.source once for one kernel, and check each built module in its own VM."""
    events = events or Events()
    # The guest's shell runs in / (the host's root is mounted at the same paths): a relative --out (the default
    # out/check) would name no workload, module or save directory there, and the step would end before it began.
    request = dataclasses.replace(request, out=request.out.absolute())
    kernel = kernels.select(request.kernel_release)
    kernel.require_image()
    out = request.out
    out.mkdir(parents=True, exist_ok=True)
    source = foreign.parse_source(request.source, exclude=[out])
    events.stage("build")
    built = foreign.build_foreign(source, kernel, out / "build")
    line = "" if built.ok or built.limit_note else _matrix_line(source, kernel, out)
    kdir_lines = foreign.running_kernel_lines(source)
    found = judge.build_findings(
        built.ok,
        built.log,
        str(built.log_path),
        release=built.kernel_release,
        makefile_lines=kdir_lines,
        matrix_line=line,
    )
    if not built.ok:
        return CheckReport(kernel.release, (), tuple(found))
    letters = _letters(built.modules, request.modules)
    workload = _compile_workload(out)
    oracle_ko, oracle_note = oracle.build(out / "oracle", kernel)
    checks = [
        check_module(
            request,
            kernel,
            letter,
            built.modules[f"pf_probe_{letter}"],
            workload,
            str(built.log_path),
            events,
            oracle_ko=oracle_ko,
            oracle_note=oracle_note,
        )
        for letter in letters
    ]
    return CheckReport(kernel.release, tuple(checks), tuple(found))


def _matrix_line(source: foreign.ForeignSource, kernel: Kernel, out: Path) -> str:
    rest = [k for k in kernels.available(cache=assets.cache_dir()) if k.release != kernel.release and k.usable]
    entries = [matrix.MatrixEntry(kernel.release, False, False), *matrix.builds_on(source, rest, out / "matrix")]
    return matrix.matrix_line(entries)


def _letters(modules: dict[str, Path], asked: Sequence[str]) -> list[str]:
    """The letters of the built pf_probe_X modules (those asked for, each of which must be built)."""
    have = sorted(m.group(1) for name in modules if (m := _NAME.match(name)))
    if not have:
        names = ", ".join(sorted(modules))
        raise UsageError(f"the source built {names}, no pf_probe_A, B or C: name the module pf_probe_X (obj-m)")
    missing = [a for a in asked if a not in have]
    if missing:
        raise UsageError(f"--module {missing[0]}: the source built only {', '.join(have)}")
    return [a for a in have if a in asked] if asked else have


def _compile_workload(out: Path) -> Path:
    binary = out / "oracle_touch"
    argv: list[str | Path] = ["gcc", "-O1", "-Wall", "-pthread", "-o", binary, assets.vm_file(WORKLOAD)]
    result = proc.run(argv, merge_stderr=True)
    if result.returncode != 0:
        raise PfhError(f"cannot compile the check's workload {WORKLOAD} with gcc: {result.stdout.strip()[:200]}")
    return binary


def module_params(ko: Path) -> list[str]:
    """The module's parameter names (`modinfo -p`)."""
    result = proc.run(["modinfo", "-p", ko])
    if result.returncode != 0:
        raise PfhError(f"modinfo -p {ko} failed: {result.stderr.strip()[:200]}")
    return judge.parse_modinfo_params(result.stdout)


def check_module(  # noqa: PLR0917 - one module's check: what it runs with
    request: CheckRequest,
    kernel: Kernel,
    letter: str,
    ko: Path,
    workload: Path,
    build_log: str,
    events: Events,
    *,
    oracle_ko: Path | None = None,
    oracle_note: str = "",
) -> ModuleCheck:
    """One module in a fresh VM: the oracle workload traced with it (and the oracle, `oracle_ko`, beside it),
    then what the run showed."""
    name = f"pf_probe_{letter}"
    params = module_params(ko)
    work = request.out / name
    save = work / "save"
    save.mkdir(parents=True, exist_ok=True)
    transcript = work / "console.log"
    transcript.unlink(missing_ok=True)  # a fresh VM: the transcript of an earlier check is not this one's
    prepared = Prepared(kernel.release, {letter: ko}, ko.parent, kernel=kernel)
    spec = VmSpec(accel=request.accel, extra_append=KERNEL_PARAMS)
    pid_checks = pid_steps.steps(letter, request.pid_param, request.timeout)
    main = _main_step(request, letter, workload, oracle_ko)
    run = run_steps(spec, prepared, [main, *pid_checks], transcript=transcript, save_dir=save, events=events)
    with contextlib.closing(run):
        result, lost = _next(run)
        skipped = pid_steps.not_run(result if lost is None else None)
        extra = [] if skipped else _run_all(run, len(pid_checks))
    parts = pid_steps.split_console(console_lines(transcript))
    console, replayed = parts[0], replayed_lines(transcript)
    lines = own_lines(result.kernel_messages if result is not None else replayed or console, name)
    found = step_findings(
        result, lost=lost, console=console, name=name, params=params, pid_param=request.pid_param, before=lines
    )
    pid_found = _pid_findings(extra, parts[1:], name, ko)
    found = [_with_source(f, ko, name, console) for f in found] + pid_found
    if not skipped:
        skipped = pid_steps.not_shown(pid_found, extra)
    judged = oracle.judge(letter, lines, result) if oracle_ko is not None else oracle.OracleJudgement()
    notes = ((oracle_note,) if oracle_ko is None else judged.notes) + tuple(skipped)
    seconds = dict(result.stage_seconds) if result is not None else {}
    return ModuleCheck(
        name,
        kernel.release,
        (*found, *judged.findings),
        bounded(lines),
        build_log,
        str(transcript),
        seconds,
        notes,
        judged.figures,
    )


def _main_step(request: CheckRequest, letter: str, workload: Path, oracle_ko: Path | None) -> Step:
    """The check's workload traced with the module (and the oracle beside it for the same pid)."""
    return Step(
        Module(letter),
        (str(workload), *WORKLOAD_ARGS),
        timeout=request.timeout,
        hold=request.hold,
        pid_param=request.pid_param,
        oracle_ko=oracle_ko,
        oracle_params=oracle.PARAMS if oracle_ko is not None else (),
    )


def _pid_findings(
    extra: Sequence[tuple[TraceResult | None, VmLost | None]], parts: Sequence[list[str]], name: str, ko: Path
) -> list[CheckFinding]:
    """The pid steps' findings, from their results (or lost VM) and their part of the console."""
    found = []
    for index, (kind, (result, lost)) in enumerate(zip(pid_steps.KINDS, extra, strict=False)):
        part = parts[index] if index < len(parts) else []

        def resolve(f: CheckFinding, part: Sequence[str] = part) -> CheckFinding:
            return _with_source(f, ko, name, part)

        got = pid_steps.finding(kind, result, lost, part, name=name, with_source=resolve)
        found += [got] if got is not None else []
    return found


def _next(run: Iterator[TraceResult]) -> tuple[TraceResult | None, VmLost | None]:
    """The next step's result, or the VmLost that ended it."""
    try:
        return next(run), None
    except VmLost as e:
        return None, e


def _run_all(run: Iterator[TraceResult], count: int) -> list[tuple[TraceResult | None, VmLost | None]]:
    """The next `count` steps' results, up to the one whose VM was lost."""
    out: list[tuple[TraceResult | None, VmLost | None]] = []
    while len(out) < count and (not out or out[-1][1] is None):
        out.append(_next(run))
    return out


def step_findings(
    result: TraceResult | None,
    *,
    lost: VmLost | None,
    console: Sequence[str],
    name: str,
    params: Sequence[str],
    pid_param: str,
    before: Sequence[str] = (),
) -> list[CheckFinding]:
    """The findings of one module's step: from its result, or from the console when the VM was lost (`before`:
    the module's own lines then, from the kernel's replay of its log at the panic)."""
    messages = result.kernel_messages if result is not None else console
    found = judge.param_findings(params, messages, pid_param)
    if result is not None:
        found += judge.load_findings(result)
    crash = judge.splat_finding(console, name) or (
        judge.splat_finding(result.kernel_messages, name) if result is not None and result.splats else None
    )
    if crash is not None:
        found.append(crash)
    if lost is not None:
        stage = crash.stage if crash is not None else judge.stage_at(console, len(console))
        found += judge.lost_findings(console, isinstance(lost, VmTimeout), stage, before)
    elif result is not None:
        found += judge.flood_findings(result, name[-1])
    return found


def own_lines(messages: Sequence[str], name: str) -> list[str]:
    """The module's own lines: those with its prefix when it has any, else the whole log but the oracle's."""
    prefixed = [ln for ln in messages if ln.startswith(f"{name}: ")]
    return prefixed or oracle.not_oracle(messages)


def _with_source(finding: CheckFinding, ko: Path, name: str, console: Sequence[str]) -> CheckFinding:
    """A kernel-splat with the faulting function+offset resolved to the module's file:line."""
    if finding.id != Finding.KERNEL_SPLAT:
        return finding
    site = judge.crash_site(finding.evidence, name) or judge.crash_site(console, name)
    where = symbols.source_line(ko, *site) if site else ""
    if not where:
        return finding
    message = finding.message.replace("is named below", f"is at {where}")
    return dataclasses.replace(finding, source_line=where, message=message)
