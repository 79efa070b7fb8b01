"""`pfharness run`: build, boot (or use the host), trace one workload, collect."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

from . import kbuild, kernels, render, trace
from .host import HostTarget, check_host_ready
from .vm import VmOptions, VmSession

DEFAULT_OUT = Path("out")


@dataclass(frozen=True)
class RunRequest:
    """Everything `pfharness run` was asked to do."""

    module: str  # "A", "B" or "C"
    command: tuple[str, ...]  # the workload
    target: str = "vm"  # "vm" or "host"
    kernel_release: str | None = None  # default: see `pfharness kernels` (vm) or `uname -r` (host)
    accel: str = "auto"
    smp: int = 2
    memory_mib: int = 2048
    timeout: float = 600.0  # seconds for the traced step
    boot_timeout: float = 90.0
    transcript: Path | None = None  # default: out/transcripts/<time>-<module>.log
    hold: bool = True
    params: tuple[str, ...] = ()
    out_dir: Path = DEFAULT_OUT  # builds go to out_dir/<release>


def default_transcript(out_dir: Path, module: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return out_dir / "transcripts" / f"{stamp}-{render.module_name(module)}.log"


def build_for(release: str | None, out_dir: Path) -> kbuild.BuildResult:
    """Build all three modules for `release` (one cache for every module)."""
    release, _ = kbuild.resolve_kdir(kbuild.BuildRequest(out_dir, kernel_release=release))
    return kbuild.build(kbuild.BuildRequest(out_dir / release, kernel_release=release))


def run(request: RunRequest) -> trace.TraceResult:
    """Do one traced run; raises PfhError subclasses for harness failures."""
    letter = render.normalize_modules([request.module])[0]
    stages: dict[str, float] = {}
    release = request.kernel_release
    if request.target == "host":
        check_host_ready()
        release = release or platform.release()
    build = build_for(release, request.out_dir)
    stages["build"] = build.seconds
    transcript = (request.transcript or default_transcript(request.out_dir, letter)).resolve()
    trace_request = trace.TraceRequest(
        module=letter,
        ko=build.modules[letter],
        command=tuple(request.command),
        hold=request.hold,
        params=tuple(request.params),
        timeout=request.timeout,
    )
    trace_request.argv()  # validate the parameters before booting anything

    if request.target == "host":
        with HostTarget(transcript) as host:
            host.note(f"boot release={build.kernel_release} accel=host")
            result = trace.trace(host, trace_request, stage_seconds=stages)
        result.accelerator = "host"
    else:
        kernel = kernels.select(build.kernel_release)
        options = VmOptions(
            kernel=kernel,
            transcript=transcript,
            accel=request.accel,
            smp=request.smp,
            memory_mib=request.memory_mib,
            boot_timeout=request.boot_timeout,
        )
        with VmSession(options) as vm:
            stages["boot"] = vm.boot_seconds
            result = trace.trace(vm, trace_request, stage_seconds=stages)
        result.accelerator = vm.accelerator
    result.target = request.target
    result.kernel_release = build.kernel_release
    result.transcript = str(transcript)
    return result
