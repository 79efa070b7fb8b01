"""Where a run's steps happen, and what each place knows: a VM (a kernel image to boot, a guest
that sees the run's save directory at /run/pfh-save, the guest's environment, a kernel log buffer
sized for the modules) or this host (the running kernel, root, host paths as they are).

A target spec is a value the CLI makes once from its options; the pipeline asks it to prepare the
kernel and modules, then opens it to run steps. Tests pass a spec of their own (a recorded replay)."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .. import environment, mm_settings
from ..errors import UsageError
from ..guest.machine import LARGE_LOG_BUF_MIB, SMALL_LOG_BUF_MIB
from ..results.step_protocol import SAVE_MOUNT
from ..values import Accelerator
from .events import Events
from .prepare import Prepared, prepare

#: Whether a VM starts from its snapshot unless told otherwise (`--fresh-boot`).
SNAPSHOT_DEFAULT = True

if TYPE_CHECKING:
    from ..step import Target
    from .steps import Step


@dataclass(frozen=True)
class Opened:
    """A started target: where its steps run, and how long starting it took (stage -> seconds)."""

    target: Target
    stage_seconds: Mapping[str, float] = field(default_factory=dict)


class TargetSpec(Protocol):
    """What the pipeline needs of a place to run steps."""

    @property
    def kind(self) -> str: ...  # "vm" or "host": what results and the transcript call it

    @property
    def smp(self) -> int: ...  # the CPUs the steps may use

    def check_ready(self) -> None:
        """Raise a SetupError when this machine cannot use the target at all (before anything is built)."""

    def prepare(self, release: str | None, build_dir: Path) -> Prepared:
        """The kernel the steps run on (release: the user's choice, None for the default) and the
        modules built for it under build_dir."""

    def check_save_dir(self, host_dir: Path) -> None:
        """Raise a UsageError when the target cannot be given `host_dir` to write into."""

    def save_path(self, host_dir: Path) -> str:
        """`host_dir` (the one directory the target may write) as a path inside the target."""

    def environment(self, overrides: Mapping[str, str], cwd: Path) -> tuple[tuple[str, str], ...]:
        """The workload's whole environment: the caller's as it applies in the target, and `overrides`."""

    def check_command(self, name: str, overrides: Mapping[str, str], cwd: Path) -> None:
        """Raise WorkloadNotFound when the workload's command `name` surely cannot be run there (before
        anything is built or booted)."""

    def open(
        self, prepared: Prepared, *, transcript: Path, save_dir: Path | None, steps: Sequence[Step], events: Events
    ) -> contextlib.AbstractContextManager[Opened]:
        """Start the target for `steps` (the steps it will run: a VM sizes its kernel log for them), its
        transcript at `transcript`, `save_dir` the one host directory it may write (None: none);
        stopped when the block ends."""


def log_buffer_mib(steps: Sequence[Step]) -> int:
    """The guest's kernel log buffer for these steps: large for pf_probe_A (a line per fault) and
    record dumps (``dump_records=1``), small otherwise (a large one costs boot time: guest/machine.py)."""

    def dumps(params: Sequence[str]) -> bool:
        return any(p.split("=", 1)[0] == "dump_records" and p.split("=", 1)[1] != "0" for p in params)

    large = any(s.module.letter == "A" or dumps(s.params) for s in steps)
    return LARGE_LOG_BUF_MIB if large else SMALL_LOG_BUF_MIB


def load_result_readers() -> None:
    """Import what a step's result is read, shown and kept with (numpy, the records' readers and writers,
    pyarrow when installed: about 0.2 s), while a VM's guest boots or resumes and the host only waits."""
    from ..results import records_parquet, run_dir, text  # noqa: F401, PLC0415

    records_parquet.load()


class _LooksUpCommands:
    """A workload's command is looked up on this machine before anything starts: the VM shares this
    machine's root and the host target is this machine, so a command not found here is not found there."""

    def environment(self, overrides: Mapping[str, str], cwd: Path) -> tuple[tuple[str, str], ...]:
        raise NotImplementedError

    def check_command(self, name: str, overrides: Mapping[str, str], cwd: Path) -> None:
        environment.check_program(name, self.environment(overrides, cwd), cwd)


@dataclass(frozen=True)
class VmSpec(_LooksUpCommands):
    """A Debian kernel booted in QEMU with the host's root shared read-only."""

    accel: Accelerator = Accelerator.auto
    smp: int = 2  # vCPUs
    memory_mib: int = 2048  # guest RAM
    boot_timeout: float = 90.0  # seconds to reach the shell
    icount_shift: int | None = None  # a deterministic guest clock (guest/machine.py); tcg, smp=1
    # The guest's transparent huge pages (`run --thp`, mm_settings.for_guest): host (copy this machine's
    # settings), always, madvise, never, or guest; None: the guest kernel's defaults, nothing set at boot.
    thp: str | None = None
    extra_append: tuple[str, ...] = ()  # more kernel parameters (`check` boots with slub_debug=FZPU)
    # Start from the cached snapshot of this guest, made by its first boot (guest/snapshot.py), instead of
    # booting; False boots every time (`--fresh-boot`).
    snapshot: bool = SNAPSHOT_DEFAULT
    kind = "vm"

    def __post_init__(self) -> None:
        if self.smp < 1 or self.memory_mib < 256:
            raise UsageError("--smp must be at least 1 and --memory at least 256 (MiB)")
        if self.thp is not None:
            mm_settings.check_thp(self.thp)

    def check_ready(self) -> None:
        """Nothing to check before the build: QEMU and the image are looked for when they are needed."""

    def prepare(self, release: str | None, build_dir: Path) -> Prepared:
        return prepare(release, build_dir, boot=True)

    def check_save_dir(self, host_dir: Path) -> None:
        if "," in str(host_dir):
            raise UsageError(f"{host_dir.parent}: QEMU cannot export a path with ',': pass --out DIR with no ',' in it")

    def save_path(self, host_dir: Path) -> str:
        return SAVE_MOUNT  # where the guest mounts it (the step protocol's)

    def environment(self, overrides: Mapping[str, str], cwd: Path) -> tuple[tuple[str, str], ...]:
        return environment.workload_env(os.environ, overrides, cwd, in_guest=True)

    @contextlib.contextmanager
    def open(
        self, prepared: Prepared, *, transcript: Path, save_dir: Path | None, steps: Sequence[Step], events: Events
    ) -> Iterator[Opened]:
        from ..guest.session import VmOptions, VmSession  # noqa: PLC0415 - QEMU's side, loaded when booted

        assert prepared.kernel is not None, "a VM spec's prepare() resolves a kernel to boot"
        options = VmOptions(
            kernel=prepared.kernel,
            transcript=transcript,
            accel=self.accel,
            smp=self.smp,
            memory_mib=self.memory_mib,
            boot_timeout=self.boot_timeout,
            save_dir=save_dir,
            icount_shift=self.icount_shift,
            log_buf_mib=log_buffer_mib(steps),
            mm=mm_settings.GUEST_DEFAULTS if self.thp is None else mm_settings.for_guest(self.thp),
            extra_append=self.extra_append,
            snapshot=self.snapshot,
        )
        events.stage("boot")
        with VmSession(options, on_note=events.note, while_booting=load_result_readers) as vm:
            saved = {} if vm.snapshot_seconds is None else {"snapshot": vm.snapshot_seconds}
            yield Opened(vm, {"boot": vm.boot_seconds, **saved})


@dataclass(frozen=True)
class HostSpec(_LooksUpCommands):
    """This machine's own kernel (--target host): needs root and module loading."""

    kind = "host"

    @property
    def smp(self) -> int:
        return os.cpu_count() or 1

    def check_ready(self) -> None:
        from ..host import check_host_ready  # noqa: PLC0415

        check_host_ready()

    def prepare(self, release: str | None, build_dir: Path) -> Prepared:
        running = platform.release()
        return prepare(release or running, build_dir, boot=False, running=running)

    def check_save_dir(self, host_dir: Path) -> None:
        """Any directory will do: the steps run here."""

    def save_path(self, host_dir: Path) -> str:
        return str(host_dir)

    def environment(self, overrides: Mapping[str, str], cwd: Path) -> tuple[tuple[str, str], ...]:
        return environment.workload_env(os.environ, overrides, cwd, in_guest=False)

    @contextlib.contextmanager
    def open(
        self, prepared: Prepared, *, transcript: Path, save_dir: Path | None, steps: Sequence[Step], events: Events
    ) -> Iterator[Opened]:
        from ..host import HostTarget  # noqa: PLC0415

        with HostTarget(transcript) as host:
            yield Opened(host)
