"""The host target (--target host): run steps on this machine's own kernel,
for a real Linux machine where the user is root."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import proc
from .errors import SetupError, VmTimeout
from .guest.console import ShellResult
from .results import notes


def check_host_ready() -> None:
    """Root and module loading available, or a clear error."""
    if os.geteuid() != 0:
        raise SetupError("--target host loads kernel modules and needs root: run it with sudo (or use --target vm)")
    if not Path("/proc/modules").exists():
        raise SetupError(f"this kernel ({platform.release()}) cannot load modules (no /proc/modules): use --target vm")
    proc.require_program("insmod", "kmod")


@dataclass
class HostTarget:
    """Runs steps locally; output is kept in the transcript like the VM's console."""

    transcript_path: Path
    transcript: notes.Transcript | None = None
    kind = "host"
    accelerator = "host"

    @property
    def kernel_release(self) -> str:
        return platform.release()

    def __enter__(self) -> HostTarget:
        self.transcript = notes.open_transcript(self.transcript_path)
        self.note(notes.boot_note(self.kernel_release, self.accelerator))
        return self

    def __exit__(self, *exc) -> None:
        if self.transcript is not None:
            self.transcript.close()
            self.transcript = None

    def note(self, text: str) -> None:
        assert self.transcript is not None
        self.transcript.note(text)

    def run(self, argv: Sequence[str], *, stage: str, timeout: float) -> ShellResult:
        """Run one step locally; on a timeout or Ctrl-C, kill it and its children, keep what it
        printed in the transcript, and unload the module so the host is left clean."""
        assert self.transcript is not None
        start = time.monotonic()
        try:
            result = proc.run_group(argv, timeout=timeout)
        except proc.GroupInterrupted as e:
            self.transcript.write(e.output.encode())
            for word in argv:
                if word.endswith(".ko") and Path(f"/sys/module/{Path(word).stem}").exists():
                    proc.run(["rmmod", Path(word).stem])
            self.note(f"lost why={'timeout' if e.timed_out else 'interrupted'}")
            if e.timed_out:
                raise VmTimeout(
                    f"{stage} did not finish within {timeout:.0f} s and was stopped (the module was unloaded); "
                    f"see {self.transcript_path}"
                ) from None
            raise KeyboardInterrupt from None
        self.transcript.write(result.stdout.encode())
        self.transcript.flush()
        return ShellResult(result.stdout, result.returncode, time.monotonic() - start)
