"""The host's side of the guest's virtio-serial ports: a unix socket per port, listened on before
QEMU starts (QEMU connects to each at start-up), read by one thread each into the current step's
channel. Bytes that arrive while no step is on are dropped."""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..channel import StepChannel
from ..errors import VmLost
from ..results.step_protocol import ERR_PORT, OUT_PORT, PORTS, PROTO_PORT

_CHUNK = 1 << 20


class PortListener:
    """The sockets of the ports in a private directory; `ports` goes into VmConfig."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="pfh-ports-"))  # mode 0700: only this user connects
        self._listeners: dict[str, socket.socket] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._channel: StepChannel | None = None
        self._connections: list[socket.socket] = []
        self._latest: dict[str, socket.socket] = {}  # each port's connection from the QEMU started last
        try:
            for name in PORTS:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.bind(str(self.directory / f"{name}.sock"))
                sock.listen(1)
                self._listeners[name] = sock
        except OSError:
            self.close()
            raise

    @property
    def ports(self) -> tuple[tuple[str, Path], ...]:
        return tuple((name, self.directory / f"{name}.sock") for name in PORTS)

    def accept(self, timeout: float, alive: Callable[[], bool]) -> None:
        """Take QEMU's connections (it makes them at start-up) and start reading them."""
        deadline = time.monotonic() + timeout
        for name, sock in self._listeners.items():
            sock.settimeout(0.2)
            while True:
                try:
                    conn, _ = sock.accept()
                    break
                except TimeoutError:
                    if not alive() or time.monotonic() > deadline:
                        raise VmLost(
                            f"QEMU did not connect to the socket of the virtio port {name}: it "
                            f"{'exited' if not alive() else 'did not start in time'}"
                        ) from None
            conn.settimeout(None)
            self._connections.append(conn)
            self._latest[name] = conn
            thread = threading.Thread(target=self._read, args=(name, conn), name=f"pfh-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def send(self, name: str, data: bytes) -> None:
        """Send `data` to the guest on port `name` (QEMU holds it until the guest reads the port)."""
        try:
            self._latest[name].sendall(data)
        except (KeyError, OSError) as error:
            raise VmLost(f"cannot write to the guest's port {name}: {error}") from None

    def attach(self, channel: StepChannel | None) -> None:
        """Send what arrives from now on to `channel` (None: drop it)."""
        with self._lock:
            self._channel = channel

    def _read(self, name: str, conn: socket.socket) -> None:
        while True:
            try:
                data = conn.recv(_CHUNK)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                channel = self._channel
            if channel is None:
                continue
            if name == PROTO_PORT:
                channel.proto(data)
            else:
                channel.output(1 if name == OUT_PORT else 2 if name == ERR_PORT else 0, data)

    def close(self) -> None:
        for sock in [*self._connections, *self._listeners.values()]:
            with contextlib.suppress(OSError):
                sock.close()
        shutil.rmtree(self.directory, ignore_errors=True)
