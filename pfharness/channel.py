"""A step's two channels as the harness receives them: the protocol (lines checked against the
step's random token, kept in the transcript) and the workload's output (shown live, kept, never
parsed). The same for the VM's virtio ports (guest/ports.py) and --target host's pipes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from .results import notes, protocol
from .results import step_protocol as sp

#: Where the workload's output goes as it arrives: (stream 1 or 2, bytes).
Sink = Callable[[int, bytes], None]


def discard(fd: int, data: bytes) -> None:
    """A sink that shows nothing."""


class _OutputStream:
    """One output stream of one step: everything but the end marker goes on at once; at most the
    marker's length minus one byte is held back (it might be the marker's start)."""

    def __init__(self, marker: bytes, emit: Callable[[bytes], None]) -> None:
        self._marker = marker
        self._emit = emit
        self._pending = b""
        self.ended = False

    def feed(self, data: bytes) -> None:
        buf = self._pending + data if self._pending else data
        while (i := buf.find(self._marker)) >= 0:
            if i:
                self._emit(buf[:i])
            buf = buf[i + len(self._marker) :]
            self.ended = True
        keep = 0
        # Only a tail that starts with the marker's first byte can be its beginning.
        start = buf.find(self._marker[:1], max(0, len(buf) - len(self._marker) + 1))
        while start >= 0:
            if self._marker.startswith(buf[start:]):
                keep = len(buf) - start
                break
            start = buf.find(self._marker[:1], start + 1)
        if len(buf) > keep:
            self._emit(buf[: len(buf) - keep] if keep else buf)
        self._pending = buf[len(buf) - keep :] if keep else b""

    def close(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = b""


@dataclass(frozen=True)
class ChannelResult:
    """What a step's channels gave."""

    data: protocol.StepData
    complete: bool  # the StepEnd event came on the protocol channel
    outputs_ended: bool  # both output streams reached their end marker
    rejected: int  # protocol lines without the step's token (ignored)


class StepChannel:
    """Collects one step's channels; fed by reader threads, waited on by the step."""

    def __init__(self, token: str, transcript: notes.Transcript, sink: Sink = discard) -> None:
        self.token = token
        self._transcript = transcript
        self._sink = sink
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._proto_lines: list[str] = []
        self._output: list[bytes] = []
        self._partial = b""
        self._rejected = 0
        self._complete = False
        self._closed = False
        self._streams = {fd: _OutputStream(sp.end_marker(token), self._emitter(fd)) for fd in (1, 2)}

    def _emitter(self, fd: int) -> Callable[[bytes], None]:
        def emit(data: bytes) -> None:
            self._output.append(data)
            self._transcript.output(self.token, fd, data)
            self._sink(fd, data)

        return emit

    def proto(self, data: bytes) -> None:
        """Bytes from the protocol channel."""
        with self._changed:
            if self._closed:
                return
            lines = (self._partial + data).split(b"\n")
            self._partial = lines.pop()
            for raw in lines:
                line = sp.strip_token(raw.decode(errors="replace").rstrip("\r"), self.token)
                if line is None:
                    self._rejected += 1
                    continue
                self._transcript.proto(self.token, line)
                self._proto_lines.append(line)
                if line.startswith(sp.StepEnd.NAME) and isinstance(sp.parse_event(line), sp.StepEnd):
                    self._complete = True
            self._changed.notify_all()

    def output(self, fd: int, data: bytes) -> None:
        """Bytes from the workload's stream `fd` (1 stdout, 2 stderr)."""
        with self._changed:
            if self._closed:
                return
            self._streams[fd].feed(data)
            self._changed.notify_all()

    @property
    def untouched(self) -> bool:
        """Nothing has come on any channel yet (no protocol line, no output)."""
        with self._lock:
            return not self._proto_lines and not self._partial and not self._output

    def workload_pid(self) -> int | None:
        """The workload's pid as the step script reported it (its `pid` event), None before that. The
        workload leads a session of its own, whose id is this pid (vm/run_step.sh)."""
        with self._lock:
            started = protocol.parse_lines(list(self._proto_lines)).event(sp.Pid)
        pid = None if started is None else started.pid
        return pid if pid is not None and pid > 1 else None

    @property
    def complete(self) -> bool:
        with self._lock:
            return self._complete

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until `predicate` (called with the lock held) is true or `timeout` passes."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def wait_complete(self, timeout: float) -> bool:
        return self.wait(lambda: self._complete, timeout)

    def wait_outputs(self, timeout: float) -> bool:
        """Wait for both output streams' end markers (the output written before the step's end can trail it)."""
        return self.wait(lambda: all(s.ended for s in self._streams.values()), timeout)

    def finish(self, console: str = "") -> ChannelResult:
        """Stop collecting: what arrived, as StepData."""
        with self._changed:
            self._closed = True
            for stream in self._streams.values():
                stream.close()
            ended = all(s.ended for s in self._streams.values())
            output = b"".join(self._output).decode(errors="replace")
            data = protocol.StepData(tuple(self._proto_lines), output, console, self.token)
            self._transcript.flush()
            return ChannelResult(data, self._complete, ended, self._rejected)


@dataclass(frozen=True)
class StepRun:
    """How a target ran one step (what it sent is in its StepChannel)."""

    seconds: float  # from sending the step to its end
    status: int | None  # run_step.sh's exit status, when the target saw it
    console: str = ""  # the console's text meanwhile (VM)
