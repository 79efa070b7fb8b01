"""The findings of a check, from what the build, modinfo and the step gave (pure: no process is
started here). Each finding's message is one line a student can act on; its evidence the kernel's or
the compiler's own lines."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..kmod import diagnose, kbuild
from ..results import splat, step_result
from ..results.model import TraceResult
from ..results.notes import HOST_NOTE
from ..results.splat import splat_head
from .findings import Finding
from .model import CheckFinding

FLOOD_LINES = 120  # B and C print a plot and a few lines: more than this at unload is a line per fault
FLOOD_PLOTS = {"B": 1, "C": 3}  # plots a module prints at unload: C one per class, so up to 3 x FLOOD_LINES
_PROBE_FAILED = re.compile(r"register_k(?:ret)?probe|kprobe.*(?:fail|-2\b|-22\b)|(?:-2|-22|ENOENT|EINVAL)\b")
_UNKNOWN = re.compile(r"unknown parameter '(\w+)' ignored")
PID_PARAM = "tpid"


def build_findings(
    ok: bool, log: str, log_path: str, *, release: str, makefile_lines: Sequence[str], matrix_line: str = ""
) -> list[CheckFinding]:
    """The build's findings: it failed (with each known API change it shows), it warned, its Makefile
    asks `uname -r` for the kernel."""
    found: list[CheckFinding] = []
    if not ok:
        where = f"; {matrix_line}" if matrix_line else ""
        found.append(
            CheckFinding(
                Finding.BUILD_FAILED,
                "error",
                "build",
                f"the module does not build for {release}{where}: fix the errors below (whole log: {log_path})",
                tuple(diagnose.errors(log)),
            )
        )
        for e in diagnose.explain(log):
            found.append(CheckFinding(Finding.API_CHANGE, "error", "build", e.line, (e.evidence,), detail=e.change.id))
    warnings = tuple(diagnose.warnings(log))
    if warnings:
        message = f"the compiler warned {len(warnings)} time(s): each is a likely bug in a module; fix them"
        found.append(CheckFinding(Finding.BUILD_WARNING, "warning", "build", message, warnings))
    if makefile_lines:
        found.append(
            CheckFinding(
                Finding.MAKEFILE_KDIR,
                "info",
                "build",
                "the Makefile takes the kernel from $(shell uname -r): harmless here (pfharness passes the kernel's "
                "directory), but elsewhere it builds for the running kernel only: keep it overridable (KDIR ?= ...)",
                tuple(makefile_lines),
            )
        )
    return found


def parse_modinfo_params(text: str) -> list[str]:
    """The parameter names `modinfo -p` prints (`name:description (type)` a line)."""
    return [m.group(1) for m in re.finditer(r"^(\w+):", text, re.M)]


def param_findings(params: Sequence[str], messages: Sequence[str], pid_param: str = PID_PARAM) -> list[CheckFinding]:
    """no-tpid-param: an error when the module has no parameter named `pid_param` (the kernel ignores
    `pid_param`= and the module traces whatever its own parameter defaults to); a warning when it was
    loaded with its own name (--pid-param) and has no `tpid`, which the course's script loads it with."""
    names = ", ".join(params) or "none"
    if pid_param in params:
        if pid_param == PID_PARAM or PID_PARAM in params:
            return []
        message = (
            f"the module's pid parameter is `{pid_param}` (loaded here with {pid_param}=<pid>, as --pid-param asked), "
            f"but the course's script loads it with {PID_PARAM}=<pid>, which it would ignore and trace pid 0: "
            f"name it `{PID_PARAM}` (module_param({PID_PARAM}, int, 0)) before you hand it in"
        )
        return [CheckFinding(Finding.NO_TPID_PARAM, "warning", "load", message, (f"modinfo -p: {names}",))]
    quoted = tuple(m for m in messages if (u := _UNKNOWN.search(m)) and u.group(1) == pid_param)
    fix = f"--pid-param {params[0]}" if len(params) == 1 else "--pid-param NAME"
    message = (
        f"the module has no `{pid_param}` parameter (its parameters: {names}): it was loaded with "
        f"{pid_param}=<pid>, so it traced nothing; name it `{PID_PARAM}` (module_param({PID_PARAM}, int, 0)), "
        f"or check it with {fix}"
    )
    return [CheckFinding(Finding.NO_TPID_PARAM, "error", "load", message, quoted)]


def _not_oracle(messages: Sequence[str]) -> list[str]:
    return [ln for ln in messages if not ln.startswith(f"{kbuild.ORACLE_NAME}: ")]


def load_findings(result: TraceResult) -> list[CheckFinding]:
    """load-failed or probe-symbol: insmod refused the module (the oracle's lines beside it are not its)."""
    if result.insmod_status in (0, None):
        return []
    lines = tuple(_not_oracle(result.kernel_messages))
    probe = tuple(m for m in lines if _PROBE_FAILED.search(m) and not splat.scan([m]))
    if probe:
        message = (
            f"insmod failed (status {result.insmod_status}): register_kprobe refused the symbol (-ENOENT: not in "
            "/proc/kallsyms, static or inlined; -EINVAL: not probeable); probe handle_mm_fault, or check with "
            "`grep SYMBOL /proc/kallsyms`"
        )
        return [CheckFinding(Finding.PROBE_SYMBOL, "error", "load", message, probe)]
    message = (
        f"insmod failed (status {result.insmod_status}): the init function returned an error; "
        "read the module's and the kernel's lines below"
    )
    return [CheckFinding(Finding.LOAD_FAILED, "error", "load", message, lines)]


def flood_findings(result: TraceResult, letter: str) -> list[CheckFinding]:
    """printk-flood: the kernel log overwrote lines, or B/C printed a line per fault (the oracle's lines
    beside it are not the module's)."""
    lines = _not_oracle(result.kernel_messages)
    if result.kmsg_lost > 0:
        message = (
            f"the kernel log overwrote the module's lines {result.kmsg_lost} time(s): print less "
            "(one pr_info per fault floods it), or keep the faults in a buffer and print at unload"
        )
        return [CheckFinding(Finding.PRINTK_FLOOD, "error", "run", message, (lines[0], lines[-1]) if lines else ())]
    if result.splats:  # the kernel's report is long: count the module's own (prefixed) lines
        lines = [ln for ln in lines if ln.startswith(f"pf_probe_{letter}: ")]
    if letter in FLOOD_PLOTS and len(lines) > FLOOD_LINES * FLOOD_PLOTS[letter]:
        message = (
            f"the module printed {len(lines)} kernel log lines for one run (a plot is about 35): remove the "
            "printk from the fault handler; print only the plot at unload"
        )
        return [CheckFinding(Finding.PRINTK_FLOOD, "error", "run", message, tuple(lines[len(lines) // 2 :][:3]))]
    return []


def stage_at(lines: Sequence[str], index: int) -> str:
    """The step's stage at console line `index`: after workload-end, unload; after workload-begin,
    run; before, load (the protocol's events are in the transcript as they came)."""
    before = lines[:index]
    if any(" workload-end " in ln or ln.endswith(" workload-end") for ln in before):
        return "unload"
    if any(" workload-begin" in ln for ln in before):
        return "run"
    return "load"


_RIP = re.compile(r"RIP: \d+:(\w+)\+(0x[0-9a-f]+)/0x[0-9a-f]+ \[(\w+)\]")


def splat_finding(lines: Sequence[str], module: str, source_line: str = "") -> CheckFinding | None:
    """kernel-splat from console or kernel log `lines`: its first line, the RIP in the module (its
    function and offset), and the stage it happened in."""
    heads = [i for i, ln in enumerate(lines) if splat_head(ln)]
    if not heads:
        return None
    at = heads[0]
    stage = stage_at(lines, at)
    rip = next((ln for ln in lines[at:] if _RIP.search(ln)), "")
    trace = [ln.strip() for ln in lines[at:] if f"[{module}]" in ln and HOST_NOTE not in ln][:6]
    evidence = (lines[at].strip(), *([rip.strip()] if rip and rip.strip() not in trace else []), *trace)
    message = (
        f"the kernel reported a bug in stage {stage}: {lines[at].strip()[:80]}; "
        "the module's code involved is named below: fix it there"
    )
    return CheckFinding(Finding.KERNEL_SPLAT, "error", stage, message, evidence, source_line=source_line)


def crash_site(lines: Sequence[str], module: str) -> tuple[str, int] | None:
    """The module function and offset the first RIP (else Call Trace line) in `module` names."""
    for ln in lines:
        m = _RIP.search(ln)
        if m and m.group(3) == module:
            return m.group(1), int(m.group(2), 16)
    for ln in lines:
        m = re.search(r"(\w+)\+(0x[0-9a-f]+)/0x[0-9a-f]+ \[(\w+)\]", ln)
        if m and m.group(3) == module:
            return m.group(1), int(m.group(2), 16)
    return None


_LOST = re.compile(r"Kernel panic|soft lockup|\bstalls?\b")  # not "Installing"
LAST_LINES = 5  # the module's own lines before the crash quoted in vm-lost


def lost_findings(lines: Sequence[str], hung: bool, stage: str, before: Sequence[str] = ()) -> list[CheckFinding]:
    """vm-lost (and rmmod-hung when the step hung during unload): the VM died or was killed. `before`: the
    module's own lines of the step (from the kernel's replay at a panic): the last ones before its first splat
    are quoted too."""
    tail = tuple(ln.strip() for ln in lines if _LOST.search(ln))
    last = tuple(ln.strip() for ln in step_result.last_before_crash(before, LAST_LINES))
    found = []
    if hung and stage == "unload":
        message = "rmmod did not return: the exit function waits forever (a loop, a lock): fix the exit function"
        found.append(CheckFinding(Finding.RMMOD_HUNG, "error", "unload", message, tail))
    what = "hung and was killed at the step's timeout" if hung else "died (the kernel panicked)"
    message = f"the VM {what} in stage {stage}: the module took the kernel down (see kernel-splat)"
    found.append(CheckFinding(Finding.VM_LOST, "error", stage, message, (*tail, *last)))
    return found
