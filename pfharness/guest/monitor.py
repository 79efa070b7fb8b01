"""Save a guest's device state, and restore it, through QEMU's monitor with QEMU's own QMP library
(qemu.qmp). Loaded only where snapshots apply (the library and asyncio cost ~0.1 s of start-up).

Both sides turn on x-ignore-shared: the guest's RAM is a file both map, so the stream holds only the
devices' state. QEMU 7.2 takes that capability only through the monitor, hence `-incoming defer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from qemu.qmp import ConnectError, QMPClient, QMPError

from ..errors import VmLost

# The library logs every failed connection attempt (QEMU makes its socket only after it starts): the
# harness reports what matters itself, and nothing of the library's reaches the user's terminal.
logging.getLogger("qemu.qmp").addHandler(logging.NullHandler())
logging.getLogger("qemu.qmp").propagate = False

_POLL = 0.005  # seconds between looks at the migration's status (it ends ~10 ms after migrate-incoming)
# Migration's own cap (128 MiB/s) would slow the save for nothing: the stream only goes to a local file.
_BANDWIDTH = 1 << 40


_CAPS = [{"capability": "x-ignore-shared", "state": True}]


async def _connect(socket: Path, alive: Callable[[], bool]) -> QMPClient:
    """A client on QEMU's monitor (QEMU makes the socket at start: wait for it while QEMU runs)."""
    client = QMPClient("pfharness")
    while True:
        try:
            await client.connect(str(socket))
            return client
        except ConnectError:
            if not alive():
                raise VmLost("QEMU exited before its monitor answered") from None
            await asyncio.sleep(_POLL)


async def _until(client: QMPClient, query: str, done: str, what: str) -> None:
    """Ask `query` until its status is `done`; VmLost when it fails."""
    while True:
        answer = await client.execute(query)
        status = answer.get("status") if isinstance(answer, dict) else None
        if status == done:
            return
        if status in ("failed", "cancelled", "internal-error", "shutdown", "guest-panicked"):
            raise VmLost(f"QEMU could not {what} the guest's state ({query}: {status})")
        await asyncio.sleep(_POLL)


async def _save(socket: Path, state: Path) -> None:
    client = await _connect(socket, lambda: True)  # QEMU has run the guest to the snapshot point
    try:
        await client.execute("migrate-set-capabilities", {"capabilities": _CAPS})
        await client.execute("migrate-set-parameters", {"max-bandwidth": _BANDWIDTH})
        await client.execute("migrate", {"uri": f"exec:cat > {shlex.quote(str(state))}"})
        await _until(client, "query-migrate", "completed", "save")
    finally:
        await _disconnect(client)


async def _restore(socket: Path, state: Path, alive: Callable[[], bool]) -> None:
    client = await _connect(socket, alive)
    try:
        await client.execute("migrate-set-capabilities", {"capabilities": _CAPS})
        await client.execute("migrate-incoming", {"uri": f"exec:cat {shlex.quote(str(state))}"})
        await _until(client, "query-status", "running", "restore")
    finally:
        await _disconnect(client)


async def _disconnect(client: QMPClient) -> None:
    """Disconnect, also from a QEMU that is gone (the error that ended the talk is the one reported)."""
    with contextlib.suppress(QMPError, OSError, EOFError):
        await client.disconnect()


def _run(work: Coroutine[Any, Any, None], what: str, timeout: float) -> None:
    try:
        asyncio.run(asyncio.wait_for(work, timeout))
    except (QMPError, OSError, EOFError, asyncio.TimeoutError) as error:
        why = "no answer in time" if isinstance(error, asyncio.TimeoutError) else type(error).__name__
        words = "QEMU's own words are in the transcript"
        raise VmLost(f"QEMU could not {what} the guest's state ({why}; {words})") from None


def save_state(socket: Path, state: Path, timeout: float = 30.0) -> None:
    """Have the QEMU listening on the monitor `socket` write its guest's device state into `state`;
    the guest stays stopped. VmLost when it cannot within `timeout` seconds."""
    _run(_save(socket, state), "save", timeout)


def restore_state(socket: Path, state: Path, timeout: float, alive: Callable[[], bool]) -> None:
    """Have the QEMU started with `-incoming defer` and its monitor on `socket` load `state` and run
    the guest. VmLost when it cannot within `timeout` seconds, or QEMU exits (`alive()` false) first."""
    _run(_restore(socket, state, alive), "restore", timeout)
