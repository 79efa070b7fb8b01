"""The transcript file: what the console (or a host step) printed, and the harness's own notes
("##PFH-HOST## <name> key=value ..."); the one writer and the one reader, so that `parse` gives
back what `run` reported.

A note line starts with the byte 0x1e (ASCII record separator). Every 0x1e the console prints is
written as 0x1e 0x1f, so nothing the workload prints can ever form a note: `parse` trusts only
the harness's notes.

A step's channels are kept as notes too, each carrying the step's token (from its `step` note):
  proto TOKEN <line>          one protocol line as run_step.sh wrote it (token checked and removed)
  out TOKEN FD <base64>       a chunk of the workload's output on stream FD (1 or 2), byte-exact
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from .. import mm_settings
from ..errors import SetupError
from ..mm_settings import MmSettings
from .step_protocol import TOKEN_PATTERN

HOST_NOTE = "##PFH-HOST##"
NOTE_START = "\x1e"  # begins every note line; never left unescaped in console bytes
_CONSOLE_ESCAPE = (b"\x1e", b"\x1e\x1f")
NOTE_LINE = re.compile(r"^" + NOTE_START + re.escape(HOST_NOTE) + r" (\S+)(.*)$")
_NOTE_HEAD = r"^" + NOTE_START + re.escape(HOST_NOTE)
PROTO_NOTE = re.compile(_NOTE_HEAD + rf" proto ({TOKEN_PATTERN}) (.*)$")
OUTPUT_NOTE = re.compile(_NOTE_HEAD + rf" out ({TOKEN_PATTERN}) ([12]) ([A-Za-z0-9+/=]*)$")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


class Transcript:
    """An open transcript: console bytes go in escaped (write, as pexpect's logfile), notes as notes."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._lock = threading.Lock()  # the console (pexpect) and the channel readers write here

    def write(self, data: bytes) -> int:
        """Console bytes, exactly as they came, but never able to form a note line."""
        with self._lock:
            self._file.write(data.replace(*_CONSOLE_ESCAPE))
        return len(data)

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def tell(self) -> int:
        with self._lock:
            return self._file.tell()

    def _line(self, line: str, *, flush: bool = True) -> None:
        with self._lock:
            self._file.write(f"\n{NOTE_START}{HOST_NOTE} {line}\n".encode())
            if flush:
                self._file.flush()

    def note(self, text: str) -> None:
        """One note line (never sent to the guest)."""
        self._line(" ".join(text.split()))  # one line, whatever the values held

    def proto(self, token: str, line: str) -> None:
        """One protocol line of the step with `token`, kept as it came (control characters as '?')."""
        self._line(f"proto {token} {_UNSAFE.sub('?', line)}")

    def output(self, token: str, fd: int, data: bytes) -> None:
        """A chunk of the workload's output (stream `fd`) of the step with `token`, byte-exact."""
        head = f"\n{NOTE_START}{HOST_NOTE} out {token} {fd} ".encode()
        with self._lock:
            self._file.write(b"".join((head, base64.b64encode(data), b"\n")))  # flushed at the step's end

    def close(self) -> None:
        with self._lock:
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


def read_proto(line: str) -> tuple[str, str] | None:
    """(token, protocol line) of a `proto` note, or None."""
    m = PROTO_NOTE.match(line.rstrip("\n"))
    return (m.group(1), m.group(2)) if m else None


def read_output(line: str) -> tuple[str, int, bytes] | None:
    """(token, fd, bytes) of an `out` note, or None (also when its base64 is broken)."""
    m = OUTPUT_NOTE.match(line.rstrip("\n"))
    if not m:
        return None
    try:
        data = base64.b64decode(m.group(3), validate=True)
    except (ValueError, binascii.Error):
        return None
    return m.group(1), int(m.group(2)), data


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


def step_note(module: str, target: str, command: Sequence[str], token: str) -> str:
    """The note that precedes a step's output in the transcript; its channels' notes carry `token`."""
    return f"step module={module} target={target} command={encode_command(command)} token={token}"


def saved_note(run_dir: str, records_file: dict | None, top: dict | None = None) -> str:
    """Where a step's run directory is, what its records file held and the top tables of its records (so
    `parse` gives back run's JSON)."""
    return (
        f"saved run_dir={encode_command([run_dir])} records_file={encode_command([json.dumps(records_file)])}"
        f" top={encode_command([json.dumps(top)])}"
    )


def _json_dict(word: str) -> dict | None:
    """The JSON object encode_command() wrote of json.dumps(); None for anything else."""
    decoded = decode_command(word)
    if len(decoded) != 1:
        return None
    try:
        value = json.loads(decoded[0])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def read_saved_note(values: dict[str, str]) -> tuple[str, dict | None, dict | None]:
    """(run_dir, records_file, top) of a `saved` note; ("", None, None) when it is not one saved_note() wrote
    (a note from before the top tables has no `top`)."""
    run_dir, summary = decode_command(values.get("run_dir", "")), decode_command(values.get("records_file", ""))
    if len(run_dir) != 1 or len(summary) != 1:
        return "", None, None
    try:
        json.loads(summary[0])
    except ValueError:
        return "", None, None
    return run_dir[0], _json_dict(values["records_file"]), _json_dict(values.get("top", ""))


def timings_note(stage_seconds: dict[str, float]) -> str:
    return "timings " + " ".join(f"{k}={v:.3f}" for k, v in stage_seconds.items())


def mm_fields(mm: MmSettings) -> dict[str, str]:
    """A boot note's words for the target's memory-management settings (``parse`` reads them back)."""
    return {"mm": ",".join(f"{k}:{v}" for k, v in mm.values) or "-", "mm_source": encode_command([mm.source])}


def read_mm(values: dict[str, str]) -> MmSettings | None:
    """The settings a boot note names; None for a transcript from before they were noted."""
    if "mm" not in values:
        return None
    pairs = dict(p.split(":", 1) for p in values["mm"].split(",") if ":" in p)
    source = decode_command(values.get("mm_source", ""))
    return mm_settings.from_fields(pairs, source[0] if len(source) == 1 else "?")


def boot_note(release: str, accelerator: str, **more: object) -> str:
    extra = "".join(f" {k}={v}" for k, v in more.items())
    return f"boot release={release} accel={accelerator}{extra}"
