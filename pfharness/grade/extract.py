"""Writing checked members into one student's directory and nowhere else: regular files and directories
only, each created component by component under `dest` (never through a link: none is ever made, and
every path is checked to stay under dest before and after), files with O_NOFOLLOW and plain modes.
A full disk is the harness's failure (PfhError), not the student's."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from ..errors import PfhError
from .submission_ids import Sub

T = TypeVar("T")
CHUNK = 1 << 16
HARNESS_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}


class Refused(Exception):
    """A member that cannot be written where it asks to be: `sub` says why."""

    def __init__(self, sub: Sub, why: str) -> None:
        super().__init__(why)
        self.sub = sub


@dataclass
class Writer:
    """Writes into `dest` (made if missing; it must be empty: the caller gives a fresh one per student)."""

    dest: Path
    files: dict[tuple[str, ...], Path] = field(default_factory=dict)  # archive path -> file written
    dirs: set[tuple[str, ...]] = field(default_factory=set)
    written: int = 0  # bytes

    def __post_init__(self) -> None:
        try:
            self.dest.mkdir(parents=True, exist_ok=True)
            if any(self.dest.iterdir()):
                raise PfhError(f"{self.dest} is not empty: give each submission a fresh directory")
        except OSError as exc:
            raise PfhError(f"cannot unpack into {self.dest} ({exc.strerror or exc}): check the --out path") from exc
        self.root = os.path.realpath(self.dest)

    def _inside(self, path: str) -> None:
        if os.path.commonpath([self.root, os.path.realpath(path)]) != self.root:
            raise Refused(Sub.BAD_NAME, "would be written outside the submission's directory")

    def _parent(self, rel: tuple[str, ...]) -> str:
        """The directory `rel` goes in, made component by component (each checked a real directory)."""
        path = self.root
        for n, part in enumerate(rel[:-1], start=1):
            path = os.path.join(path, part)
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                _harness(path, os.mkdir, path, 0o755)
                self.dirs.add(rel[:n])
                continue
            if not stat.S_ISDIR(mode):
                raise Refused(Sub.DUPLICATE_MEMBER, f"{'/'.join(rel[:n])} is a file, not a directory")
        self._inside(path)
        return path

    def directory(self, rel: tuple[str, ...]) -> None:
        if rel in self.files:
            raise Refused(Sub.DUPLICATE_MEMBER, "a file of that name came before")
        path = os.path.join(self._parent(rel), rel[-1])
        if rel not in self.dirs:
            _harness(path, os.mkdir, path, 0o755)
            self.dirs.add(rel)

    def file(self, rel: tuple[str, ...], data: IO[bytes] | None, size: int) -> bool:
        """Write `size` bytes of `data` at `rel`; True when it replaced an earlier member of that name."""
        if rel in self.dirs:
            raise Refused(Sub.DUPLICATE_MEMBER, "a directory of that name came before")
        path = os.path.join(self._parent(rel), rel[-1])
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = _harness(path, os.open, path, flags, 0o644)
        with os.fdopen(fd, "wb") as out:
            self.written += _harness(path, _copy, data, out, size)
        replaced = rel in self.files
        self.files[rel] = Path(path)
        return replaced

    def copy(self, rel: tuple[str, ...], source: tuple[str, ...]) -> None:
        """A link inside the archive, written as a copy of the file it names."""
        with self.files[source].open("rb") as data:
            self.file(rel, data, self.files[source].stat().st_size)


def _copy(data: IO[bytes] | None, out: IO[bytes], size: int) -> int:
    """Copy at most `size` bytes (a member never gives more than it declared)."""
    done = 0
    while data is not None and done < size:
        chunk = data.read(min(CHUNK, size - done))
        if not chunk:
            break
        out.write(chunk)
        done += len(chunk)
    return done


def _harness(path: str, call: Callable[..., T], *args: Any) -> T:
    """Run an os call for `path`: a full or broken disk is PfhError (the harness's), other file-system errors
    refuse the member; an error without errno (a decompressor's) passes through for the caller to name."""
    try:
        return call(*args)
    except OSError as exc:
        if exc.errno is None:
            raise
        if exc.errno in HARNESS_ERRNOS:
            raise PfhError(f"cannot write {path} ({exc.strerror}): free disk space and grade again") from exc
        raise Refused(Sub.BAD_NAME, exc.strerror or str(exc)) from exc
