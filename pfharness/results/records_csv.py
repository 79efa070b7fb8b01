"""records.csv at memory speed: every column rendered at once with numpy, the bytes identical to csv.writer's.

Each column becomes a matrix of ASCII bytes, one row per record, right-aligned in a fixed width with NUL bytes as
padding (a blank field is all NUL); the columns and their separators are laid side by side and the NUL bytes
dropped, which leaves each row's fields at their own width. No field needs quoting: numbers, hexadecimal
addresses and the words of output_format (region kinds, access kinds, IP modes), none with a comma, a quote or a
line break. tests/test_records_csv.py compares the bytes with csv.writer's on the same records.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from . import output_format as fmt

#: Version 2 of the records added the columns from tid on (empty for a version-1 records file).
HEADER = (
    "time_ns",
    "address",
    "page",
    "pid",
    "region",
    "kind",
    "access",
    "major",
    "tid",
    "exec",
    "huge",
    "ip",
    "ip_mode",
    "service_ns",
)
CHUNK = 1 << 16  # records rendered at once: about 10 MB of matrices


def _pair_table(base: int) -> np.ndarray:
    """Two digits as a 16-bit value whose bytes are their ASCII characters, in three states: both digits
    (index pair), the high digit a leading zero (base * base + pair: NUL, digit), none (2 * base * base: NUL, NUL)."""
    spell = "{:02d}" if base == 10 else "{:02x}"
    full = [spell.format(i).encode() for i in range(base * base)]
    lead = [b"\0" + p[1:] for p in full]
    return np.frombuffer(b"".join(full + lead + [b"\0\0"] * (base * base)), dtype=np.uint16)


_DECIMAL_PAIRS = _pair_table(10)  # 300 entries
_HEX_PAIRS = _pair_table(16)  # 768 entries
_COMMA = ord(",")
_NEWLINE = ord("\n")


def _pair_state(rest: np.ndarray, units: bool, above: np.ndarray | None, base: int) -> np.ndarray:
    """The row offset in a pair table of the pair whose value and higher digits are `rest`: 0 both digits,
    1 the high one is a leading zero, 2 both are (the units pair keeps its last digit: 0 prints "0")."""
    state = (rest < base).view(np.uint8) + (rest == 0).view(np.uint8)
    if units:
        np.minimum(state, 1, out=state)
    if above is not None:
        state[above] = 0  # higher digits (another part of the number) are not all zero
    return state.astype(np.uint32) * (base * base)


def _decimal_pairs(
    values: np.ndarray, width: int, above: np.ndarray | None = None, units: bool = True
) -> list[np.ndarray]:
    """`values` in decimal, `width` digits, as 16-bit digit pairs from the left, 8 digits at a time in 32 bits
    (`above`: the higher part is not zero; `units`: these digits end the number)."""
    if width > 8:
        high, low = np.divmod(values.astype(np.uint64), 10**8)
        nonzero = high > 0 if above is None else (high > 0) | above
        return _decimal_pairs(high, width - 8, above, False) + _decimal_pairs(low, 8, nonzero, units)
    x = values.astype(np.uint32)
    pairs = []
    for i in range((width + 1) // 2):
        state = _pair_state(x, units and i == 0, above, 10)
        x, pair = np.divmod(x, 100)
        pairs.append(_DECIMAL_PAIRS.take(pair + state))
    return pairs[::-1]


def _decimal(values: np.ndarray) -> np.ndarray:
    """`values` (unsigned) in decimal."""
    width = len(str(int(values.max()))) if len(values) else 1
    return np.stack(_decimal_pairs(values, width), axis=1).view(np.uint8)


def _hexadecimal(values: np.ndarray) -> np.ndarray:
    """`values` (unsigned, 64 bits at most) as 0x... in lower case, as f"0x{value:x}"."""
    width = max(1, (int(values.max()).bit_length() + 7) // 8) if len(values) else 1
    big_endian = values.astype(">u8").view(np.uint8).reshape(-1, 8)[:, 8 - width :]
    pairs = [np.full(len(values), int.from_bytes(b"0x", "little"), dtype=np.uint16)]
    zero_above: np.ndarray | None = None  # the bytes to the left are all zero
    for j in range(width):
        byte = big_endian[:, j]
        above = None if zero_above is None else ~zero_above
        pairs.append(_HEX_PAIRS.take(byte + _pair_state(byte, j == width - 1, above, 16)))
        zero_above = byte == 0 if zero_above is None else zero_above & (byte == 0)
    return np.stack(pairs, axis=1).view(np.uint8)


def _words(index: np.ndarray, words: list[str] | tuple[str, ...]) -> np.ndarray:
    """words[index] for each index (ASCII words; "" is a blank field)."""
    width = max(1, *(len(w) for w in words)) if words else 1
    table = np.array([w.encode() for w in words] or [b""], dtype=f"S{width}")
    return table.take(index.astype(np.intp)).view(np.uint8).reshape(-1, width)


def _blanked(column: np.ndarray, blank: np.ndarray) -> np.ndarray:
    column *= ~blank[:, None]
    return column


def _columns(table: np.ndarray, kinds: list[str], version: int) -> list[np.ndarray]:
    """The matrices of HEADER's columns, in order (from tid on blank for version 1)."""
    region, flags = table["region"], table["flags"]
    known = np.minimum(region.astype(np.intp), len(kinds))  # len(kinds): no kind ("")
    columns = [
        _decimal(table["t_ns"]),
        _hexadecimal(table["address"]),
        _hexadecimal(table["address"] >> 12),
        _decimal(table["tgid"]),
        _blanked(_decimal(region), region == fmt.REGION_NONE),
        _words(known, [*kinds, ""]),
        _words(table["access_index"], fmt.ACCESS_KINDS),
        _words((flags & fmt.RECORD_FLAG_MAJOR) != 0, ("0", "1")),
    ]
    if version == 1:
        return columns + [np.zeros((len(table), 1), dtype=np.uint8)] * 6
    no_ip, kernel = (flags & fmt.RECORD_FLAG_NO_IP) != 0, (flags & fmt.RECORD_FLAG_KERNEL_MODE) != 0
    unknown = table["exec_seq"] == fmt.EXEC_UNKNOWN
    return [
        *columns,
        _decimal(table["tid"]),
        _blanked(_decimal(np.where(unknown, 0, table["exec_seq"])), unknown),
        _words((flags & fmt.RECORD_FLAG_HUGE) != 0, ("0", "1")),
        _hexadecimal(table["ip"]),
        _words(np.where(no_ip, 2, kernel.astype(np.intp)), fmt.IP_MODES),
        _decimal(table["service_ns"]),
    ]


def rows(table: np.ndarray, kinds: list[str], version: int = fmt.RECORDS_VERSION) -> bytes:
    """records.csv's rows of `table` (no header), each ending in a newline."""
    columns = _columns(table, kinds, version)
    out = np.empty((len(table), sum(c.shape[1] + 1 for c in columns)), dtype=np.uint8)
    at = 0
    for column in columns:
        out[:, at : at + column.shape[1]] = column
        at += column.shape[1]
        out[:, at] = _COMMA
        at += 1
    out[:, -1] = _NEWLINE
    return out.tobytes().translate(None, b"\0")


def write(f: BinaryIO, table: np.ndarray, kinds: list[str], version: int = fmt.RECORDS_VERSION) -> None:
    """records.csv: HEADER, then one row per record in buffer order (`kinds`: the region table's kinds)."""
    f.write((",".join(HEADER) + "\n").encode())
    for start in range(0, len(table), CHUNK):
        f.write(rows(table[start : start + CHUNK], kinds, version))
