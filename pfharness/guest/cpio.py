"""A pure-Python cpio "newc" writer (the format the kernel unpacks as an initramfs).

Reproducible: uid/gid/mtime are 0 and inode numbers follow entry order, so the
same entries give byte-identical archives. Needs no root.
"""

from __future__ import annotations

import enum
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

__all__ = ["CpioEntry", "CpioError", "EntryKind", "newc_archive", "with_parent_dirs"]

_NEWC_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"


class CpioError(ValueError):
    """An entry that cannot go into a newc archive (a programming error, not a user's)."""


class EntryKind(enum.Enum):
    """Kinds of archive member the writer supports."""

    DIR = stat.S_IFDIR
    FILE = stat.S_IFREG
    SYMLINK = stat.S_IFLNK
    CHARDEV = stat.S_IFCHR


@dataclass(frozen=True)
class CpioEntry:
    """One member of a newc archive.

    ``path`` is relative to the archive root ("bin/sh", not "/bin/sh").
    ``data`` is the file content for FILE and the link target for SYMLINK.
    ``major``/``minor`` are the device numbers of a CHARDEV.
    """

    path: str
    kind: EntryKind
    perm: int = 0o755
    data: bytes = b""
    major: int = 0
    minor: int = 0

    @classmethod
    def directory(cls, path: str, perm: int = 0o755) -> CpioEntry:
        """A directory entry."""
        return cls(path, EntryKind.DIR, perm)

    @classmethod
    def file(cls, path: str, data: bytes, perm: int = 0o644) -> CpioEntry:
        """A regular file entry with the given content."""
        return cls(path, EntryKind.FILE, perm, data)

    @classmethod
    def symlink(cls, path: str, target: str) -> CpioEntry:
        """A symbolic link ``path -> target``."""
        return cls(path, EntryKind.SYMLINK, 0o777, target.encode())

    @classmethod
    def chardev(cls, path: str, major: int, minor: int, perm: int = 0o600) -> CpioEntry:
        """A character device node."""
        return cls(path, EntryKind.CHARDEV, perm, b"", major, minor)

    @property
    def mode(self) -> int:
        """Full st_mode (type bits + permission bits)."""
        return self.kind.value | (self.perm & 0o7777)


def _normalize(path: str) -> str:
    """Return ``path`` relative to the archive root, rejecting escapes."""
    pure = PurePosixPath(path.lstrip("/"))
    if not pure.parts or ".." in pure.parts:
        raise CpioError(f"invalid archive path {path!r}: must be a non-empty path without '..'")
    return pure.as_posix()


def _pad4(length: int) -> bytes:
    """Zero padding that brings ``length`` up to a multiple of 4."""
    return b"\0" * (-length % 4)


def _newc_member(name: str, ino: int, mode: int, nlink: int, data: bytes, *, rmajor: int = 0, rminor: int = 0) -> bytes:
    """Encode one newc header + name + data, each padded to 4 bytes."""
    name_b = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name_b), 0)
    header = _NEWC_MAGIC + b"".join(b"%08X" % f for f in fields)
    head = header + name_b
    return head + _pad4(len(head)) + data + _pad4(len(data))


def newc_archive(entries: list[CpioEntry]) -> bytes:
    """Serialize ``entries`` (in order) into an uncompressed newc archive.

    The output is reproducible: uid/gid/mtime are 0 and inode numbers are
    assigned 1, 2, 3... in entry order. Parent directories must come before
    their children (see :func:`with_parent_dirs`); duplicates are rejected.
    """
    seen: set[str] = set()
    out = bytearray()
    for ino, entry in enumerate(entries, start=1):
        name = _normalize(entry.path)
        if name in seen:
            raise CpioError(f"duplicate archive path {name!r}")
        seen.add(name)
        if entry.data and entry.kind in (EntryKind.DIR, EntryKind.CHARDEV):
            raise CpioError(f"{name!r}: only files and symlinks have data")
        nlink = 2 if entry.kind is EntryKind.DIR else 1
        out += _newc_member(name, ino, entry.mode, nlink, entry.data, rmajor=entry.major, rminor=entry.minor)
    out += _newc_member(_TRAILER, 0, 0, 1, b"")
    return bytes(out)


def with_parent_dirs(entries: Iterable[CpioEntry]) -> list[CpioEntry]:
    """Return ``entries`` with any missing parent directories inserted first."""
    result: list[CpioEntry] = []
    present: set[str] = set()
    for entry in entries:
        name = _normalize(entry.path)
        for parent in reversed(PurePosixPath(name).parents[:-1]):
            key = parent.as_posix()
            if key not in present:
                present.add(key)
                result.append(CpioEntry.directory(key))
        if entry.kind is EntryKind.DIR and name in present:
            continue
        present.add(name)
        result.append(entry)
    return result
