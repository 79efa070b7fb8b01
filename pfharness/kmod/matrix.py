"""Which kernels a brought module builds on: built once for each usable kernel here, each outcome
cached by a digest of the source and the kernel release (``<cache>/foreign-builds/``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import assets
from ..kernel import Kernel
from . import foreign
from .spec import version_key


@dataclass(frozen=True)
class MatrixEntry:
    """One kernel's outcome."""

    release: str
    builds: bool
    cached: bool  # read from the cache, not built now


def _series(release: str) -> str:
    """The short name of a release for one line (6.1.0-57-amd64 -> 6.1, 7.2.13+deb14-amd64 -> 7.2, -rt kept)."""
    parts = release.split(".")
    short = ".".join(parts[:2]) if len(parts) >= 2 else release
    return short + ("-rt" if "-rt-" in release or release.endswith("-rt") else "")


def builds_on(
    source: foreign.ForeignSource, kernels: Sequence[Kernel], work_dir: Path, store: Path | None = None
) -> list[MatrixEntry]:
    """Build ``source`` for each kernel with headers (oldest first) unless its outcome is in ``store``
    (default ``<cache>/foreign-builds``)."""
    store = store or assets.cache_dir() / "foreign-builds"
    store.mkdir(parents=True, exist_ok=True)
    digest = source.digest()
    entries = []
    for kernel in sorted((k for k in kernels if k.headers is not None), key=lambda k: version_key(k.release)):
        record = store / f"{digest}-{kernel.release}.json"
        if record.is_file():
            entries.append(MatrixEntry(kernel.release, json.loads(record.read_text())["builds"], True))
            continue
        built = foreign.build_foreign(source, kernel, work_dir / kernel.release)
        if built.limit_note:
            entries.append(MatrixEntry(kernel.release, False, False))  # a limit is not the kernel's verdict
            continue
        record.write_text(json.dumps({"release": kernel.release, "builds": built.ok}) + "\n")
        entries.append(MatrixEntry(kernel.release, built.ok, False))
    return entries


def matrix_line(entries: Sequence[MatrixEntry]) -> str:
    """One line: the kernels here it builds on and those it does not."""
    good = [_series(e.release) for e in entries if e.builds]
    bad = [_series(e.release) for e in entries if not e.builds]
    if not good:
        return f"builds on none of the kernels here ({', '.join(bad) or 'none'})"
    return f"builds on {', '.join(good)}" + (f"; not on {', '.join(bad)}" if bad else "")
