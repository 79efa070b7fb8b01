"""Boot a Debian kernel in QEMU with the host's root shared read-only, and
keep a shell on its serial console for the steps of a run (one boot serves
many steps)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pexpect

from .. import proc
from ..channel import StepChannel, StepRun
from ..errors import VmLost, VmTimeout
from ..kernel import Kernel
from ..mm_settings import GUEST_DEFAULTS, MmSettings
from ..results import notes
from ..results import step_protocol as sp
from ..values import Accelerator
from . import accel as accel_mod
from .boot import QBOOT, BootArtifacts, prepare_boot
from .console import Console, ShellResult
from .machine import LARGE_LOG_BUF_MIB, Accel, VmConfig, qemu_argv
from .ports import PortListener

if TYPE_CHECKING:
    from ..step import TraceRequest

_GRACE = 5.0  # seconds one channel may trail the other at a step's end


@dataclass(frozen=True)
class VmOptions:
    """How to start the VM."""

    kernel: Kernel  # the release to boot (its image and modules)
    transcript: Path  # every byte of the console goes here
    accel: Accelerator = Accelerator.auto
    smp: int = 2  # vCPUs
    memory_mib: int = 2048  # guest RAM
    boot_timeout: float = 90.0  # seconds to reach the shell
    extra_append: tuple[str, ...] = ()  # more kernel parameters
    save_dir: Path | None = None  # the one host directory the guest may write (the guest mounts it on SAVE_MOUNT)
    icount_shift: int | None = None  # deterministic guest clock (machine.VmConfig.icount_shift); tcg, smp=1
    log_buf_mib: int = LARGE_LOG_BUF_MIB  # kernel log buffer; SMALL_LOG_BUF_MIB boots faster (machine.py)
    # Memory-management settings written at boot (vm/init.sh, pfh.mm=): run copies the host's. The
    # default leaves the guest kernel's own (Debian's: THP always).
    mm: MmSettings = GUEST_DEFAULTS
    # Start from the cached snapshot of this guest (guest/snapshot.py, made by the first boot) instead of
    # booting it; False always boots (--fresh-boot). Never with icount_shift (its clock must count from 0).
    snapshot: bool = False


@dataclass
class VmSession:
    """A booted guest with a shell on its console. Use as a context manager."""

    options: VmOptions
    accelerator: str = ""  # the accelerator actually used
    boot_seconds: float = 0.0
    console: Console | None = None
    argv: list[str] = field(default_factory=list)
    ports: PortListener | None = None
    on_note: Callable[[str], None] = lambda line: None  # hears a line for the person watching (the KVM probe's)
    snapshot_seconds: float | None = None  # the time it took to save a snapshot, when this boot made one
    # The host's own work to do while the guest boots or resumes (run once, as the wait for its shell begins):
    # the pipeline loads what it reads results with then (pipeline/targets.py).
    while_booting: Callable[[], None] = lambda: None
    _transcript: notes.Transcript | None = None
    _pvh: bool = False
    _busybox: str = "busybox"
    kind = "vm"

    @property
    def kernel_release(self) -> str:
        return self.options.kernel.release

    @property
    def mm(self) -> MmSettings:
        """The guest's memory-management settings (vm/init.sh stops the boot if one cannot be written)."""
        return self.options.mm

    @property
    def transcript_path(self) -> Path:
        return self.options.transcript

    @property
    def transcript(self) -> notes.Transcript:
        assert self.console is not None, "the VM is not booted"
        return self.console.transcript

    def __enter__(self) -> VmSession:
        try:
            self.boot()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def boot(self) -> None:
        qemu = proc.require_program("qemu-system-x86_64", "qemu-system-x86")
        artifacts = prepare_boot(self.options.kernel)
        accel = accel_mod.choose(
            Accelerator.tcg if self.options.icount_shift is not None else self.options.accel,
            artifacts,
            qemu,
            self.on_note,
        )
        self.accelerator = accel
        self.ports = PortListener()
        cfg = replace(self._config(qemu, artifacts, accel), ports=self.ports.ports)
        self._pvh = artifacts.pvh
        self._busybox = artifacts.busybox
        self._transcript = notes.open_transcript(self.options.transcript)
        start = time.monotonic()
        if self.options.snapshot and self.options.icount_shift is None:
            from .restore import start_from_snapshot  # noqa: PLC0415 - only where snapshots apply

            self.snapshot_seconds = start_from_snapshot(self, cfg)
        else:
            self.start_qemu(cfg)
            self.wait_shell(self.options.boot_timeout)
        self.boot_seconds = time.monotonic() - start

    def _config(self, qemu: str, artifacts: BootArtifacts, accel: Accel) -> VmConfig:
        return VmConfig(
            kernel=artifacts.kernel,
            initrd=artifacts.initrd,
            accel=accel,
            smp=self.options.smp,
            memory_mib=self.options.memory_mib,
            extra_append=(*artifacts.append, *_mm_parameter(self.options.mm), *self.options.extra_append),
            qemu_binary=qemu,
            firmware=QBOOT if QBOOT.is_file() else None,
            save_dir=self.options.save_dir,
            # Under -icount the guest's TSC counts instructions, not the host's cycles: let it measure.
            lpj=artifacts.lpj if self.options.icount_shift is None else None,
            tsc_khz=artifacts.tsc_khz if self.options.icount_shift is None else None,
            icount_shift=self.options.icount_shift,
            log_buf_mib=self.options.log_buf_mib,
        )

    def start_qemu(
        self, cfg: VmConfig, *, timeout: float | None = None, meanwhile: Callable[[], None] = lambda: None
    ) -> Console:
        """Start QEMU for `cfg` (this session's console and ports), its boot note in the transcript;
        `meanwhile` runs once QEMU is started, before its ports are waited for (the host's own work)."""
        assert self._transcript is not None and self.ports is not None
        timeout = self.options.boot_timeout if timeout is None else timeout
        self.argv = qemu_argv(cfg)
        child = proc.spawn_interactive(self.argv, logfile=self._transcript, timeout=timeout)
        self.console = Console(child, self._transcript, self.options.transcript)
        meanwhile()
        self.ports.accept(timeout, child.isalive)
        restored = {"restored": 1} if cfg.incoming else {}
        self.console.note(
            notes.boot_note(
                self.kernel_release,
                self.accelerator,
                smp=cfg.smp,
                memory_mib=cfg.memory_mib,
                pvh=int(self._pvh),
                **notes.mm_fields(self.options.mm),
                **restored,
            )
        )
        return self.console

    def wait_shell(self, timeout: float) -> None:
        """Wait for init's ready marker and the shell's first answer (doing `while_booting` first, once)."""
        assert self.console is not None
        work, self.while_booting = self.while_booting, lambda: None
        work()
        self.console.wait_for(rb"PFH-READY\r*\n", "boot", timeout)
        self.console.start_shell("boot", timeout)

    def stop_qemu(self) -> None:
        """Kill this session's QEMU (the transcript stays open for the next one)."""
        if self.console is not None:
            _kill(self.console.child)
            self.console = None

    def note(self, text: str) -> None:
        assert self.console is not None, "the VM is not booted"
        self.console.note(text)

    def run(self, argv: Sequence[str], *, stage: str, timeout: float) -> ShellResult:
        assert self.console is not None, "the VM is not booted"
        return self.console.run(argv, stage=stage, timeout=timeout)

    def step(self, request: TraceRequest, *, channel: StepChannel, stage: str, timeout: float) -> StepRun:
        """Run one step: run_step.sh reports on the port PROTO_PORT, the workload writes to OUT_PORT and
        ERR_PORT (step_protocol). The step's end is the protocol's StepEnd (the console's end marker follows it).
        A step whose port was still held (PORT_BUSY: it never started) is sent again."""
        assert self.console is not None and self.ports is not None, "the VM is not booted"
        console = self.console
        start = time.monotonic()
        argv = request.argv(
            channel.token, proto=sp.port_path(sp.PROTO_PORT), kmsg_fd=sp.GUEST_KMSG_FD, busybox=self._busybox
        )
        # The step in a session of its own (no controlling terminal), started by busybox's setsid, which
        # the shell's lack of job control lets make it without forking (vm/init.sh); env -i first, when the
        # workload's whole environment is given. busybox: static, so each starts in a few milliseconds.
        argv = [self._busybox, "setsid", *argv]
        if request.env is not None:
            argv = [self._busybox, "env", "-i", *(f"{k}={v}" for k, v in request.env), *argv]
        redirect = sp.output_redirect()
        self.ports.attach(channel)
        status: int | None = None
        text = b""
        try:
            for attempt in range(1, sp.BUSY_TRIES + 1):
                token = console.send_command(argv, stage=stage, redirect=redirect)
                done = console.wait_done(token, stage, timeout, stop=lambda: channel.complete)
                busy = done is not None and channel.untouched and sp.PORT_BUSY.search(done[0]) is not None
                if not busy or attempt == sp.BUSY_TRIES:
                    break
                time.sleep(sp.BUSY_PAUSE * attempt)
            if done is None:  # StepEnd came: the shell's end marker follows at once
                left = max(_GRACE, timeout - (time.monotonic() - start))
                try:
                    done = console.wait_done(token, stage, left)
                except VmTimeout:
                    raise
                except VmLost:  # the VM ended after a complete step: the step stands
                    done = None
            else:
                channel.wait_complete(_GRACE)
            if done is not None:
                text, status = done
            channel.wait_outputs(_GRACE)
        finally:
            self.ports.attach(None)
        console_text = text.decode(errors="replace").replace("\r\n", "\n")
        return StepRun(time.monotonic() - start, status, console_text)

    def close(self) -> None:
        """Stop QEMU and close the transcript.

        Nothing in the guest needs a clean shutdown (its writes go to a tmpfs,
        the host root is read-only), so QEMU is simply terminated.
        """
        if self.ports is not None:
            self.ports.close()
            self.ports = None
        self.stop_qemu()
        if self._transcript is not None:
            self._transcript.close()
            self._transcript = None


def _kill(child: pexpect.spawn) -> None:
    try:
        if child.isalive():
            os.kill(child.pid, signal.SIGKILL)
        child.delayafterclose = child.delayafterterminate = 0.0
        # ptyprocess sleeps its own 0.1 s after closing the terminal unless told not to.
        child.ptyproc.delayafterclose = child.ptyproc.delayafterterminate = 0.0
        child.close(force=True)
    except (pexpect.ExceptionPexpect, OSError):
        pass


def _mm_parameter(mm: MmSettings) -> tuple[str, ...]:
    parameter = mm.kernel_parameter()
    return (parameter,) if parameter else ()
