"""The host target (--target host): run steps on this machine's own kernel,
for a real Linux machine where the user is root."""

from __future__ import annotations

import contextlib
import os
import platform
import selectors
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import mm_settings, proc
from .channel import StepChannel, StepRun
from .errors import SetupError, VmTimeout
from .results import notes
from .results import step_protocol as sp

if TYPE_CHECKING:
    from .step import TraceRequest

_GRACE = 5.0  # seconds the output pipes may stay open after the step script exited (a daemon holds them)


def check_host_ready() -> None:
    """Root and module loading available, or a clear error."""
    if os.geteuid() != 0:
        raise SetupError("--target host loads kernel modules and needs root: run it with sudo (or use --target vm)")
    if not Path("/proc/modules").exists():
        raise SetupError(f"this kernel ({platform.release()}) cannot load modules (no /proc/modules): use --target vm")
    proc.require_program("insmod", "kmod")


@dataclass
class HostTarget:
    """Runs steps locally: the protocol on a socket the workload does not inherit, its output on two pipes."""

    transcript_path: Path
    _transcript: notes.Transcript | None = None
    kind = "host"
    accelerator = "host"

    @property
    def kernel_release(self) -> str:
        return platform.release()

    @property
    def mm(self) -> mm_settings.MmSettings:
        """This machine's memory-management settings, as they are (the host's are never changed)."""
        return mm_settings.read()

    @property
    def transcript(self) -> notes.Transcript:
        assert self._transcript is not None, "the host target is not open"
        return self._transcript

    def __enter__(self) -> HostTarget:
        self._transcript = notes.open_transcript(self.transcript_path)
        self.note(notes.boot_note(self.kernel_release, self.accelerator, **notes.mm_fields(self.mm)))
        return self

    def __exit__(self, *exc) -> None:
        if self._transcript is not None:
            self._transcript.close()
            self._transcript = None

    def note(self, text: str) -> None:
        self.transcript.note(text)

    def step(self, request: TraceRequest, *, channel: StepChannel, stage: str, timeout: float) -> StepRun:
        """Run one step locally; on a timeout or Ctrl-C, kill it and its children, keep what they
        sent in the transcript, and unload the module so the host is left clean."""
        start = time.monotonic()
        # The protocol on a socket, not a pipe: a pipe can be opened again through /proc/PID/fd by
        # a workload running as root; a socket cannot.
        proto, proto_child = socket.socketpair()
        proto_r, proto_w = os.dup(proto.fileno()), os.dup(proto_child.fileno())
        proto.close()
        proto_child.close()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            # The socket is run_step.sh's standard input (sp.HOST_PROTO_FD, 0); it moves it to its own
            # sp.SCRIPT_PROTO_FD and gives the workload /dev/null.
            argv = request.argv(channel.token, proto_fd=sp.HOST_PROTO_FD)
            child = proc.start_group(
                argv,
                stdin=proto_w,
                stdout=out_w,
                stderr=err_w,
                env=None if request.env is None else dict(request.env),
            )
        except BaseException:
            for fd in (proto_r, proto_w, out_r, out_w, err_r, err_w):
                os.close(fd)
            raise
        for fd in (proto_w, out_w, err_w):
            os.close(fd)
        readers = {proto_r: channel.proto, out_r: lambda d: channel.output(1, d), err_r: lambda d: channel.output(2, d)}
        try:
            self._pump(readers, child, start + timeout)
        except (TimeoutError, KeyboardInterrupt) as e:
            workload = channel.workload_pid()
            proc.kill_group(child)
            # With a module the workload is in the step script's session (run_step.sh), else in its own.
            proc.kill_session(child.pid)
            if workload is not None:
                proc.kill_session(workload)
            if request.ko is not None:
                name = Path(request.ko).stem
                if Path(f"/sys/module/{name}").exists():
                    proc.run(["rmmod", name])
            self.note(f"lost why={'timeout' if isinstance(e, TimeoutError) else 'interrupted'}")
            if isinstance(e, TimeoutError):
                raise VmTimeout(
                    f"{stage} did not finish within {timeout:.0f} s and was stopped (the module was unloaded); "
                    f"see {self.transcript_path}"
                ) from None
            raise KeyboardInterrupt from None
        finally:
            for fd in readers:
                with contextlib.suppress(OSError):
                    os.close(fd)
        return StepRun(time.monotonic() - start, child.wait())

    @staticmethod
    def _pump(readers, child, deadline: float) -> None:
        """Read the pipes until all are closed; once the step script exited, give stragglers _GRACE s."""
        with selectors.DefaultSelector() as selector:
            for fd, feed in readers.items():
                selector.register(fd, selectors.EVENT_READ, feed)
            exited_at: float | None = None
            while selector.get_map():
                now = time.monotonic()
                if now > deadline:
                    raise TimeoutError
                if exited_at is None and child.poll() is not None:
                    exited_at = now
                if exited_at is not None and now - exited_at > _GRACE:
                    return
                for key, _ in selector.select(timeout=0.2):
                    data = os.read(key.fd, 1 << 20)
                    if data:
                        key.data(data)
                    else:
                        selector.unregister(key.fd)
