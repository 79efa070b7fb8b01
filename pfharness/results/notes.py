"""The transcript file: what the console (or a host step) printed, and the harness's own notes
("##PFH-HOST## <name> key=value ..."); the one writer and the one reader, so that `parse` gives
back what `run` reported.

A note line starts with the byte 0x1e (ASCII record separator). Every 0x1e the console prints is
written as 0x1e 0x1f, so nothing the workload prints can ever form a note: `parse` trusts only
the harness's notes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from ..errors import SetupError

HOST_NOTE = "##PFH-HOST##"
NOTE_START = "\x1e"  # begins every note line; never left unescaped in console bytes
_CONSOLE_ESCAPE = (b"\x1e", b"\x1e\x1f")
NOTE_LINE = re.compile(r"^" + NOTE_START + re.escape(HOST_NOTE) + r" (\S+)(.*)$")


class Transcript:
    """An open transcript: console bytes go in escaped (write, as pexpect's logfile), notes as notes."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    def write(self, data: bytes) -> int:
        """Console bytes, exactly as they came, but never able to form a note line."""
        self._file.write(data.replace(*_CONSOLE_ESCAPE))
        return len(data)

    def flush(self) -> None:
        self._file.flush()

    def note(self, text: str) -> None:
        """One note line (never sent to the guest)."""
        line = " ".join(text.split())  # one line, whatever the values held
        self._file.write(f"\n{NOTE_START}{HOST_NOTE} {line}\n".encode())
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def console_text(text: str) -> str:
    """Undo the console escaping of a transcript's non-note text."""
    return text.replace("\x1e\x1f", "\x1e")


def open_transcript(path: Path) -> Transcript:
    """A transcript file, opened for appending; a clear error when it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return Transcript(open(path, "ab"))
    except OSError as exc:
        raise SetupError(
            f"cannot write the transcript {path} ({exc.strerror or exc}): "
            "pass --transcript or --out with a writable path"
        ) from exc


def is_note(line: str) -> bool:
    return line.startswith(NOTE_START + HOST_NOTE + " ")


def read_note(line: str) -> tuple[str, dict[str, str]] | None:
    """(name, {key: value}) of a note line, or None."""
    m = NOTE_LINE.match(line.rstrip())
    if not m:
        return None
    values = dict(kv.split("=", 1) for kv in m.group(2).split() if "=" in kv)
    return m.group(1), values


def encode_command(command: Sequence[str]) -> str:
    """The workload's argv as one transcript-safe word."""
    return base64.b64encode(json.dumps(list(command)).encode()).decode()


def decode_command(word: str) -> list[str]:
    """The argv encode_command() wrote; [] for anything else."""
    try:
        value = json.loads(base64.b64decode(word, validate=True))
    except (ValueError, binascii.Error):
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return []


def step_note(module: str, target: str, command: Sequence[str]) -> str:
    """The note that precedes a step's output in the transcript."""
    return f"step module={module} target={target} command={encode_command(command)}"


def timings_note(stage_seconds: dict[str, float]) -> str:
    return "timings " + " ".join(f"{k}={v:.3f}" for k, v in stage_seconds.items())


def boot_note(release: str, accelerator: str, **more: object) -> str:
    extra = "".join(f" {k}={v}" for k, v in more.items())
    return f"boot release={release} accel={accelerator}{extra}"
