"""The parts of an ELF file that name code (fault sites): its PT_LOAD segments, its sections by name, its
symbol tables as one array each, and its GNU build id, read with struct and numpy.

pyelftools (which issue 26 suggested) parses each header and each symbol through construct: about 0.3 s for
libc's debug .symtab of 10,000 symbols, on every run's summary. These few headers, read directly, take a few
milliseconds; tests/test_sites.py checks the symbols against binutils' readelf on real files. The file is
untrusted (its path comes from the guest): a malformed one raises ValueError or struct.error, which the caller
(elf_symbols.load) takes as "no symbols".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

SHT_SYMTAB, SHT_NOTE, SHT_NOBITS, SHT_DYNSYM = 2, 7, 8, 11
PT_LOAD = 1
NT_GNU_BUILD_ID = 3
_SHN_XINDEX = 0xFFFF

# Per class (32 or 64 bits): the header after e_ident, a program header, a section header, a symbol.
_EHDR = {32: "HHIIIIIHHHHHH", 64: "HHIQQQIHHHHHH"}
_PHDR = {32: "IIIIIIII", 64: "IIQQQQQQ"}  # 32: type offset vaddr paddr filesz ...; 64: type flags offset ...
_SHDR = {32: "IIIIIIIIII", 64: "IIQQQQIIQQ"}  # name type flags addr offset size link info addralign entsize
_SYM = {
    32: [("name", "u4"), ("value", "u4"), ("size", "u4"), ("info", "u1"), ("other", "u1"), ("shndx", "u2")],
    64: [("name", "u4"), ("info", "u1"), ("other", "u1"), ("shndx", "u2"), ("value", "u8"), ("size", "u8")],
}


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    offset: int
    size: int
    link: int
    align: int
    entsize: int


class ElfFile:
    """An ELF file open for reading (the caller owns `stream`)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        ident = self._read(0, 16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
            raise ValueError("not an ELF file")
        self.bits = 32 if ident[4] == 1 else 64
        self.order = "<" if ident[5] == 1 else ">"
        fields = self._unpack(_EHDR[self.bits], 16)
        self._phoff, self._shoff, self._phentsize, self._phnum = fields[4], fields[5], fields[8], fields[9]
        self._shentsize, shnum, shstrndx = fields[10], fields[11], fields[12]
        first = self._section_header(0) if self._shoff else None
        if first is not None and shnum == 0:  # extended numbering: the count is in section 0
            shnum = first[5]
        if first is not None and shstrndx == _SHN_XINDEX:
            shstrndx = first[6]
        size = self.stream.seek(0, 2)
        if self._shoff and (self._shentsize != struct.calcsize(_SHDR[self.bits]) or shnum * self._shentsize > size):
            raise ValueError("section headers beyond the file")
        if self._phoff and self._phentsize != struct.calcsize(_PHDR[self.bits]):
            raise ValueError("program headers of an unknown size")
        headers = [self._section_header(i) for i in range(shnum)] if self._shoff else []
        names = self._read(headers[shstrndx][4], headers[shstrndx][5]) if shstrndx < len(headers) else b""
        self.sections = [Section(cstring(names, h[0]), h[1], h[4], h[5], h[6], h[8], h[9]) for h in headers]

    def _read(self, offset: int, size: int) -> bytes:
        self.stream.seek(offset)
        return self.stream.read(size)

    def _unpack(self, layout: str, offset: int) -> tuple[int, ...]:
        fmt = self.order + layout
        data = self._read(offset, struct.calcsize(fmt))
        return struct.unpack(fmt, data)

    def _section_header(self, index: int) -> tuple[int, ...]:
        return self._unpack(_SHDR[self.bits], self._shoff + index * self._shentsize)

    def load_segments(self) -> list[tuple[int, int, int]]:
        """(file offset, virtual address, file size) of each PT_LOAD segment."""
        found = []
        for i in range(self._phnum if self._phoff else 0):
            h = self._unpack(_PHDR[self.bits], self._phoff + i * self._phentsize)
            if h[0] == PT_LOAD:
                found.append((h[1], h[2], h[4]) if self.bits == 32 else (h[2], h[3], h[5]))
        return found

    def section(self, name: str) -> Section | None:
        """The section called `name` (the last of that name, as pyelftools picks), or None."""
        return next((s for s in reversed(self.sections) if s.name == name), None)

    def data(self, section: Section) -> bytes:
        return b"" if section.type == SHT_NOBITS else self._read(section.offset, section.size)

    def symbols(self, section: Section) -> tuple[np.ndarray, bytes]:
        """A symbol table's entries (fields name, info, other, shndx, value, size) and its string table."""
        dtype = np.dtype([(name, self.order + kind) for name, kind in _SYM[self.bits]])
        if section.entsize != dtype.itemsize or not 0 < section.link < len(self.sections):
            raise ValueError(f"{section.name}: not a symbol table of {dtype.itemsize}-byte entries")
        data = self.data(section)
        return np.frombuffer(data, dtype, len(data) // dtype.itemsize), self.data(self.sections[section.link])

    def build_id(self) -> str | None:
        """The GNU build id (hex), from the .note.gnu.build-id section."""
        section = self.section(".note.gnu.build-id")
        if section is None or section.type != SHT_NOTE:
            return None
        data, align, at = self.data(section), 8 if section.align == 8 else 4, 0
        while at + 12 <= len(data):
            namesz, descsz, kind = struct.unpack_from(self.order + "III", data, at)
            desc = at + 12 + -(-namesz // align) * align
            if kind == NT_GNU_BUILD_ID and data[at + 12 : at + 12 + namesz].rstrip(b"\0") == b"GNU":
                return data[desc : desc + descsz].hex()
            at = desc + -(-descsz // align) * align
        return None


def cstring(table: bytes, offset: int) -> str:
    """The NUL-terminated string at `offset` of a string table (bytes that are not UTF-8 replaced)."""
    end = table.find(b"\0", offset)
    return table[offset : end if end >= 0 else len(table)].decode("utf-8", errors="replace")
