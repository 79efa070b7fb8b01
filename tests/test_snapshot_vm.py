"""Guests restored from a snapshot (guest/snapshot.py, guest/restore.py), against real QEMU: the first
boot saves, later ones restore; nothing of one run reaches the next; runs restored at once both work;
each restored guest has the host's clock and entropy of its own; a damaged snapshot means a cold boot."""

from __future__ import annotations

import hashlib
import json
import threading
import time

import pytest

from pfharness import step
from pfharness.guest import restore, snapshot
from pfharness.guest.session import VmOptions, VmSession
from pfharness.results.model import TraceResult

pytestmark = [pytest.mark.vm]


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    """A private snapshot cache: these tests damage snapshots, others' runs must not meet them."""
    root = tmp_path_factory.mktemp("snapshots")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(snapshot, "root", lambda: root)
        yield root


def _session(default_kernel, tmp_path, name, notes):
    save = tmp_path / name / "guest"
    save.mkdir(parents=True)
    options = VmOptions(
        kernel=default_kernel, transcript=tmp_path / name / "transcript.log", accel="tcg", save_dir=save, snapshot=True
    )
    return VmSession(options, on_note=notes.append)


def _sh(vm, script: str) -> str:
    result = vm.run(["sh", "-c", script], stage="test", timeout=120)
    assert result.status == 0, result.output
    return "".join(line for line in result.output.splitlines(keepends=True) if not line.startswith("##PFH## "))


@pytest.fixture(scope="module")
def first(snapshots, default_kernel, tmp_path_factory):
    """The first boot: it makes the snapshot (and is itself restored from it)."""
    notes: list[str] = []
    with _session(default_kernel, tmp_path_factory.mktemp("first"), "first", notes) as vm:
        assert vm.snapshot_seconds is not None, notes
        yield vm


def test_a_later_run_sees_nothing_of_an_earlier_one(first, default_kernel, built_modules, tmp_path):
    ko = built_modules.modules["B"]
    _sh(first, f"echo kept >/root/pfh-mark && insmod {ko} tpid=1 && echo pfh-kmsg-mark >/dev/kmsg")
    _sh(first, "setsid sleep 1000 </dev/null >/dev/null 2>&1 &")
    assert "pf_probe_B" in _sh(first, "cat /proc/modules")
    notes: list[str] = []
    with _session(default_kernel, tmp_path, "later", notes) as vm:
        assert vm.snapshot_seconds is None and notes == []
        assert "restored=1" in vm.transcript_path.read_text(errors="replace")
        seen = _sh(vm, "ls /root; cat /proc/modules; dmesg | grep -c pfh-kmsg-mark; pgrep -x sleep || echo none")
    assert "pfh-mark" not in seen and "pf_probe_B" not in seen
    assert seen.splitlines()[-2:] == ["0", "none"], seen


def test_two_runs_restored_at_once_both_get_their_own_results(first, default_kernel, built_modules, tmp_path):
    results: dict[str, object] = {}

    def one(name: str) -> None:
        try:
            with _session(default_kernel, tmp_path, name, []) as vm:
                request = step.TraceRequest("B", built_modules.modules["B"], ("echo", f"token-{name}"))
                results[name] = step.trace(vm, request)
        except Exception as error:
            results[name] = error

    threads = [threading.Thread(target=one, args=(name,)) for name in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    for name in ("left", "right"):
        result = results[name]
        assert isinstance(result, TraceResult), result
        assert result.workload_status == 0 and result.workload_output.strip() == f"token-{name}"
        assert result.report.recorded > 0 and not result.splats


def test_a_restored_guest_has_the_hosts_clock_and_fresh_random_bytes(first, default_kernel, tmp_path):
    randoms = []
    for name in ("one", "two"):
        with _session(default_kernel, tmp_path, name, []) as vm:
            before = time.time()
            guest = float(_sh(vm, "date +%s.%N").strip())
            after = time.time()
            assert before - 1 <= guest <= after + 1, (before, guest, after)
            randoms.append(_sh(vm, "head -c 32 /dev/urandom | od -An -tx1"))
    assert randoms[0] != randoms[1]


def test_a_damaged_snapshot_is_replaced_by_a_cold_boot_with_a_note(first, snapshots, default_kernel, tmp_path):
    [snap] = [snapshot.Snapshot(d) for d in snapshots.iterdir() if d.is_dir() and not d.name.startswith(".")]
    data = bytearray(snap.state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snap.state.write_bytes(bytes(data))
    notes: list[str] = []
    with _session(default_kernel, tmp_path, "after-damage", notes) as vm:
        assert _sh(vm, "echo alive").strip() == "alive"
    unusable = [n for n in notes if "unusable" in n]
    assert len(unusable) == 1 and "\n" not in unusable[0] and "altered" in unusable[0], notes


def test_a_snapshot_qemu_cannot_load_is_replaced_by_a_cold_boot(snapshots, default_kernel, tmp_path):
    """Its files agree with meta.json, but the state is not QEMU's: the restore fails at once, not at a timeout."""
    with _session(default_kernel, tmp_path, "maker", []):  # makes the snapshot when there is none
        pass
    [snap] = [snapshot.Snapshot(d) for d in snapshots.iterdir() if d.is_dir() and not d.name.startswith(".")]
    snap.state.write_bytes(b"not a migration stream\n" * 100)
    meta = json.loads(snap.meta.read_text())
    meta.update(state_bytes=snap.state.stat().st_size, state_sha256=hashlib.sha256(snap.state.read_bytes()).hexdigest())
    snap.meta.write_text(json.dumps(meta))
    notes: list[str] = []
    start = time.monotonic()
    with _session(default_kernel, tmp_path, "after-bad-state", notes) as vm:
        assert _sh(vm, "echo alive").strip() == "alive"
        assert vm.snapshot_seconds is None
    assert time.monotonic() - start < restore.RESTORE_TIMEOUT + 60
    unusable = [n for n in notes if "unusable" in n]
    assert len(unusable) == 1 and "restore" in unusable[0], notes
    assert not snap.directory.exists()
