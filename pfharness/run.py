"""`pfharness run`: resolve the kernel once, build, boot (or use the host), trace one workload."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass, replace
from pathlib import Path

from . import environment, mm_settings
from .channel import Sink, discard
from .errors import SetupError, UsageError
from .guest.machine import LARGE_LOG_BUF_MIB, SMALL_LOG_BUF_MIB
from .guest.session import VmOptions, VmSession
from .host import HostTarget, check_host_ready
from .kernel import Kernel
from .kmod import kbuild, kernels, render
from .progress import Progress
from .results import run_dir, text
from .results.model import TraceResult
from .results.step_protocol import SAVE_MOUNT as GUEST_SAVE_MOUNT
from .step import TraceRequest, check_params, trace

DEFAULT_OUT = Path("out")
ACCELERATORS = ("auto", "kvm", "tcg")
TARGETS = ("vm", "host")


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
    transcript: Path | None = None  # default: the run directory's transcript.log
    hold: bool = True
    params: tuple[str, ...] = ()
    follow: bool = False  # trace the workload's children, grandchildren, ... too (follow=1)
    out_dir: Path = DEFAULT_OUT  # builds go to out_dir/<release>
    cwd: Path | None = None  # the workload's working directory (default: the caller's)
    env: tuple[str, ...] = ()  # --env NAME=VALUE, over the caller's environment
    thp: str = "host"  # the VM's THP mode: host (copy this machine's settings), always, madvise, never, guest
    sink: Sink = discard  # where the workload's output goes as it arrives

    def validate(self) -> None:
        """Every option checked before anything is built or booted."""
        render.normalize_modules([self.module])
        if not self.command or not self.command[0]:
            raise UsageError("no workload: give the command after --, e.g. pfharness run -- sysbench cpu run")
        if self.target not in TARGETS:
            raise UsageError(f"unknown target {self.target!r}: use --target vm or host")
        if self.accel not in ACCELERATORS:
            raise UsageError(f"unknown accelerator {self.accel!r}: use --accel auto, kvm or tcg")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise UsageError(f"--timeout {self.timeout} is not a number of seconds above 0: e.g. --timeout 600")
        if self.smp < 1 or self.memory_mib < 256:
            raise UsageError("--smp must be at least 1 and --memory at least 256 (MiB)")
        check_params(self.params)
        mm_settings.check_thp(self.thp, self.target)
        environment.overrides(self.env)
        environment.working_directory(self.cwd)


def log_buffer_mib(request: RunRequest) -> int:
    """The guest's kernel log buffer for this run: large for pf_probe_A (a line per fault) and record
    dumps (``dump_records=1``), small otherwise (a large one costs boot time: guest/machine.py)."""
    dumps = any(p.split("=", 1)[0] == "dump_records" and p.split("=", 1)[1] != "0" for p in request.params)
    return LARGE_LOG_BUF_MIB if request.module.upper() == "A" or dumps else SMALL_LOG_BUF_MIB


def build_all(kernel: Kernel, out_dir: Path) -> kbuild.BuildResult:
    """Build all three modules for `kernel` into out_dir/<release> (one cache for every module)."""
    return kbuild.build(kbuild.BuildRequest(out_dir / kernel.release, kernel))


def run(request: RunRequest, progress: Progress | None = None) -> TraceResult:
    """Do one traced run; raises PfhError subclasses for harness failures.

    `progress` hears of each stage as it starts (build, boot, run, collect).
    """
    progress = progress or Progress(enabled=False)
    request.validate()
    letter = render.normalize_modules([request.module])[0]
    stages: dict[str, float] = {}
    if request.target == "host":
        check_host_ready()
        kernel = kernels.select(request.kernel_release or platform.release())
        if kernel.release != platform.release():
            raise UsageError(
                f"--target host runs on this machine's kernel {platform.release()}, "
                f"not {kernel.release}: leave out --kernel-release, or use --target vm"
            )
    else:
        kernel = kernels.select(request.kernel_release)
        kernel.require_image()
    progress.stage("build")
    build = build_all(kernel, request.out_dir)
    stages["build"] = build.seconds
    try:
        directory = run_dir.new_run_dir(request.out_dir, render.module_name(letter))
    except OSError as e:
        raise SetupError(
            f"cannot create a run directory under {request.out_dir}/runs ({e.strerror}): pass --out DIR"
        ) from None
    guest_dir = directory / run_dir.GUEST_SUBDIR
    if request.target == "vm" and "," in str(guest_dir):
        raise UsageError(f"{directory}: QEMU cannot export a path with ',': pass --out DIR with no ',' in it")
    transcript = (request.transcript or directory / run_dir.TRANSCRIPT).resolve()
    cwd = environment.working_directory(request.cwd)
    env = environment.workload_env(os.environ, environment.overrides(request.env), cwd, in_guest=request.target == "vm")
    trace_request = TraceRequest(
        module=letter,
        ko=build.modules[letter],
        command=tuple(request.command),
        hold=request.hold,
        params=tuple(request.params),
        timeout=request.timeout,
        follow=request.follow,
        cwd=cwd,
        env=env,
        save_dir=str(guest_dir) if request.target == "host" else GUEST_SAVE_MOUNT,
        save_dir_host=guest_dir,
    )
    if request.target == "host":
        with HostTarget(transcript) as host:
            result = trace(host, trace_request, stage_seconds=stages, sink=request.sink, on_stage=progress.stage)
    else:
        options = VmOptions(
            kernel=kernel,
            transcript=transcript,
            accel=request.accel,
            smp=request.smp,
            memory_mib=request.memory_mib,
            boot_timeout=request.boot_timeout,
            save_dir=guest_dir,
            log_buf_mib=log_buffer_mib(request),
            mm=mm_settings.for_guest(request.thp),
        )
        progress.stage("boot")
        with VmSession(options) as vm:
            stages["boot"] = vm.boot_seconds
            result = trace(vm, trace_request, stage_seconds=stages, sink=request.sink, on_stage=progress.stage)
    return save_run(directory, result)


def save_run(directory: Path, result: TraceResult) -> TraceResult:
    """Write the run directory's records.csv, regions.csv and run.json; the result gains its path."""
    if result.saved is not None:
        run_dir.write_csvs(directory, result.saved)
    result = replace(result, run_dir=str(directory))
    run_dir.write_run_json(directory, text.json_object(result))
    return result
