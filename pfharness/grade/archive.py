"""Reading a hand-in as an archive without trusting it: what kind of file it is (by its bytes, not its name),
and its members one by one (members.Member) from a tar (gzip'd, bzip2'd, xz'd or plain) read as a
stream through a cap on the bytes decompressed, or from a zip. Nothing here writes a file."""

from __future__ import annotations

import bz2
import gzip
import lzma
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Generator
from pathlib import Path
from typing import BinaryIO

from .members import DEVICE, DIRECTORY, FIFO, FILE, HARDLINK, OTHER, SYMLINK, Member

GZIP, BZIP2, XZ, ZIP, TAR, EMPTY = "gzip", "bzip2", "xz", "zip", "tar", "empty"
MAGIC = (
    (b"\x1f\x8b", GZIP),
    (b"BZh", BZIP2),
    (b"\xfd7zXZ\x00", XZ),
    (b"PK\x03\x04", ZIP),
    (b"PK\x05\x06", ZIP),  # an empty zip
)
OTHER_MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"\x7fELF", "an ELF binary"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\x28\xb5\x2f\xfd", "zstd data"),
)
#: what reading a damaged compressed stream raises (besides tarfile's and zipfile's own errors); an OSError
#: with an errno is a real I/O error, the caller's to tell apart
READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError, RuntimeError, NotImplementedError)
LINK_MAX = 4096
ZIP_TAIL = (
    1 << 16
) + 22  # a zip's end record and its comment lie within this of its end  # bytes of a zip symlink's target read


class TooMuchData(Exception):
    """The decompressed stream went past its cap."""


class Capped:
    """A reader that raises TooMuchData past `cap` bytes, never holding more than `cap` + 1 of them."""

    def __init__(self, inner: BinaryIO, cap: int) -> None:
        self.inner, self.cap, self.pos = inner, cap, 0

    def read(self, n: int | None = -1) -> bytes:
        room = self.cap - self.pos
        data = self.inner.read(room + 1 if n is None or n < 0 else min(n, room + 1))
        self.pos += len(data)
        if self.pos > self.cap:
            raise TooMuchData(f"more than {self.cap:,} bytes decompressed")
        return data


def sniff(head: bytes) -> str:
    """The archive kind from a file's first bytes: GZIP, BZIP2, XZ, ZIP, EMPTY, else TAR (to be tried)."""
    if not head:
        return EMPTY
    return next((kind for magic, kind in MAGIC if head.startswith(magic)), TAR)


def describe(head: bytes) -> str:
    """What a file that is not an archive looks like, in a few words, from its first bytes."""
    for magic, what in OTHER_MAGIC:
        if head.startswith(magic):
            return what
    try:
        text = head.decode("utf-8")
        if text.isprintable() or all(ch.isprintable() or ch in "\t\r\n\f" for ch in text):
            return "text"
    except UnicodeDecodeError:
        pass
    return "binary data starting " + " ".join(f"{b:02x}" for b in head[:8])


def _decompressed(kind: str, raw: BinaryIO) -> BinaryIO:
    """The decompressed stream of `raw` (a plain tar's is raw itself)."""
    if kind == GZIP:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if kind == BZIP2:
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if kind == XZ:
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    return raw


def inner_head(path: Path, kind: str, n: int = 512) -> bytes:
    """The first `n` decompressed bytes of a compressed file (b"" when it cannot be decompressed)."""
    try:
        with path.open("rb") as raw, _decompressed(kind, raw) as stream:
            return stream.read(n)
    except READ_ERRORS:
        return b""


def _tar_kind(info: tarfile.TarInfo) -> str:
    for test, kind in (
        (info.isreg, FILE),
        (info.isdir, DIRECTORY),
        (info.issym, SYMLINK),
        (info.islnk, HARDLINK),
        (info.ischr, DEVICE),
        (info.isblk, DEVICE),
        (info.isfifo, FIFO),
    ):
        if test():
            return kind
    return OTHER


def tar_members(path: Path, kind: str, cap: int) -> Generator[Member, None, None]:
    """The members of a tar (kind: GZIP, BZIP2, XZ or TAR), read once in order; at most `cap` bytes are
    decompressed (TooMuchData past it). tarfile's errors pass through: the caller names them."""
    with (
        path.open("rb") as raw,
        _decompressed(kind, raw) as stream,
        tarfile.open(fileobj=Capped(stream, cap), mode="r|") as tar,  # type: ignore[call-overload]
    ):
        for info in tar:
            kind = _tar_kind(info)
            yield Member(
                info.name,
                kind,
                info.size,
                info.linkname,
                (lambda info=info: tar.extractfile(info)),  # type: ignore[misc]
                f"tar type {info.type.decode(errors='replace')!r}" if kind == OTHER else "",
            )


def _zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Member:
    name = info.filename.replace("\\", "/")  # zips made on Windows
    mode = info.external_attr >> 16 if info.create_system == 3 else 0
    if info.flag_bits & 0x1:
        return Member(name, OTHER, info.file_size, detail="encrypted")
    if stat.S_ISLNK(mode):
        if info.file_size > LINK_MAX:
            return Member(name, OTHER, info.file_size, detail="a symlink with a long target")
        return Member(name, SYMLINK, 0, archive.read(info).decode("utf-8", "surrogateescape"))
    for test, kind in ((stat.S_ISCHR, DEVICE), (stat.S_ISBLK, DEVICE), (stat.S_ISFIFO, FIFO)):
        if test(mode):
            return Member(name, kind, 0)
    if info.is_dir() or stat.S_ISDIR(mode):
        return Member(name, DIRECTORY, 0)
    if stat.S_ISSOCK(mode):
        return Member(name, OTHER, 0, detail="a socket")
    return Member(name, FILE, info.file_size, open=lambda: archive.open(info))


def zip_entries(path: Path) -> int | None:
    """The member count a zip's end record declares (read before zipfile parses the whole central
    directory), or None when there is no end record in its last 64 KiB."""
    with path.open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - ZIP_TAIL))
        tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    return int.from_bytes(tail[at + 10 : at + 12], "little") if at >= 0 and len(tail) >= at + 22 else None


def zip_members(path: Path) -> Generator[Member, None, None]:
    """The members of a zip, in its central directory's order (zipfile's errors pass through)."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            yield _zip_member(archive, info)
