"""A module's function+offset (from an Oops's RIP or call trace) as its source file:line: the
symbol's section and value from `objdump -t`, then `addr2line -j SECTION` on the .ko (built with -g)."""

from __future__ import annotations

import re
from pathlib import Path

from .. import proc


def symbol(ko: Path, function: str) -> tuple[str, int] | None:
    """The section and value of `function` in `ko`'s symbol table."""
    result = proc.run(["objdump", "-t", ko])
    if result.returncode != 0:
        return None
    return find_symbol(result.stdout, function)


def find_symbol(table: str, function: str) -> tuple[str, int] | None:
    """`function`'s (section, value) in `objdump -t` output."""
    for line in table.splitlines():
        m = re.match(r"^([0-9a-f]+)\s.*?\s(\.\S+)\s+[0-9a-f]+\s+(\S+)$", line)
        if m and m.group(3) == function:
            return m.group(2), int(m.group(1), 16)
    return None


def source_line(ko: Path, function: str, offset: int) -> str:
    """`file:line (function)` of function+offset in `ko`: the innermost frame in the module's own
    sources (an inlined kernel helper it called is named after it), or "" with no debug information."""
    found = symbol(ko, function)
    if found is None:
        return ""
    section, value = found
    result = proc.run(["addr2line", "-e", ko, "-f", "-i", "-j", section, hex(value + offset)])
    return pick_frame(result.stdout, ko.parent) if result.returncode == 0 else ""


def pick_frame(addr2line: str, sources: Path) -> str:
    """From `addr2line -f -i` output (function and file:line a frame, innermost first), the innermost
    frame under `sources`, with the inlined helper it was in."""
    lines = [ln.strip() for ln in addr2line.splitlines() if ln.strip()]
    frames = [(lines[i], re.sub(r" \(discriminator \d+\)$", "", lines[i + 1])) for i in range(0, len(lines) - 1, 2)]
    frames = [(f, w) for f, w in frames if not w.startswith("??")]
    if not frames:
        return ""
    own = [i for i, (_, w) in enumerate(frames) if w.startswith(f"{sources.resolve()}/")]
    at = own[0] if own else 0
    func, where = frames[at]
    text = f"{Path(where).name} ({func})"
    if at > 0:
        inner_func, inner_where = frames[0]
        text = f"{Path(where).name} ({func}, in {inner_func} at {Path(inner_where).name})"
    return text
