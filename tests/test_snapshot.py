"""The snapshot cache (guest/snapshot.py) and the QEMU arguments of saving and restoring, without QEMU:
what the key depends on, how a damaged snapshot is told apart, and that only one run makes a snapshot."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from pfharness.guest import snapshot
from pfharness.guest.machine import VmConfig, kernel_cmdline, qemu_argv


@pytest.fixture
def cfg(tmp_path, monkeypatch) -> VmConfig:
    monkeypatch.setenv("PFHARNESS_CACHE", str(tmp_path / "cache"))
    kernel, initrd = tmp_path / "vmlinux", tmp_path / "initrd"
    kernel.write_bytes(b"k" * 100)
    initrd.write_bytes(b"i" * 100)
    ports = (("pfh.proto", tmp_path / "p1" / "proto.sock"),)
    return VmConfig(kernel=kernel, initrd=initrd, ports=ports, save_dir=tmp_path / "run1" / "guest", qemu_binary="true")


def test_saving_maps_the_ram_file_shared_and_restoring_privately(cfg, tmp_path):
    ram = tmp_path / "ram"
    saving = qemu_argv(replace(cfg, ram_file=ram, ram_shared=True, snapshot_point=True, qmp=tmp_path / "q"))
    assert f"memory-backend-file,id=pfhram,size=1024M,mem-path={ram},share=on" in saving
    assert saving[saving.index("-machine") + 1] == "q35,memory-backend=pfhram"
    assert "vmgenid,guid=auto" in saving and "-incoming" not in saving
    assert f"unix:{tmp_path / 'q'},server=on,wait=off" in saving
    assert "pfh.snap=1" in kernel_cmdline(replace(cfg, snapshot_point=True)).split()
    restoring = qemu_argv(replace(cfg, ram_file=ram, snapshot_point=True, qmp=tmp_path / "q", incoming=True))
    assert f"memory-backend-file,id=pfhram,size=1024M,mem-path={ram},share=off" in restoring
    assert restoring[restoring.index("-incoming") + 1] == "defer"
    plain = qemu_argv(cfg)
    assert not any("pfhram" in a or "vmgenid" in a or "pfh.snap" in a for a in plain)
    assert "-incoming" not in plain and "-qmp" not in plain


def test_the_key_ignores_per_run_paths_and_follows_everything_else(cfg, tmp_path):
    key = snapshot.key(cfg)
    other_run = replace(cfg, ports=(("pfh.proto", tmp_path / "p2" / "proto.sock"),), save_dir=tmp_path / "run2")
    assert snapshot.key(other_run) == key
    assert snapshot.key(replace(cfg, ram_file=tmp_path / "x", qmp=tmp_path / "q", incoming=True)) == key
    changed = [
        replace(cfg, memory_mib=2048),
        replace(cfg, smp=1),
        replace(cfg, accel="kvm"),
        replace(cfg, machine="pc"),
        replace(cfg, extra_append=("slub_debug=FZPU",)),
        replace(cfg, save_dir=None),
        replace(cfg, kernel=tmp_path / "initrd"),
    ]
    keys = {snapshot.key(c) for c in changed}
    assert key not in keys and len(keys) == len(changed)
    os.utime(cfg.initrd, ns=(1, 1))  # a rebuilt initramfs
    assert snapshot.key(cfg) != key


def _made(key: str) -> snapshot.Snapshot:
    with snapshot.making(key) as work:
        assert work is not None
        work.ram.write_bytes(b"\0" * 4096)
        work.state.write_bytes(b"QEVM" + bytes(range(256)) * 10)
        return snapshot.publish(work, key)


def test_a_published_snapshot_is_found_and_a_damaged_one_is_told(cfg):
    key = snapshot.key(cfg)
    assert snapshot.find(key) is None
    snap = _made(key)
    assert snapshot.find(key) == snap
    assert [p.name for p in snapshot.root().iterdir() if p.name.startswith(".")] == []  # no work left over
    data = bytearray(snap.state.read_bytes())
    data[100] ^= 0xFF
    snap.state.write_bytes(bytes(data))
    with pytest.raises(snapshot.SnapshotDamaged, match="altered"):
        snapshot.find(key)
    snap = _made(key)  # made again: replaces the damaged one
    with open(snap.ram, "r+b") as ram:
        ram.truncate(100)
    with pytest.raises(snapshot.SnapshotDamaged, match="RAM is cut short"):
        snapshot.find(key)
    snap.meta.write_text("{not json")
    with pytest.raises(snapshot.SnapshotDamaged, match="cannot be read"):
        snapshot.find(key)
    snapshot.remove(snap)
    assert not snap.directory.exists() and snapshot.find(key) is None


def test_only_one_run_makes_a_snapshot_at_a_time(cfg):
    key = snapshot.key(cfg)
    with snapshot.making(key) as first:
        assert first is not None
        with snapshot.making(key) as second:
            assert second is None  # the other run boots without making one
    with snapshot.making(key) as again:
        assert again is not None  # the lock went with the first
    assert not first.directory.exists()  # never published: removed


def test_old_snapshots_are_pruned(cfg):
    keys = [f"k{i}" for i in range(snapshot.KEEP + 2)]
    for i, key in enumerate(keys):
        snap = _made(key)
        os.utime(snap.meta, (1000 + i, 1000 + i))
    snapshot.prune()
    left = sorted(p.name for p in snapshot.root().iterdir() if p.is_dir())
    assert left == sorted(keys[2:])


def test_restore_sends_a_resume_line_init_reads():
    from pfharness.results import step_protocol as sp

    tag, seconds, entropy = sp.resume_line(1765130000, "ab" * 32).split()
    assert (tag, seconds, entropy) == (sp.SNAP_RESUME, "1765130000", "ab" * 32)
