"""Booted guests kept in the cache: a snapshot per guest configuration, restored instead of booting.

A snapshot is a directory ``<cache>/snapshots/<key>/`` with
- ``ram``: the guest's whole RAM, a sparse file (the guest ran with its RAM in this file, mapped shared);
- ``state``: the devices' state (QEMU's migration stream without RAM, x-ignore-shared), ~200 KiB;
- ``meta.json``: the key, the state's size and SHA-256, the RAM's size (checked before each restore).

The guest was stopped at vm/init.sh's snapshot point (step_protocol.SNAP_POINT): modules loaded, ports
linked, nothing of the host's file system mounted. Each run maps ``ram`` privately (copy-on-write), so the
file never changes and runs restored at once never see each other. The key hashes everything the saved
guest depends on: QEMU's argv for the guest (kernel parameters, machine, memory, vCPUs, accelerator), and
the QEMU binary, kernel, initramfs and firmware files (path, size, modification time); per-run paths
(sockets, the save directory) are left out. A snapshot is made in a private directory and renamed into
place under a lock, so two runs racing to make it never leave half of one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from .. import assets
from .machine import VmConfig, qemu_argv

FORMAT = 1  # bump when what a snapshot holds changes: every older one then has another key
KEEP = 4  # snapshots kept (the ones used last): each holds the RAM a boot touched, ~130-200 MiB here
_STALE = 3600.0  # seconds after which a work directory left by a killed run is removed


class SnapshotDamaged(Exception):
    """A snapshot that cannot be restored: its files are missing, cut short or altered."""


@dataclass(frozen=True)
class Snapshot:
    """One snapshot's directory and what is in it."""

    directory: Path

    @property
    def ram(self) -> Path:
        return self.directory / "ram"

    @property
    def state(self) -> Path:
        return self.directory / "state"

    @property
    def meta(self) -> Path:
        return self.directory / "meta.json"


def root() -> Path:
    return assets.cache_dir() / "snapshots"


def key(cfg: VmConfig) -> str:
    """What a snapshot of a guest started with `cfg` depends on, hashed."""
    neutral = replace(
        cfg,
        ports=tuple((name, Path(f"/port/{name}")) for name, _ in cfg.ports),
        save_dir=None if cfg.save_dir is None else Path("/save"),
        ram_file=Path("/ram"),
        ram_shared=False,
        snapshot_point=True,
        qmp=None,
        incoming=False,
    )
    parts = [str(FORMAT), *qemu_argv(neutral)]
    binary = shutil.which(cfg.qemu_binary) or cfg.qemu_binary
    for path in (binary, cfg.kernel, cfg.initrd, cfg.firmware):
        if path is not None:
            st = os.stat(path)
            parts += [str(path), str(st.st_size), str(st.st_mtime_ns)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find(snapshot_key: str) -> Snapshot | None:
    """The snapshot for `snapshot_key`, checked; None when there is none. Raises SnapshotDamaged."""
    snap = Snapshot(root() / snapshot_key)
    if not snap.directory.is_dir():
        return None
    try:
        meta = json.loads(snap.meta.read_text())
        problems = [
            "another key" if meta.get("key") != snapshot_key else "",
            "its state is cut short" if snap.state.stat().st_size != meta.get("state_bytes") else "",
            "its state was altered" if _digest(snap.state) != meta.get("state_sha256") else "",
            "its RAM is cut short" if snap.ram.stat().st_size != meta.get("ram_bytes") else "",
        ]
    except (OSError, ValueError, AttributeError) as error:
        raise SnapshotDamaged(f"it cannot be read ({error})") from None
    problem = next((p for p in problems if p), None)
    if problem:
        raise SnapshotDamaged(problem)
    with contextlib.suppress(OSError):
        os.utime(snap.meta)  # used now: prune() keeps it
    return snap


def prune(keep: int = KEEP) -> None:
    """Remove all but the `keep` snapshots used last (a new kernel or initramfs makes a new one), and
    what runs killed while making one left behind."""
    found = []
    for directory in root().iterdir():
        with contextlib.suppress(OSError):
            if directory.name.startswith((".new-", ".trash-")):
                if time.time() - directory.stat().st_mtime > _STALE:
                    shutil.rmtree(directory, ignore_errors=True)
            elif directory.is_dir():
                found.append((Snapshot(directory).meta.stat().st_mtime, directory))
    for _, directory in sorted(found, reverse=True)[keep:]:
        remove(Snapshot(directory))


def remove(snap: Snapshot) -> None:
    """Take `snap` out of the cache (a run that has its RAM mapped keeps its copy)."""
    trash = snap.directory.with_name(f".trash-{snap.directory.name}-{os.getpid()}")
    with contextlib.suppress(OSError):
        snap.directory.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def making(snapshot_key: str) -> Iterator[Snapshot | None]:
    """A private directory to make the snapshot for `snapshot_key` in, under the key's lock; None when
    another run is making it now (that run's snapshot will serve later runs). Removed at the end
    unless published."""
    base = root()
    base.mkdir(parents=True, exist_ok=True)
    with open(base / f"{snapshot_key}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        work = Path(tempfile.mkdtemp(prefix=f".new-{snapshot_key}-", dir=base))
        try:
            yield Snapshot(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def publish(work: Snapshot, snapshot_key: str) -> Snapshot:
    """Write `work`'s meta.json and rename it into place (replacing an older one of the same key)."""
    meta = {
        "key": snapshot_key,
        "format": FORMAT,
        "state_bytes": work.state.stat().st_size,
        "state_sha256": _digest(work.state),
        "ram_bytes": work.ram.stat().st_size,
    }
    work.meta.write_text(json.dumps(meta, indent=1) + "\n")
    final = Snapshot(root() / snapshot_key)
    if final.directory.exists():
        remove(final)
    try:
        work.directory.rename(final.directory)
    except OSError:
        if not final.meta.is_file():  # not another run's snapshot, published meanwhile: a real failure
            raise
    prune()
    return final
