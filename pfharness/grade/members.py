"""One archive member as the unpacker sees it, whatever the archive (tar or zip), and the checks made on it
before anything is written: its name (no `..`, not absolute, not too deep, a name a file can have), its
kind (only files and directories are written; links are looked at; devices, FIFOs and the rest are not)
and the limits a tar bomb would exceed."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from .submission_ids import Sub

MiB = 1 << 20
NAME_MAX = 255  # bytes in one path component (Linux)
PATH_MAX = 1024  # bytes in a whole member name (a hand-in needs far fewer)

FILE, DIRECTORY, SYMLINK, HARDLINK, DEVICE, FIFO, OTHER = "file", "dir", "symlink", "hardlink", "device", "fifo", "?"


@dataclass(frozen=True)
class Limits:
    """What one hand-in may hold; over a limit, unpacking stops (members over the depth are only skipped).
    A course's hand-in is a few files of a few hundred KiB: these are far above that."""

    archive_bytes: int = 64 * MiB  # the tarball itself, compressed
    members: int = 500  # members of any kind, directories included
    member_bytes: int = 16 * MiB  # one member's size
    total_bytes: int = 64 * MiB  # all members' sizes together (links unpacked as copies included)
    depth: int = 16  # path components of one member's name


@dataclass(frozen=True)
class Member:
    """An archive member: its name as stored, kind, declared size, link target, and how to read its data
    (for a file; a tar read as a stream must be read before the next member is asked for)."""

    name: str
    kind: str  # FILE, DIRECTORY, SYMLINK, HARDLINK, DEVICE, FIFO or OTHER
    size: int
    link: str = ""  # a symlink's target (relative to its directory), a hard link's member name
    open: Callable[[], IO[bytes] | None] | None = None
    detail: str = ""  # why OTHER (e.g. "encrypted")


def parts(name: str, separators: str = "/") -> tuple[str, ...] | Sub:
    """A member name's components with "" and "." left out, or why it must not be written."""
    for sep in separators[1:]:
        name = name.replace(sep, separators[0])
    if "\x00" in name:
        return Sub.BAD_NAME
    if name.startswith("/") or re.match(r"[A-Za-z]:(?:/|$)", name):  # or a Windows drive (C:/...)
        return Sub.ABSOLUTE_PATH
    found = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in found:
        return Sub.PATH_TRAVERSAL
    return found


def check_name(found: tuple[str, ...], limits: Limits) -> Sub | None:
    """Why components that passed `parts` cannot be written here: too deep, or too long for a name."""
    if len(found) > limits.depth:
        return Sub.TOO_DEEP
    encoded = [p.encode("utf-8", "surrogateescape") for p in found]
    if any(len(p) > NAME_MAX for p in encoded) or sum(len(p) + 1 for p in encoded) > PATH_MAX:
        return Sub.BAD_NAME
    return None


def link_target(member: Member, found: tuple[str, ...]) -> tuple[str, ...] | None:
    """The archive path a link names (a symlink's target is relative to its own directory; a hard link's is
    an earlier member's name), or None when it lies outside the archive."""
    if member.kind == SYMLINK:
        if member.link.startswith("/"):
            return None
        joined = posixpath.normpath(posixpath.join("/".join(found[:-1]), member.link))
        if joined == ".." or joined.startswith("../"):
            return None
        target = parts(joined)
    else:
        target = parts(member.link)
    return target if isinstance(target, tuple) and target else None


def over_limit(member: Member, count: int, total: int, limits: Limits) -> tuple[Sub, str] | None:
    """The limit this member takes the archive over (count: members so far with it; total: bytes before
    it), with the figures, or None."""
    if count > limits.members:
        return Sub.TOO_MANY_MEMBERS, f"more than {limits.members}"
    if member.kind == FILE and member.size > limits.member_bytes:
        return Sub.MEMBER_TOO_LARGE, f"{member.name}: {member.size:,} bytes, limit {limits.member_bytes:,}"
    if member.kind == FILE and total + member.size > limits.total_bytes:
        return Sub.TOO_MUCH_DATA, f"over {limits.total_bytes:,} bytes at {member.name}"
    return None


KIND_FINDING = {DEVICE: Sub.DEVICE_FILE, FIFO: Sub.FIFO, OTHER: Sub.ODD_MEMBER}
