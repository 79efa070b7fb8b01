"""Start a guest from its cached snapshot (guest/snapshot.py), making the snapshot on the first boot.

- No snapshot yet: boot with the guest's RAM in a file (mapped shared) and init.sh's snapshot point on,
  save the devices' state through the monitor when init.sh reaches the point, stop that QEMU, publish the
  snapshot, and restore this run from it like every later run.
- A snapshot: start QEMU with its RAM file mapped privately and `-incoming` from its state, send the
  resume line (the host's clock, fresh random bytes) on the protocol port, wait for the shell.
- A damaged snapshot, or one QEMU cannot restore (a bounded wait): removed, a one-line note, a cold boot.
- Another run making the same snapshot right now: a cold boot, as without snapshots.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import VmLost, VmTimeout
from ..results import step_protocol as sp
from . import snapshot
from .machine import VmConfig

if TYPE_CHECKING:
    from types import ModuleType

    from .session import VmSession

# Seconds a restored guest may take from QEMU's start to its shell's answer: it needs about half a
# second; more means the snapshot does not fit this QEMU (a cold boot follows), not a slow host.
RESTORE_TIMEOUT = 20.0
_POINT = re.escape(sp.SNAP_POINT.encode()) + rb"\r*\n"


def start_from_snapshot(vm: VmSession, cfg: VmConfig) -> float | None:
    """Bring `vm` to its shell from the snapshot for `cfg` (made first when missing); the seconds the
    save took when this call made the snapshot, else None."""
    cold = cfg
    # The vmgenid device (machine.py) needs SeaBIOS: under qboot the guest never starts. Only the boot
    # that makes the snapshot runs the firmware, so qboot's 0.2 s are not missed.
    cfg = replace(cfg, snapshot_point=True, firmware=None)
    snapshot_key = snapshot.key(cfg)
    try:
        snap = snapshot.find(snapshot_key)
    except snapshot.SnapshotDamaged as why:
        _discard(vm, snapshot.Snapshot(snapshot.root() / snapshot_key), str(why))
        snap = None
    saved = None
    if snap is None:
        snap, saved = _make(vm, cfg, cold, snapshot_key)
        if snap is None:
            return None  # booted without a snapshot
    try:
        _restore(vm, cfg, snap)
    except VmLost as lost:
        vm.stop_qemu()
        _discard(vm, snap, str(lost).splitlines()[0])
        _cold_boot(vm, cold)
        return None
    return saved


def _monitor() -> ModuleType:
    """guest/monitor.py, loaded once QEMU is started: qemu.qmp and asyncio take ~0.02 s, which QEMU's own
    start (before it connects the ports) covers."""
    from . import monitor  # noqa: PLC0415

    return monitor


def _load_monitor() -> None:
    _monitor()


def _discard(vm: VmSession, snap: snapshot.Snapshot, why: str) -> None:
    snapshot.remove(snap)
    vm.on_note(f"pfharness: the cached snapshot {snap.directory} is unusable ({why}): removed, booting afresh")


def _cold_boot(vm: VmSession, cfg: VmConfig) -> None:
    vm.start_qemu(cfg)
    vm.wait_shell(vm.options.boot_timeout)


def _make(
    vm: VmSession, cfg: VmConfig, cold: VmConfig, snapshot_key: str
) -> tuple[snapshot.Snapshot | None, float | None]:
    """Boot, stop at the snapshot point, save: (the snapshot, the seconds the save took). (None, None)
    after a plain cold boot, when another run is making the snapshot or it could not be made."""
    made = None
    try:
        with snapshot.making(snapshot_key) as work:
            if work is not None:
                made = _save(vm, cfg, work, snapshot_key)
    except (OSError, VmLost) as error:
        if isinstance(error, VmTimeout):
            raise  # the boot itself did not finish: a cold boot would not either
        vm.stop_qemu()
        vm.on_note(f"pfharness: no snapshot made ({str(error).splitlines()[0]}); booting afresh")
    if made is None:
        _cold_boot(vm, cold)
        return None, None
    return made


def _save(vm: VmSession, cfg: VmConfig, work: snapshot.Snapshot, snapshot_key: str) -> tuple[snapshot.Snapshot, float]:
    """Boot with the RAM in `work`, save the devices' state at the snapshot point, publish `work`."""
    qmp = work.directory / "qmp.sock"
    console = vm.start_qemu(replace(cfg, ram_file=work.ram, ram_shared=True, qmp=qmp))
    monitor = _monitor()
    console.wait_for(_POINT, "boot", vm.options.boot_timeout)
    start = time.monotonic()
    monitor.save_state(qmp, work.state)
    vm.stop_qemu()
    qmp.unlink(missing_ok=True)
    snap = snapshot.publish(work, snapshot_key)
    seconds = time.monotonic() - start
    vm.on_note(f"pfharness: saved a snapshot of the booted guest in {seconds:.2f} s: later runs start from it")
    return snap, seconds


def _restore(vm: VmSession, cfg: VmConfig, snap: snapshot.Snapshot) -> None:
    """Start QEMU from `snap` and bring its guest to the shell; VmLost when it does not come."""
    assert vm.ports is not None
    qmp = vm.ports.directory / "qmp.sock"  # a private directory, removed with the ports
    run_cfg = replace(cfg, ram_file=snap.ram, ram_shared=False, qmp=qmp, incoming=True)
    console = vm.start_qemu(run_cfg, timeout=RESTORE_TIMEOUT, meanwhile=_load_monitor)
    monitor = _monitor()
    monitor.restore_state(qmp, snap.state, RESTORE_TIMEOUT, console.child.isalive)
    # QEMU held the port's bytes until now, and the guest waits on it at the snapshot point.
    line = sp.resume_line(round(time.time()), secrets.token_hex(32))
    vm.ports.send(sp.PROTO_PORT, line.encode() + b"\n")
    vm.wait_shell(RESTORE_TIMEOUT)
