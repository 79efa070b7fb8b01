"""Choose the accelerator: KVM only after a short probe shows a guest really
runs under it (here /dev/kvm opens but a nested KVM guest hangs), else TCG.
The probe's verdict is cached per QEMU binary, kernel image and host kernel."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable

from .. import assets, proc
from ..errors import SetupError, VmLost
from ..results import notes
from ..values import Accelerator
from .boot import BootArtifacts
from .console import Console
from .machine import Accel, VmConfig, qemu_argv

PROBE_SECONDS = 6.0  # a working KVM reaches the shell in about a second; TCG needs 2.2 s


def kvm_device_usable() -> bool:
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


def _verdict_path(artifacts: BootArtifacts, qemu: str):
    st = os.stat(qemu)
    key = f"{qemu}\0{st.st_size}\0{st.st_mtime_ns}\0{artifacts.kernel}\0{platform.release()}"
    return assets.cache_dir() / f"kvm-verdict-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def probe_kvm(artifacts: BootArtifacts, qemu: str, seconds: float = PROBE_SECONDS) -> tuple[bool, str]:
    """Boot the guest under KVM and wait for its shell; (works, what was seen)."""
    cfg = VmConfig(
        kernel=artifacts.kernel, initrd=artifacts.initrd, accel="kvm", smp=1, memory_mib=512, qemu_binary=qemu
    )
    log = assets.cache_dir() / "kvm-probe.log"
    log.unlink(missing_ok=True)
    with contextlib.closing(notes.open_transcript(log)) as transcript:
        child = proc.spawn_interactive(qemu_argv(cfg), logfile=transcript, timeout=seconds)
        start = time.monotonic()
        try:
            Console(child, transcript, log).wait_for(rb"PFH-READY", "the KVM probe", seconds)
            return True, f"guest reached its shell under KVM in {time.monotonic() - start:.1f} s"
        except VmLost as lost:  # VmTimeout too: either way KVM does not work here
            why = str(lost).splitlines()[0]
            return False, f"under KVM {why} (after {time.monotonic() - start:.1f} s; see {log})"
        finally:
            child.close(force=True)


def choose(
    requested: Accelerator, artifacts: BootArtifacts, qemu: str, tell: Callable[[str], None] = lambda line: None
) -> Accel:
    """The accelerator to use for `requested`; a KVM probe's verdict is told to `tell` (one line)."""
    if requested == Accelerator.tcg:
        return "tcg"
    if requested == Accelerator.kvm:
        if not kvm_device_usable():
            raise SetupError("--accel kvm: /dev/kvm is missing or not accessible; use --accel tcg (or auto)")
        return "kvm"
    if not kvm_device_usable():
        return "tcg"
    path = _verdict_path(artifacts, qemu)
    if path.is_file():
        try:
            return "kvm" if json.loads(path.read_text())["kvm_works"] else "tcg"
        except (ValueError, KeyError):
            pass
    works, why = probe_kvm(artifacts, qemu)
    path.write_text(json.dumps({"kvm_works": works, "why": why}) + "\n")
    tell(f"pfharness: KVM probe: {why}; using {'kvm' if works else 'tcg'} (cached in {path})")
    return "kvm" if works else "tcg"
