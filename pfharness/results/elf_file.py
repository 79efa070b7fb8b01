"""The parts of an ELF file that name code (fault sites): its PT_LOAD segments, its sections by name, its
symbol tables as one array each, and its GNU build id.

pyelftools reads the structure (headers, sections, segments, notes). A symbol table is read as one numpy array
over the section's bytes rather than through pyelftools' per-symbol parse, which took about 0.3 s for libc's
debug .symtab of 10,000 symbols on every run's summary; the array takes a few milliseconds.
tests/test_sites.py checks the symbols against binutils' readelf on real files. The file is untrusted (its path
comes from the guest): a malformed one raises ValueError (pyelftools' ELFError is one), which the caller
(elf_symbols.load) takes as "no symbols".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

SHT_SYMTAB, SHT_DYNSYM = "SHT_SYMTAB", "SHT_DYNSYM"

# The fields of one symbol, per ELF class (32 or 64 bits), in the file's order.
_SYM = {
    32: [("name", "u4"), ("value", "u4"), ("size", "u4"), ("info", "u1"), ("other", "u1"), ("shndx", "u2")],
    64: [("name", "u4"), ("info", "u1"), ("other", "u1"), ("shndx", "u2"), ("value", "u8"), ("size", "u8")],
}


@dataclass(frozen=True)
class Section:
    name: str
    type: str  # pyelftools' name of sh_type, e.g. "SHT_SYMTAB"
    index: int


class ElfFile:
    """An ELF file open for reading (the caller owns `stream`)."""

    def __init__(self, stream: BinaryIO) -> None:
        try:
            self._elf = ELFFile(stream)
        except (ELFError, OSError) as e:
            raise ValueError(f"not an ELF file: {e}") from e
        self.bits = self._elf.elfclass
        self.order = "<" if self._elf.little_endian else ">"

    def load_segments(self) -> list[tuple[int, int, int]]:
        """(file offset, virtual address, file size) of each PT_LOAD segment."""
        return [
            (s["p_offset"], s["p_vaddr"], s["p_filesz"]) for s in self._elf.iter_segments() if s["p_type"] == "PT_LOAD"
        ]

    def section(self, name: str) -> Section | None:
        """The section called `name` (the last of that name, as pyelftools picks), or None."""
        index = self._elf.get_section_index(name)
        if index is None:
            return None
        return Section(name, str(self._elf.get_section(index)["sh_type"]), index)

    def _raw(self, index: int) -> Any:
        if not 0 < index < self._elf.num_sections():
            raise ValueError(f"section {index} does not exist")
        return self._elf.get_section(index)

    def symbols(self, section: Section) -> tuple[np.ndarray, bytes]:
        """A symbol table's entries (fields name, info, other, shndx, value, size) and its string table."""
        raw = self._raw(section.index)
        dtype = np.dtype([(name, self.order + kind) for name, kind in _SYM[self.bits]])
        if raw["sh_entsize"] != dtype.itemsize:
            raise ValueError(f"{section.name}: not a symbol table of {dtype.itemsize}-byte entries")
        data = raw.data()
        strings = self._raw(raw["sh_link"]).data()
        return np.frombuffer(data, dtype, len(data) // dtype.itemsize), strings

    def build_id(self) -> str | None:
        """The GNU build id (hex), from the .note.gnu.build-id section."""
        raw = self._elf.get_section_by_name(".note.gnu.build-id")
        if raw is None or not hasattr(raw, "iter_notes"):
            return None
        return next((n["n_desc"] for n in raw.iter_notes() if n["n_type"] == "NT_GNU_BUILD_ID"), None)


def cstring(table: bytes, offset: int) -> str:
    """The NUL-terminated string at `offset` of a string table (bytes that are not UTF-8 replaced)."""
    end = table.find(b"\0", offset)
    return table[offset : end if end >= 0 else len(table)].decode("utf-8", errors="replace")
