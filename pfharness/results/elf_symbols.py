"""The functions of an ELF file on the host, to name the code at a file offset (fault sites, issue 26).

elf_file.py (pyelftools, and numpy for the symbol tables) reads the file's PT_LOAD segments (file offset ->
virtual address) and its function symbols: `.symtab` where the file has one, else the `.symtab` of its separate
debug file when one is installed (found by build id under /usr/lib/debug, as gdb and perf find it), else
`.dynsym` (a stripped library keeps its exported functions). C++ names are demangled by binutils' c++filt
(through proc.py, in batches); without c++filt they stay mangled. A file that cannot be read as ELF gives no
symbols: its sites are named file+0xoffset, as perf names them.

What a file gave is kept in pfharness's cache (symbols/, one .npz per file, named by a hash of the path and the
file's identity: device, inode, size, mtime; and of the debug directory's mtime and c++filt's presence), so a
later run reads it in a millisecond instead of parsing the file again (about 0.03 s for libc and ld.so).
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import hashlib
import os
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .. import assets, proc
from ..errors import PfhError
from .elf_file import SHT_DYNSYM, SHT_SYMTAB, ElfFile, cstring

DEMANGLE_BATCH = 500  # names per c++filt command line
MAX_FILE_BYTES = 4 << 30  # a file larger than this is not read for symbols
DEBUG_ROOT = Path("/usr/lib/debug")  # separate debug files, by build id (gdb's and perf's default)


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD segment: the file bytes [offset, offset + size) are mapped at vaddr."""

    offset: int
    vaddr: int
    size: int


@dataclass(frozen=True)
class Symbols:
    """A file's function symbols, sorted by address, and its loadable segments."""

    path: str
    segments: list[Segment] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # sorted
    ends: list[int] = field(default_factory=list)  # start + size (size 0: up to the next symbol)
    names: list[str] = field(default_factory=list)  # demangled
    table: str = ""  # ".symtab", ".dynsym" or "" (none: a stripped file, or not ELF)

    def vaddr(self, offset: int) -> int:
        """The virtual address (as the symbols give them) of file offset `offset`."""
        for s in self.segments:
            if s.offset <= offset < s.offset + s.size:
                return offset - s.offset + s.vaddr
        return offset

    def function(self, offset: int) -> str | None:
        """The name of the function that holds file offset `offset`, or None."""
        address = self.vaddr(offset)
        i = bisect.bisect_right(self.starts, address) - 1
        if i < 0 or address >= self.ends[i]:
            return None
        return self.names[i]

    def functions(self, offsets: np.ndarray) -> list[str | None]:
        """function() of each file offset in `offsets` (unsigned), a column at a time."""
        offsets = offsets.astype(np.uint64)
        address = offsets.copy()
        for s in self.segments:
            inside = (offsets >= s.offset) & (offsets < s.offset + s.size)
            address[inside] = offsets[inside] - np.uint64(s.offset) + np.uint64(s.vaddr)
        starts, ends = np.array(self.starts, dtype=np.uint64), np.array(self.ends, dtype=np.uint64)
        i = np.searchsorted(starts, address, side="right") - 1
        held = (i >= 0) & (address < ends[np.maximum(i, 0)]) if len(starts) else np.zeros(len(offsets), dtype=bool)
        return [self.names[j] if ok else None for j, ok in zip(i.tolist(), held.tolist(), strict=True)]


# Only STT_FUNC: pyelftools, which this module used before, reports type 10 (STT_GNU_IFUNC) as STT_LOOS, so
# IFUNC resolvers were never named; the names stay as they were.
_STT_FUNC = 2


def _function_symbols(elf: ElfFile, section_name: str) -> list[tuple[int, int, str]]:
    """(address, size, name) of each defined function symbol with an address, in the table's order."""
    section = elf.section(section_name)
    if section is None or section.type not in (SHT_SYMTAB, SHT_DYNSYM):
        return []
    table, strings = elf.symbols(section)
    chosen = table[((table["info"] & 0xF) == _STT_FUNC) & (table["value"] != 0) & (table["shndx"] != 0)]
    columns = (chosen[f].tolist() for f in ("value", "size", "name"))
    return [(v, n, cstring(strings, o)) for v, n, o in zip(*columns, strict=True)]


def _ranges(found: list[tuple[int, int, str]]) -> tuple[list[int], list[int], list[str]]:
    """Sorted starts, ends and names, one symbol per address (the first name wins); size 0 reaches the next."""
    by_start: dict[int, tuple[int, str]] = {}
    for start, size, name in sorted(found):
        by_start.setdefault(start, (size, name))
    starts = sorted(by_start)
    ends = []
    for i, start in enumerate(starts):
        size = by_start[start][0]
        following = starts[i + 1] if i + 1 < len(starts) else start + max(size, 1)
        ends.append(start + size if size else following)
    return starts, ends, [by_start[s][1] for s in starts]


def demangle(names: Sequence[str]) -> list[str]:
    """C++ names demangled by c++filt (others as they are; all as they are without c++filt)."""
    program = shutil.which("c++filt")
    mangled = sorted({n for n in names if n.startswith("_Z")})
    if program is None or not mangled:
        return list(names)
    plain: dict[str, str] = {}
    for i in range(0, len(mangled), DEMANGLE_BATCH):
        batch = mangled[i : i + DEMANGLE_BATCH]
        out = proc.run([program, *batch], timeout=60).stdout.splitlines()
        if len(out) == len(batch):
            plain.update(zip(batch, out, strict=True))
    return [plain.get(n, n) for n in names]


def _debug_symbols(elf: ElfFile) -> list[tuple[int, int, str]]:
    """The .symtab of the file's separate debug file, found by build id as gdb and perf find it
    (/usr/lib/debug/.build-id/xx/yyyy.debug, e.g. Debian's libc6-dbg), or none."""
    build_id = elf.build_id()
    debug = DEBUG_ROOT / ".build-id" / (build_id or "")[:2] / f"{(build_id or '')[2:]}.debug"
    if not build_id or not debug.is_file():
        return []
    with _open_regular(str(debug)) as f:
        return _function_symbols(ElfFile(f), ".symtab")


def _open_regular(path: str) -> BinaryIO:
    """`path` opened for reading if it is a regular file of at most MAX_FILE_BYTES: the path comes from the
    guest's regions file (untrusted), and a FIFO or a device must not block or flood the host."""
    if not os.path.isabs(path) or not stat.S_ISREG(os.stat(path).st_mode):  # before open: a device's open acts
        raise ValueError(f"{path}: not an absolute path to a regular file")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
        os.close(fd)
        raise ValueError(f"{path}: not a regular file of at most {MAX_FILE_BYTES} bytes")
    return os.fdopen(fd, "rb")


def _read(path: str) -> tuple[list[Segment], str, list[tuple[int, int, str]]]:
    """The file's PT_LOAD segments, and its function symbols with the table they came from."""
    with _open_regular(path) as f:
        elf = ElfFile(f)
        segments = [Segment(*s) for s in elf.load_segments()]
        for table, symbols in (
            (".symtab", lambda: _function_symbols(elf, ".symtab")),
            ("debug .symtab", lambda: _debug_symbols(elf)),
            (".dynsym", lambda: _function_symbols(elf, ".dynsym")),
        ):
            found = symbols()
            if found:
                return segments, table, found
    return segments, "", []


@functools.lru_cache(maxsize=256)
def load(path: str) -> Symbols:
    """The symbols of the file at `path` (none when it is missing or not ELF), from the cache when it has them."""
    kept = _cache_file(path)
    if kept is not None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            return _from_cache(kept, path)
    try:
        segments, table, found = _read(path)
    except Exception:  # the file is untrusted: any failure of the parser means no symbols, never a crash
        return Symbols(path)
    starts, ends, names = _ranges(found)
    symbols = Symbols(path, segments, starts, ends, demangle(names), table)
    if kept is not None:
        with contextlib.suppress(OSError, ValueError):
            _to_cache(kept, symbols)
    return symbols


_CACHE_VERSION = "1"


def _cache_file(path: str) -> Path | None:
    """Where the cache keeps what `path` gave, for the file as it is now; None when it cannot say."""
    try:
        info = os.stat(path)
        debug = os.stat(DEBUG_ROOT / ".build-id").st_mtime_ns if (DEBUG_ROOT / ".build-id").is_dir() else 0
        directory = assets.cache_dir() / "symbols"
    except (OSError, PfhError):
        return None
    identity = (_CACHE_VERSION, path, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, debug)
    key = hashlib.sha256(repr((*identity, shutil.which("c++filt") is not None)).encode()).hexdigest()
    return directory / f"{key[:32]}.npz"


def _to_cache(kept: Path, symbols: Symbols) -> None:
    kept.parent.mkdir(parents=True, exist_ok=True)
    tmp = kept.with_name(f".{kept.stem}.{os.getpid()}.npz")
    names = "\0".join(symbols.names).encode("utf-8", "surrogateescape")
    with open(tmp, "wb") as f:
        np.savez(
            f,
            segments=np.array([[s.offset, s.vaddr, s.size] for s in symbols.segments], dtype=np.uint64).reshape(-1, 3),
            starts=np.array(symbols.starts, dtype=np.uint64),
            ends=np.array(symbols.ends, dtype=np.uint64),
            names=np.frombuffer(names, dtype=np.uint8),
            table=np.array(symbols.table),
        )
    os.replace(tmp, kept)


def _from_cache(kept: Path, path: str) -> Symbols:
    with np.load(kept, allow_pickle=False) as data:
        starts, ends = data["starts"].tolist(), data["ends"].tolist()
        text = data["names"].tobytes().decode("utf-8", "surrogateescape")
        names = text.split("\0") if starts else []
        if len(names) != len(starts) or len(ends) != len(starts):
            raise ValueError(f"{kept}: damaged")
        segments = [Segment(*row) for row in data["segments"].tolist()]
        return Symbols(path, segments, starts, ends, names, str(data["table"]))
