"""The harness's own notes in a transcript ("##PFH-HOST## <name> key=value ..."): the one writer
and the one reader, so that `parse` gives back what `run` reported."""

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
_NOTE_LINE = re.compile(r"^" + re.escape(HOST_NOTE) + r" (\S+)(.*)$")


def open_transcript(path: Path) -> BinaryIO:
    """A transcript file, opened for appending; a clear error when it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "ab")
    except OSError as exc:
        raise SetupError(
            f"cannot write the transcript {path} ({exc.strerror or exc}): "
            "pass --transcript or --out with a writable path"
        ) from exc


def write_note(transcript: BinaryIO, text: str) -> None:
    """Write one note line into a transcript (never sent to the guest)."""
    transcript.write(f"\n{HOST_NOTE} {text}\n".encode())
    transcript.flush()


def is_note(line: str) -> bool:
    return line.startswith(HOST_NOTE + " ")


def read_note(line: str) -> tuple[str, dict[str, str]] | None:
    """(name, {key: value}) of a note line, or None."""
    m = _NOTE_LINE.match(line.strip())
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
