"""Numbers for the findings, each taken from figures.json (a path into it) and formatted one way, so that
a test can find every number of the text in figures.json again."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

_shown: list[list[str]] = []  # while recording(): every number formatted, in order


class FiguresError(KeyError):
    """A path the findings ask for that figures.json does not hold (the study lacks a workload or a run)."""


def at(data: Mapping[str, Any], path: str) -> Any:
    """The value at `path` ("runs/sysbench-cpu-B/facts/major"; a run is named <workload>-<module>)."""
    node: Any = data
    for part in path.split("/"):
        if isinstance(node, list):
            node = _item(node, part)
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            raise FiguresError(f"figures.json has no {path} (missing {part!r})")
    return node


def _item(items: list, part: str) -> Any:
    if part.isdigit():
        return items[int(part)]
    for item in items:
        if isinstance(item, Mapping) and part in (item.get("name"), item.get("key"), _run_name(item)):
            return item
    raise FiguresError(f"no entry {part!r}")


def _run_name(item: Mapping[str, Any]) -> str | None:
    return f"{item['workload']}-{item['module']}" if "workload" in item and "module" in item else None


@contextlib.contextmanager
def recording() -> Iterator[list[str]]:
    """The numbers formatted inside the block, in order (a test holds them against the text's)."""
    _shown.append([])
    try:
        yield _shown[-1]
    finally:
        _shown.pop()


def _show(text: str) -> str:
    if _shown:
        _shown[-1].append(text)
    return text


def count(value: float) -> str:
    """An integer with thousands separators: 1,073."""
    return _show(f"{round(value):,}")


def share(value: float) -> str:
    """A share as a whole percent: 0.47 -> "47 %"."""
    return f"{_show(str(round(value * 100)))} %"


def tenths(value: float) -> str:
    """One decimal: 15.9."""
    return _show(f"{value:.1f}")


def seconds(value: float) -> str:
    """Seconds with one decimal: 3.2 s."""
    return f"{tenths(value)} s"


def millis(value: float) -> str:
    """Seconds as whole milliseconds: 0.048 -> "48 ms"."""
    return f"{_show(f'{value * 1000:.0f}')} ms"


#: How a leaf of figures.json may appear in the text (the test tries each).
FORMATS = (
    count,
    lambda v: share(v).removesuffix(" %"),
    tenths,
    lambda v: millis(v).removesuffix(" ms"),
)


def leaves(data: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Every number in figures.json with its path (runs named <workload>-<module>)."""
    if isinstance(data, bool):
        return
    if isinstance(data, int | float):
        yield path, data
    elif isinstance(data, Mapping):
        for key, value in data.items():
            yield from leaves(value, f"{path}/{key}" if path else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            name = (_run_name(value) or value.get("name")) if isinstance(value, Mapping) else None
            yield from leaves(value, f"{path}/{name or i}")
