"""QEMU command line for the pfharness guest (pure: no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..results.step_protocol import P9_PARAM, PORTS_PARAM, SAVE_PARAM, SNAP_PARAM

__all__ = [
    "DEFAULT_APPEND",
    "LARGE_LOG_BUF_MIB",
    "SMALL_LOG_BUF_MIB",
    "VIRTIO_KINDS",
    "VmConfig",
    "kernel_cmdline",
    "qemu_argv",
    "virtio_device",
]

Accel = Literal["kvm", "tcg"]
Machine = Literal["pc", "q35", "microvm"]

#: Kernel parameters always passed. Serial console, never reboot on panic
#: (with -no-reboot QEMU then exits), oopses are fatal, and shortcuts that are
#: safe in a throw-away VM: trust the TSC, skip the IO-APIC timer check, no PS/2
#: mouse/PnP probing, no speculative-execution mitigations (costly under TCG,
#: pointless here), no hardening that only costs boot time under emulation. The
#: log buffer's size is VmConfig.log_buf_mib.
DEFAULT_APPEND: tuple[str, ...] = (
    "console=ttyS0",
    "loglevel=5",  # errors and warnings (with their backtraces) reach the transcript
    "panic=-1",
    "oops=panic",
    "tsc=reliable",
    "no_timer_check",
    "i8042.noaux",
    "i8042.nopnp",
    "i8042.dumbkbd",
    "mitigations=off",
    "cryptomgr.notests",  # skip the crypto self-tests: ~0.27 s of boot under TCG
    # The kernel's own text and data stay writable and its W+X page-table walk is skipped: ~0.1 s.
    # User memory, which the modules trace, is not affected.
    "rodata=off",
    # Kernel allocations are not zeroed unless asked for (Debian turns zeroing on for hardening):
    # ~0.1 s of boot, and loading a module with a 16 MiB record buffer 0.16 s -> 0.06 s. User pages
    # are zeroed on their first fault either way (__GFP_ZERO), so what the modules see is the same.
    "init_on_alloc=0",
    # RCU grace periods expedited (IPIs rather than waiting for every CPU to pass a quiescent state on its
    # own): unloading a module waits for several (its kretprobe, its tracepoints, the module's own free),
    # rmmod of pf_probe_B 94 -> 35 ms under TCG. What the modules trace is not touched.
    "rcupdate.rcu_expedited=1",
)

#: The log buffer (MiB) for pf_probe_A and record dumps, which print a line per fault. Under TCG the
#: kernel spends ~0.15-0.3 s of boot clearing a 16 MiB buffer; 1 MiB (4 times Debian's own) holds
#: what pf_probe_B and C print at unload with room to spare.
LARGE_LOG_BUF_MIB = 16
SMALL_LOG_BUF_MIB = 1


@dataclass(frozen=True)
class VmConfig:
    """Everything needed to start one guest VM."""

    kernel: Path  # bzImage, or the extracted PVH vmlinux (faster under TCG)
    initrd: Path  # initramfs built by pfharness.initramfs.build_initramfs
    accel: Accel = "tcg"  # "kvm" only after a successful probe; "tcg" otherwise
    machine: Machine = "q35"  # q35: PCIe virtio devices; pc works too
    smp: int = 2  # guest vCPUs
    memory_mib: int = 1024  # guest RAM in MiB (also bounds the tmpfs upper layer)
    host_root: Path = Path("/")  # host directory exported read-only as tag hostroot
    mount_tag: str = "hostroot"  # 9p tag; the guest /init mounts this tag
    p9_opts: str = "msize=512000,cache=loose"  # guest 9p mount options (P9_PARAM=)
    # The one host directory the guest may write: a run's guest/ (results/run_dir.py), exported
    # read-write under save_tag and mounted by the guest /init on SAVE_MOUNT (SAVE_PARAM=TAG; step_protocol).
    save_dir: Path | None = None
    save_tag: str = "pfhsave"
    # One host thread runs all vCPUs under TCG. With one thread per vCPU ("multi"), unloading a
    # kprobe while another vCPU faults hard crashed the guest (a jump to address 0 in the fault
    # path) in 1 of about 6 tries here; with "single", 0 of 25 (see docs/how-it-works.md, "How `run` works").
    tcg_threads: Literal["single", "multi"] = "single"
    firmware: Path | None = None  # -bios image; qboot starts a PVH kernel ~0.2 s sooner than SeaBIOS
    # Loops per jiffy, preset: the guest then skips measuring it on each secondary vCPU, which
    # under TCG fails ("calibrate_delay_direct() failed") and costs ~0.2 s of boot. None measures.
    lpj: int | None = None
    # The TSC frequency in kHz (tsc_early_khz=): under TCG and KVM the guest's TSC runs at the host's
    # rate, and the guest's own calibration against the emulated HPET/PIT goes wrong when the host is
    # busy (seen here: a guest clock running 57 times too fast, so every timestamp and timeout with it).
    tsc_khz: int | None = None
    # -icount shift=N,sleep=off: the guest clock counts instructions (2**N ns each), so its timings
    # repeat exactly; a deterministic cost measure (bench/run.py), TCG with one vCPU only. None: off.
    icount_shift: int | None = None
    log_buf_mib: int = LARGE_LOG_BUF_MIB  # the kernel log buffer (log_buf_len=), read back via /dev/kmsg
    extra_append: tuple[str, ...] = ()  # more kernel parameters, appended last
    qemu_binary: str = "qemu-system-x86_64"  # emulator to run
    # virtio-serial ports: (name the guest sees, host unix socket QEMU connects to at start-up).
    # The harness listens on the sockets before QEMU starts (see guest/channel.py).
    ports: tuple[tuple[str, Path], ...] = ()
    # Snapshots (guest/snapshot.py). The guest's RAM in this file instead of anonymous memory: mapped
    # shared while a snapshot is made (the guest's RAM is the snapshot's), privately (copy-on-write:
    # the file never changes, runs never see each other's writes) when restored from it.
    ram_file: Path | None = None
    ram_shared: bool = False
    snapshot_point: bool = False  # init.sh stops before its 9p mounts (SNAP_PARAM=1); a vmgenid device
    qmp: Path | None = None  # a unix socket QEMU's monitor listens on (QMP)
    incoming: bool = False  # wait for a saved state to restore (-incoming defer; guest/monitor.py)


def kernel_cmdline(cfg: VmConfig) -> str:
    """The guest kernel command line for ``cfg``."""
    if cfg.log_buf_mib < 1:
        raise ValueError(f"log_buf_mib must be at least 1, got {cfg.log_buf_mib}")
    parts = list(DEFAULT_APPEND)
    parts.append(f"log_buf_len={cfg.log_buf_mib}M")
    parts.append(f"{P9_PARAM}={cfg.p9_opts}")
    if cfg.save_dir is not None:
        parts.append(f"{SAVE_PARAM}={cfg.save_tag}")
    if cfg.ports:
        parts.append(f"{PORTS_PARAM}=" + ",".join(name for name, _ in cfg.ports))
    if cfg.lpj is not None:
        parts.append(f"lpj={cfg.lpj}")
    if cfg.tsc_khz is not None:
        parts.append(f"tsc_early_khz={cfg.tsc_khz}")
    if cfg.snapshot_point:
        parts.append(f"{SNAP_PARAM}=1")
    parts.extend(cfg.extra_append)
    for part in parts:
        if not part or any(c.isspace() for c in part):
            raise ValueError(f"kernel parameter {part!r} is empty or contains whitespace; pass one parameter per item")
    return " ".join(parts)


def _machine_args(cfg: VmConfig) -> list[str]:
    """-machine/-accel/-cpu for the chosen machine type and accelerator."""
    machine = cfg.machine
    cpu = "host" if cfg.accel == "kvm" else "max"
    accel = "kvm" if cfg.accel == "kvm" else f"tcg,thread={cfg.tcg_threads}"
    icount = [] if cfg.icount_shift is None else ["-icount", f"shift={cfg.icount_shift},sleep=off"]
    if cfg.ram_file is None:
        return ["-machine", machine, "-accel", accel, "-cpu", cpu, *icount]
    share = "on" if cfg.ram_shared else "off"
    ram = f"memory-backend-file,id=pfhram,size={cfg.memory_mib}M,mem-path={cfg.ram_file},share={share}"
    return ["-object", ram, "-machine", f"{machine},memory-backend=pfhram", "-accel", accel, "-cpu", cpu, *icount]


def _snapshot_args(cfg: VmConfig) -> list[str]:
    """The monitor, the restored state, and a VM generation ID: QEMU gives a restored guest a new one
    and tells it, and the guest kernel then reseeds its random generator at once (vmgenid)."""
    args = ["-device", "vmgenid,guid=auto"] if cfg.snapshot_point else []
    if cfg.qmp is not None:
        args += ["-qmp", f"unix:{cfg.qmp},server=on,wait=off"]
    if cfg.incoming:
        args += ["-incoming", "defer"]  # the state goes in through the monitor (guest/monitor.py)
    return args


#: The virtio devices pfharness attaches, by the short name virtio_device() takes.
VIRTIO_KINDS: tuple[str, ...] = ("9p", "serial", "blk", "net", "rng")


def virtio_device(cfg: VmConfig, kind: str) -> str:
    """QEMU's device name for virtio `kind` ("9p", "serial", ...) on `cfg`'s machine.

    The one place that knows the transport: PCI machines (pc, q35) take ``virtio-<kind>-pci``,
    machines with virtio-mmio (microvm) take ``virtio-<kind>-device``. Every -device of a
    virtio kind goes through here.
    """
    if kind not in VIRTIO_KINDS:
        raise ValueError(f"unknown virtio device kind {kind!r}: one of {', '.join(VIRTIO_KINDS)}")
    return f"virtio-{kind}-{'device' if cfg.machine == 'microvm' else 'pci'}"


def _virtfs_args(cfg: VmConfig) -> list[str]:
    """Read-only 9p export of the host root under ``cfg.mount_tag``; with ``cfg.save_dir``, a second,
    read-write export of exactly that directory (the run's guest/) under ``cfg.save_tag``."""
    device = virtio_device(cfg, "9p")
    args = [
        "-fsdev",
        f"local,id=pfhroot,path={cfg.host_root},security_model=none,readonly=on,multidevs=remap",
        "-device",
        f"{device},fsdev=pfhroot,mount_tag={cfg.mount_tag}",
    ]
    if cfg.save_dir is not None:
        args += [
            "-fsdev",
            f"local,id=pfhsave,path={cfg.save_dir},security_model=none,multidevs=remap",
            "-device",
            f"{device},fsdev=pfhsave,mount_tag={cfg.save_tag}",
        ]
    return args


def _port_args(cfg: VmConfig) -> list[str]:
    """One virtio-serial device with a named port per channel, each backed by a unix socket
    that QEMU connects to (the harness listens there)."""
    if not cfg.ports:
        return []
    args = ["-device", f"{virtio_device(cfg, 'serial')},id=pfhser"]
    for i, (name, path) in enumerate(cfg.ports):
        if not name or "," in name or any(c.isspace() for c in name) or "," in str(path):
            raise ValueError(f"port {name!r} at {path}: names and paths cannot hold ',' or blanks")
        args += [
            "-chardev",
            f"socket,id=pfhport{i},path={path}",
            "-device",
            f"virtserialport,bus=pfhser.0,chardev=pfhport{i},name={name}",
        ]
    return args


def qemu_argv(cfg: VmConfig) -> list[str]:
    """Full argv to boot ``cfg`` with the serial console on stdio."""
    if cfg.smp < 1 or cfg.memory_mib < 128:
        raise ValueError(f"need smp >= 1 and memory_mib >= 128, got smp={cfg.smp} memory_mib={cfg.memory_mib}")
    if cfg.icount_shift is not None and (cfg.accel != "tcg" or cfg.smp != 1):
        # Two vCPUs never finish booting under -icount here (the second one's start-up hangs).
        raise ValueError(f"icount needs tcg and smp=1, got accel={cfg.accel} smp={cfg.smp}")
    for path in (cfg.host_root, cfg.save_dir, cfg.ram_file, cfg.qmp):
        if path is not None and "," in str(path):
            raise ValueError(f"{path} contains ',', which QEMU's option parser cannot take")
    return [
        cfg.qemu_binary,
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-no-reboot",
        *_machine_args(cfg),
        "-smp",
        str(cfg.smp),
        "-m",
        f"{cfg.memory_mib}M",
        *(["-bios", str(cfg.firmware)] if cfg.firmware else []),
        # signal=off: a Ctrl-C (0x03) from the host reaches the guest shell
        # instead of killing QEMU.
        "-chardev",
        "stdio,id=pfhcon,signal=off",
        "-serial",
        "chardev:pfhcon",
        "-kernel",
        str(cfg.kernel),
        "-initrd",
        str(cfg.initrd),
        "-append",
        kernel_cmdline(cfg),
        *_virtfs_args(cfg),
        *_port_args(cfg),
        *_snapshot_args(cfg),
    ]
