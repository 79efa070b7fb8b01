"""Drive a shell on a console (the VM's serial port) with pexpect.

Every byte read is kept in the transcript file. Commands travel base64-encoded,
so arguments with quotes, newlines or non-ASCII bytes reach the guest exactly,
and each command's end is a marker with its exit status.
"""

from __future__ import annotations

import base64
import contextlib
import re
import secrets
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pexpect

from ..errors import VmLost, VmTimeout
from ..results import notes, splat

# A panic as the kernel prints it (with its timestamp), so that a workload printing the words does not count.
PANIC_RE = re.compile(rb"\[ *\d+\.\d+\] Kernel panic - not syncing[^\r\n]*|PFH-INIT-ERROR[^\r\n]*")
_WINDOW = 8192  # expect() searches only the newest bytes: long outputs stay linear
_KERNEL_LINE = re.compile(r"^\[ *\d+\.\d+\] ")  # a kernel line on the console: its printk timestamp
# Commands made of these characters are typed as they are; anything else goes base64-encoded.
_TYPABLE = re.compile(r"[\x20-\x7e\n]{1,3000}")
_CHUNK = 1536  # base64 characters per console line (the tty line limit is 4095)


@dataclass(frozen=True)
class ShellResult:
    """One command's output as the console showed it, and its exit status."""

    output: str
    status: int
    seconds: float


class Console:
    """A pexpect child whose console runs a POSIX shell."""

    def __init__(self, child: pexpect.spawn, transcript: notes.Transcript, transcript_path: Path) -> None:
        self.child = child
        self.transcript = transcript
        self.transcript_path = transcript_path
        self.lost: str | None = None  # why the VM is gone, once it is

    def note(self, text: str) -> None:
        """Write a harness note line into the transcript (not sent to the guest)."""
        self.transcript.note(text)

    def _tail(self, n: int = 8) -> str:
        try:
            data = notes.console_text(self.transcript_path.read_bytes()[-4000:].decode(errors="replace"))
        except OSError:
            return ""
        lines = [ln for ln in data.splitlines() if ln.strip() and not notes.is_note(ln)]
        return "\n".join("    " + ln for ln in lines[-n:])

    def _first_splat(self) -> str:
        """The first splat line among the console's last kernel lines (what took the VM down), or ""."""
        try:
            data = notes.console_text(self.transcript_path.read_bytes()[-64000:].decode(errors="replace"))
        except OSError:
            return ""
        kernel = [ln for ln in data.splitlines() if _KERNEL_LINE.match(ln)][-100:]
        found = splat.scan(kernel)
        return _KERNEL_LINE.sub("", found[0]).strip() if found else ""

    def _give_up(self, error: VmLost) -> VmLost:
        """The VM is lost: kill QEMU (if it still runs), note why in the transcript, remember it."""
        self.lost = str(error).splitlines()[0]
        self.note(f"lost why={'timeout' if isinstance(error, VmTimeout) else 'lost'}")
        with contextlib.suppress(pexpect.ExceptionPexpect, OSError):
            self.child.terminate(force=True)
        return error

    def wait_for(
        self,
        pattern: bytes,
        stage: str,
        timeout: float,
        *,
        retry: bool = False,
        stop: Callable[[], bool] | None = None,
    ) -> bytes | None:
        """Wait for `pattern`; raise VmLost when QEMU exits, VmTimeout when it does not come.

        Either way QEMU is killed (a VM that stopped answering is not asked again), except after
        a timeout with `retry`, when the caller will ask once more. With `stop`, return None as
        soon as stop() is true (checked every 0.1 s). A panic's text is not taken on its word
        (user space can print it too): only QEMU's exit that follows a real one ends the VM.
        """
        if self.lost is not None:
            raise VmLost(f"the VM is no longer running ({self.lost}); the whole console is in {self.transcript_path}")
        deadline = time.monotonic() + timeout
        compiled = re.compile(pattern, re.IGNORECASE)
        panic: str | None = None
        while True:
            if stop is not None and stop():
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                break
            slice_ = min(left, 0.1) if stop is not None else left
            index = self.child.expect(
                [compiled, PANIC_RE, pexpect.EOF, pexpect.TIMEOUT], timeout=slice_, searchwindowsize=_WINDOW
            )
            if index == 0:
                return self.child.before + self.child.after
            if index == 1:
                panic = self.child.after.decode(errors="replace").strip()
                with contextlib.suppress(pexpect.TIMEOUT):  # a real panic ends QEMU at once (panic=-1)
                    self.child.expect([pexpect.EOF], timeout=5)
                    index = 2
                if index == 1:
                    continue  # QEMU still runs: the text was not a panic of this kernel
            if index == 2:
                why = f"was lost during {stage}: {panic}" if panic else f"exited during {stage} without finishing it"
                if first := self._first_splat():
                    why += f" (the kernel's report began: {first})"
                raise self._give_up(
                    VmLost(f"the VM {why}:\n{self._tail(12)}\nthe whole console is in {self.transcript_path}")
                )
        timed_out = VmTimeout(
            f"the VM did not finish {stage} within {timeout:.0f} s and was killed"
            f"{' (raise --timeout if the workload needs longer)' if stage.startswith('the run') else ''}; "
            f"last lines:\n{self._tail()}\n"
            f"the whole console is in {self.transcript_path}"
        )
        raise timed_out if retry else self._give_up(timed_out)

    def send_line(self, line: str) -> None:
        self.child.send(line.encode() + b"\n")

    def sync(self, stage: str, timeout: float) -> None:
        """Round trip: the shell has read everything sent so far."""
        token = secrets.token_hex(8)
        self.send_line(f"printf '##PFH## %s token=%s\\n' ack {token}")
        self.wait_for(rb"##PFH## ack token=%s\r*\n" % token.encode(), stage, timeout)

    def start_shell(self, stage: str, timeout: float) -> None:
        """Wait until the shell (quiet: no echo, no prompt, set up by /init) answers.

        Input that arrives while the shell is still opening the terminal is
        lost, so the first line is repeated until the shell answers it.
        """
        deadline = time.monotonic() + timeout
        while True:
            token = secrets.token_hex(8)
            # /init turned echo off and the shell's start-up file emptied PS1/PS2: only a builtin here.
            self.send_line(f"printf '##PFH## %s token=%s\\n' ack {token}")
            try:
                self.wait_for(
                    rb"##PFH## ack token=%s\r*\n" % token.encode(),
                    stage,
                    timeout=2.0,
                    retry=time.monotonic() + 2.0 < deadline,
                )
                return
            except VmTimeout:
                if self.lost is not None:
                    raise

    def send_command(self, argv: Sequence[str], *, stage: str, redirect: str = "") -> str:
        """Type `argv` (standard input /dev/null, then `redirect`) followed by an end marker with a
        random token and the exit status; return the token (for wait_done)."""
        command = shlex.join(argv)
        if _TYPABLE.fullmatch(command):
            # Plain text: the shell reads it as typed (quoted newlines continue the line).
            line = f"{command} </dev/null{redirect}"
        else:
            # Control characters or other bytes the terminal would interpret: send base64.
            # The files have private names made by mktemp (never a fixed name a link could be planted at).
            encoded = base64.b64encode((command + "\n").encode("utf-8", "surrogateescape")).decode()
            self.send_line("pfh_b64=$(mktemp) && pfh_sh=$(mktemp)")
            for i in range(0, len(encoded), _CHUNK):
                self.send_line(f'printf %s {encoded[i : i + _CHUNK]} >>"$pfh_b64"')
                self.sync(stage, timeout=30)
            line = (
                f'base64 -d "$pfh_b64" >"$pfh_sh" && rm -f "$pfh_b64" && sh "$pfh_sh" </dev/null{redirect}; '
                'pfh_st=$?; rm -f "$pfh_sh"; (exit $pfh_st)'
            )
        # A random token: nothing that ran before can print this command's end marker in advance.
        token = secrets.token_hex(8)
        self.send_line(f"{line}; printf '##PFH## %s token=%s status=%d\\n' done {token} $?")
        return token

    def wait_done(
        self, token: str, stage: str, timeout: float, *, stop: Callable[[], bool] | None = None
    ) -> tuple[bytes, int] | None:
        """The console's text up to the command's end marker and its exit status (None when stop())."""
        pattern = rb"##PFH## done token=%s status=(\d+)\r*\n" % token.encode()
        data = self.wait_for(pattern, stage, timeout, stop=stop)
        if data is None:
            return None
        return data, int(self.child.match.group(1))

    def run(self, argv: Sequence[str], *, stage: str, timeout: float) -> ShellResult:
        """Run `argv` in the console's shell (standard input /dev/null); return its output and exit status."""
        start = time.monotonic()
        token = self.send_command(argv, stage=stage)
        done = self.wait_done(token, stage, timeout)
        assert done is not None
        data, status = done
        output = re.sub(r"\r+\n", "\n", data.decode(errors="replace"))
        return ShellResult(output, status, time.monotonic() - start)
