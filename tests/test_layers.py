"""The package's import graph: each module imports only its own floor or lower ones, and booting a
guest loads nothing of the module builder (pfharness.kmod: apt, kbuild, rendering)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pfharness"

#: The floors, lowest first. A unit (a module, or a package whose modules import each other
#: freely) may import units of lower floors, never of its own floor or a higher one.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("pfharness.errors", "pfharness.pipeline"),
    ("pfharness.assets", "pfharness.proc", "pfharness.kernel", "pfharness.environment", "pfharness.values"),
    ("pfharness.results.output_format",),  # the formats: the module's output, then the guest's step protocol
    ("pfharness.results.step_protocol",),
    ("pfharness.mm_settings",),
    ("pfharness.results",),
    ("pfharness.grade", "pfharness.grade.model"),  # the grader: what crosses between its parts
    ("pfharness.grade.execute", "pfharness.grade.page"),  # the grader's executor of tasks, its class page
    ("pfharness.grade.submission_ids", "pfharness.grade.names"),  # unpacking a hand-in: ids and names
    ("pfharness.grade.members", "pfharness.grade.times", "pfharness.grade.required"),
    ("pfharness.grade.archive", "pfharness.grade.extract"),
    ("pfharness.grade.unpack",),
    ("pfharness.check.findings", "pfharness.check.oracle_faults"),  # the module check: its comparisons with the oracle
    ("pfharness.check.plot_find",),
    ("pfharness.grade.report_txt",),  # the report item's measures (finds plots as the check does)
    ("pfharness.check.compare",),
    (
        "pfharness.channel",
        "pfharness.kmod.spec",
        "pfharness.kmod.render",
        "pfharness.kmod.diagnose",
        "pfharness.kmod.sandbox",
        "pfharness.pipeline.steps",
    ),
    ("pfharness.kmod.apt", "pfharness.kmod.arrange", "pfharness.pipeline.events", "pfharness.pipeline.store"),
    ("pfharness.kmod.toolchain",),
    ("pfharness.kmod.kernels", "pfharness.kmod.kbuild", "pfharness.kmod.foreign"),
    ("pfharness.kmod.fetch", "pfharness.kmod.handin", "pfharness.step", "pfharness.progress", "pfharness.plot"),
    ("pfharness.kmod.matrix",),
    ("pfharness.kmod.bring",),
    ("pfharness.guest", "pfharness.host", "pfharness.pipeline.prepare"),
    ("pfharness.pipeline.targets",),  # the pipeline: targets (over guest and host), then the steps on one
    ("pfharness.pipeline.core",),
    ("pfharness.run", "pfharness.study", "pfharness.check"),
    ("pfharness.grade.rubric", "pfharness.grade.checkpatch"),  # the grader's scoring, then its batch
    ("pfharness.grade.module_checks",),
    ("pfharness.grade.score", "pfharness.grade.student_dir"),
    ("pfharness.grade.gradebook",),
    ("pfharness.grade.run",),
    ("pfharness.commands", "pfharness.commands.base"),
    ("pfharness.commands.kmod", "pfharness.commands.reading", "pfharness.commands.check", "pfharness.commands.sites"),
    ("pfharness.commands.grade",),
    ("pfharness.cli",),
)


def _unit(module: str) -> tuple[int, str]:
    """(floor, unit) of a module: the longest name in LAYERS it is or lies under."""
    best: tuple[int, str] | None = None
    for floor, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best[1])):
                best = (floor, name)
    if best is None:
        raise AssertionError(f"{module} is on no floor: add it to LAYERS in {__file__}")
    return best


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """The pfharness modules ``path`` imports (at run time or for type checking)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            # `from .x import y` names module x.y when there is one, else x (y is a name in it)
            found |= {f"{target}.{a.name}" if _is_module(f"{target}.{a.name}") else target for a in node.names}
    return {m for m in found if m == "pfharness" or m.startswith("pfharness.")}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_no_module_imports_its_own_floor_or_a_higher_one():
    upward = []
    for module, imported in _graph().items():
        if not imported - {"pfharness"}:  # the package's __init__ files
            continue
        floor, unit = _unit(module)
        for target in imported - {"pfharness"}:
            t_floor, t_unit = _unit(target)
            if t_unit != unit and t_floor >= floor:
                upward.append(f"{module} (floor {floor}) imports {target} (floor {t_floor})")
    assert upward == []


def test_the_layers_are_checked_for_real():
    """The check above sees what it must: kbuild imports the toolchain, the guest the kernel value."""
    graph = _graph()
    assert "pfharness.kmod.toolchain" in graph["pfharness.kmod.kbuild"]
    assert "pfharness.kernel" in graph["pfharness.guest.session"]
    assert "pfharness.kmod.spec" in graph["pfharness.kmod.kernels"]
    assert _unit("pfharness.kmod.fetch")[0] > _unit("pfharness.kmod.kernels")[0]


def test_the_guest_and_the_kernel_listing_import_no_builder():
    """Static: nothing under pfharness/guest imports pfharness.kmod; kernels.py does not import the fetcher."""
    graph = _graph()
    guest = {m: sorted(t for t in ts if t.startswith("pfharness.kmod")) for m, ts in graph.items()}
    assert {m: ts for m, ts in guest.items() if m.startswith("pfharness.guest") and ts} == {}
    assert not {"pfharness.kmod.fetch", "pfharness.kmod.apt"} & graph["pfharness.kmod.kernels"]


def test_booting_a_guest_loads_no_kmod_module():
    """At run time: importing the VM session (what boots a kernel) loads no pfharness.kmod module."""
    code = (
        "import sys, pfharness.guest.session\n"
        "print(sorted(m for m in sys.modules if m.startswith('pfharness.kmod')))\n"
        "print('pfharness.kernel' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "True"]
