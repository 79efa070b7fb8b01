"""The rubric `pfharness grade` scores by: one TOML file a teacher can copy and edit (handin/rubric.toml is
the assignment's, the default). Parsed and validated here into a Rubric; a bad file is a RubricError that
names the bad key in one line."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import assets
from ..errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_NAME = "rubric.toml"
KINDS = ("module", "report", "clean")
#: Each kind's checks, and the options each check takes with their defaults (docs/grade.md, "The rubric file").
CHECKS: Mapping[str, Mapping[str, Mapping[str, float]]] = {
    "module": {
        "builds": {},
        "loads": {},
        "tpid": {},
        "traces-target": {},
        "threads": {},
        "no-splat": {},
        "unloads": {},
        "plot-found": {},
        "plot-size": {},
        "plot-title": {},
        "plot-labels": {},
        "plot-agreement": {"full_at": 0.8},
        "c-split": {},
    },
    "report": {"present": {}, "length": {"min_words": 200}, "workloads": {"min": 3}, "plots": {"min": 1}},
    "clean": {
        "build-warnings": {"per": 1.0},
        "checkpatch": {"per": 0.5},
        "printk-flood": {},
        "files": {},
        "missing-pid": {},
        "exited-pid": {},
    },
}
MODULES = ("A", "B", "C")
#: The module checks that only some modules' output can give (A prints addresses, B and C plots).
FOR_MODULES = {
    "traces-target": "A",
    "threads": "A",
    **{c: "BC" for c in ("plot-found", "plot-size", "plot-title", "plot-labels", "plot-agreement")},
    "c-split": "C",
}
_TOP = {"title", "maximum", "late", "items"}
_ITEM = {"title", "kind", "module", "max", "extra", "checks"}
_LATE = {"per_day", "offset_by_extra"}


class RubricError(UsageError):
    """The rubric file is not one `pfharness grade` can score by; the message names the key."""


@dataclass(frozen=True)
class Check:
    """One check of an item: its points, and its options (the defaults filled in)."""

    name: str
    points: float
    options: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """One line of the gradebook: its checks' points add up to `max`."""

    id: str
    title: str
    kind: str  # module, report or clean (KINDS)
    max: float
    checks: tuple[Check, ...]
    module: str = ""  # A, B or C for a module item
    extra: bool = False  # extra points: they offset deductions, never lift the total above the maximum


@dataclass(frozen=True)
class Rubric:
    title: str
    maximum: float
    items: tuple[Item, ...]
    late_per_day: float = 10.0
    offset_late_by_extra: bool = False
    source: str = "default"  # the file's path, or "default"


def default_text() -> str:
    """The default rubric's text (handin/rubric.toml), for --print-rubric."""
    return assets.handin_file(DEFAULT_NAME).read_text()


def load(path: Path | None) -> Rubric:
    """The rubric at `path` (None: the default), parsed and validated."""
    if path is None:
        return parse(default_text(), "default")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise RubricError(f"--rubric {path}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
    return parse(text, str(path))


def parse(text: str, source: str) -> Rubric:
    """A rubric from its TOML text; `source` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RubricError(f"rubric {source}: not valid TOML ({e})") from None
    where = f"rubric {source}"
    _keys(data, _TOP, where, "")
    late = _table(data.get("late", {}), where, "late")
    _keys(late, _LATE, where, "late.")
    items_data = _table(data.get("items"), where, "items")
    if not items_data:
        raise RubricError(f"{where}: items: no [items.ID] table: the rubric needs at least one item")
    items = tuple(_item(name, _table(v, where, f"items.{name}"), where) for name, v in items_data.items())
    rubric = Rubric(
        title=_str(data.get("title", ""), where, "title"),
        maximum=_number(data.get("maximum"), where, "maximum"),
        items=items,
        late_per_day=_number(late.get("per_day", 10), where, "late.per_day"),
        offset_late_by_extra=_bool(late.get("offset_by_extra", False), where, "late.offset_by_extra"),
        source=source,
    )
    _totals(rubric, where)
    return rubric


def _item(name: str, data: dict[str, Any], where: str) -> Item:
    key = f"items.{name}"
    _keys(data, _ITEM, where, f"{key}.")
    kind = _str(data.get("kind"), where, f"{key}.kind")
    if kind not in KINDS:
        raise RubricError(f"{where}: {key}.kind = {kind!r}: use one of {', '.join(KINDS)}")
    module = _str(data.get("module", ""), where, f"{key}.module") if kind == "module" else ""
    if kind == "module" and module not in MODULES:
        raise RubricError(f"{where}: {key}.module = {module!r}: use A, B or C")
    if kind != "module" and "module" in data:
        raise RubricError(f'{where}: {key}.module: only an item of kind "module" names a module')
    checks_data = _table(data.get("checks"), where, f"{key}.checks")
    checks = tuple(_check(kind, c, v, where, f"{key}.checks.{c}") for c, v in checks_data.items())
    if not checks:
        raise RubricError(f"{where}: {key}.checks: no check: give each check its points (docs/grade.md)")
    for c in checks:
        if module and module not in FOR_MODULES.get(c.name, module):
            raise RubricError(f"{where}: {key}.checks.{c.name}: pf_probe_{module} is not judged on it (docs/grade.md)")
    return Item(
        id=name,
        title=_str(data.get("title", name), where, f"{key}.title"),
        kind=kind,
        max=_number(data.get("max"), where, f"{key}.max"),
        checks=checks,
        module=module,
        extra=_bool(data.get("extra", False), where, f"{key}.extra"),
    )


def _check(kind: str, name: str, value: Any, where: str, key: str) -> Check:
    known = CHECKS[kind]
    if name not in known:
        raise RubricError(f"{where}: {key}: no such check for a {kind} item: use one of {', '.join(known)}")
    if not isinstance(value, dict):
        return Check(name, _number(value, where, key))
    allowed = {"points", *known[name]}
    _keys(value, allowed, where, f"{key}.")
    options = {o: _number(value.get(o, d), where, f"{key}.{o}") for o, d in known[name].items()}
    return Check(name, _number(value.get("points"), where, f"{key}.points"), options)


def _totals(rubric: Rubric, where: str) -> None:
    """Each item's checks add up to its max; the items that are not extra add up to the maximum."""
    for item in rubric.items:
        total = sum(c.points for c in item.checks)
        if not math.isclose(total, item.max):
            raise RubricError(f"{where}: items.{item.id}.checks: their points add up to {total:g}, max is {item.max:g}")
    base = sum(i.max for i in rubric.items if not i.extra)
    if not math.isclose(base, rubric.maximum):
        raise RubricError(f"{where}: maximum = {rubric.maximum:g}, but the items that are not extra add up to {base:g}")


def _keys(data: Mapping[str, Any], allowed: set[str], where: str, prefix: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise RubricError(f"{where}: {prefix}{unknown[0]}: unknown key: use {', '.join(sorted(allowed))}")


def _table(value: Any, where: str, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RubricError(f"{where}: {key}: missing, or not a table ([{key}])")
    return value


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise RubricError(f"{where}: {key} = {value!r}: give a number, 0 or more")
    return float(value)


def _str(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str):
        raise RubricError(f"{where}: {key} = {value!r}: give a string")
    return value


def _bool(value: Any, where: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise RubricError(f"{where}: {key} = {value!r}: give true or false")
    return value
