"""Extract the uncompressed ELF vmlinux from an x86 bzImage for PVH boot.

QEMU can boot an ELF kernel carrying a Xen PVH entry note directly (``-kernel
vmlinux``), skipping the real-mode setup and the in-guest decompressor, which
is slow under TCG. Debian's ``/boot/vmlinuz-*`` is a bzImage whose payload is
the (xz-compressed) vmlinux ELF; this module pulls it out and checks it.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import zstandard

from ..errors import SetupError

__all__ = [
    "ExtractionUnsupported",
    "KernelImageError",
    "cached_vmlinux",
    "extract_vmlinux",
    "has_pvh_note",
]

_SETUP_SECTS = 0x1F1
_HDR_MAGIC = 0x202  # "HdrS"
_PAYLOAD_OFFSET = 0x248
_PAYLOAD_LENGTH = 0x24C
_XEN_ELFNOTE_PHYS32_ENTRY = 18
_PT_NOTE = 4


class KernelImageError(SetupError):
    """The file is not a usable bzImage (corrupt, truncated, wrong type)."""


class ExtractionUnsupported(KernelImageError):
    """Extraction is not possible here; boot the bzImage itself instead."""


def _read_header(image: bytes, path: Path) -> tuple[int, int]:
    """Return (absolute payload offset, payload length) from the header."""
    if len(image) < 0x250 or image[_HDR_MAGIC : _HDR_MAGIC + 4] != b"HdrS":
        raise KernelImageError(f"{path} is not an x86 bzImage (no 'HdrS' magic at 0x202)")
    setup_sects = image[_SETUP_SECTS] or 4
    offset, length = struct.unpack_from("<II", image, _PAYLOAD_OFFSET)
    start = (setup_sects + 1) * 512 + offset
    if length == 0 or start + length > len(image):
        raise KernelImageError(
            f"{path}: payload {start:#x}+{length:#x} lies outside the file (boot protocol < 2.08 or truncated image)"
        )
    return start, length


def _stream(decomp: object, data: bytes) -> bytes:
    """Feed ``data`` to a stdlib decompressor object, ignoring trailing data."""
    out = decomp.decompress(data)  # type: ignore[attr-defined]
    if not getattr(decomp, "eof", True):
        raise KernelImageError("compressed payload is truncated")
    return out


class _ZstdOneShot:
    """zstd with the stdlib decompressors' interface (decompress(), eof), from the zstandard package."""

    eof = True

    def decompress(self, data: bytes) -> bytes:
        try:
            return zstandard.ZstdDecompressor().stream_reader(data).read()
        except zstandard.ZstdError as exc:
            raise OSError(str(exc)) from exc


_DECOMPRESSORS: list[tuple[bytes, str, Callable[[], object] | None]] = [
    (b"\xfd7zXZ\x00", "xz", lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ)),
    (b"\x1f\x8b", "gzip", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)),
    (b"BZh", "bzip2", bz2.BZ2Decompressor),
    (b"\x5d\x00\x00", "lzma", lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE)),
    (b"\x28\xb5\x2f\xfd", "zstd", _ZstdOneShot),
    (b"\x02\x21\x4c\x18", "lz4", None),
    (b"\x89LZO", "lzo", None),
]


def _decompress(payload: bytes, path: Path) -> bytes:
    """Decompress a bzImage payload, detecting the format by magic bytes."""
    for magic, name, factory in _DECOMPRESSORS:
        if payload.startswith(magic):
            if factory is None:
                raise ExtractionUnsupported(
                    f"{path}: payload is {name}-compressed, which the Python "
                    "stdlib cannot decompress; boot the bzImage instead"
                )
            try:
                return _stream(factory(), payload)
            except (lzma.LZMAError, zlib.error, OSError, EOFError) as exc:
                raise KernelImageError(f"{path}: corrupt {name} payload: {exc}") from exc
    raise ExtractionUnsupported(
        f"{path}: unknown payload compression (magic {payload[:6].hex()}); boot the bzImage instead"
    )


def _iter_notes(blob: bytes) -> Iterator[tuple[bytes, int, bytes]]:
    """Yield (name, type, desc) for each ELF note in a note segment."""
    pos = 0
    while pos + 12 <= len(blob):
        namesz, descsz, ntype = struct.unpack_from("<III", blob, pos)
        pos += 12
        name = blob[pos : pos + namesz].rstrip(b"\0")
        pos += (namesz + 3) & ~3
        desc = blob[pos : pos + descsz]
        pos += (descsz + 3) & ~3
        yield name, ntype, desc


def has_pvh_note(elf: bytes) -> bool:
    """True if ``elf`` (ELF64 LE) has a Xen PHYS32_ENTRY (PVH) note."""
    if not elf.startswith(b"\x7fELF\x02\x01"):
        return False
    (phoff,) = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        base = phoff + i * phentsize
        (p_type,) = struct.unpack_from("<I", elf, base)
        if p_type != _PT_NOTE:
            continue
        (off,) = struct.unpack_from("<Q", elf, base + 0x08)
        (size,) = struct.unpack_from("<Q", elf, base + 0x20)
        for name, ntype, _ in _iter_notes(elf[off : off + size]):
            if name == b"Xen" and ntype == _XEN_ELFNOTE_PHYS32_ENTRY:
                return True
    return False


def _vmlinux_bytes(bzimage: Path) -> bytes:
    """Read ``bzimage`` and return its verified, decompressed ELF payload."""
    try:
        image = bzimage.read_bytes()
    except OSError as exc:
        raise KernelImageError(f"cannot read {bzimage}: {exc}") from exc
    start, length = _read_header(image, bzimage)
    elf = _decompress(image[start : start + length], bzimage)
    if not elf.startswith(b"\x7fELF\x02\x01"):
        raise ExtractionUnsupported(f"{bzimage}: payload is not a 64-bit little-endian ELF")
    if not has_pvh_note(elf):
        raise ExtractionUnsupported(
            f"{bzimage}: vmlinux has no Xen PVH entry note (kernel built without CONFIG_PVH); boot the bzImage instead"
        )
    return elf


def extract_vmlinux(bzimage: Path, out: Path) -> Path:
    """Write the PVH-bootable ELF vmlinux inside ``bzimage`` to ``out``.

    Raises :class:`ExtractionUnsupported` when the payload compression is
    not supported by the stdlib (zstd, lz4, lzo) or the ELF lacks a PVH
    note; callers should then fall back to booting ``bzimage`` itself.
    """
    elf = _vmlinux_bytes(bzimage)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_bytes(elf)
    os.replace(tmp, out)
    return out


def _cache_key(bzimage: Path) -> str:
    """Short key identifying this bzImage version (path, size, mtime)."""
    st = bzimage.stat()
    raw = f"{bzimage.resolve()}\0{st.st_size}\0{st.st_mtime_ns}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def cached_vmlinux(bzimage: Path, cache_dir: Path) -> Path | None:
    """Return a cached PVH vmlinux for ``bzimage``, extracting it if needed.

    Returns None when extraction is unsupported for this image (the caller
    boots the bzImage); a negative result is cached as well. Other errors
    (unreadable or corrupt image) propagate as :class:`KernelImageError`.
    """
    key = _cache_key(bzimage)
    out = cache_dir / f"vmlinux-{bzimage.name}-{key}"
    negative = out.with_name(out.name + ".unsupported")
    if out.is_file():
        return out
    if negative.is_file():
        return None
    try:
        return extract_vmlinux(bzimage, out)
    except ExtractionUnsupported as exc:
        cache_dir.mkdir(parents=True, exist_ok=True)
        negative.write_text(f"{exc}\n")
        return None
