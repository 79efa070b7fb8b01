"""One plot algorithm: the module's C (kmod_templates/common/plot_core.c.j2, and the course modules' linear plot
course/plot.c.j2, compiled here as host programs with tests/plot_host/) and `pfharness plot`'s Python
(pfharness/results/folded.py) print the same lines, byte for byte, for thousands of generated record sets and the
named edge cases. No VM: this runs in `make test-fast`."""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pfharness.kmod import render
from pfharness.results import folded
from pfharness.results import output_format as fmt
from pfharness.results.records_file import FaultRecord, Region

HOST = Path(__file__).resolve().parent / "plot_host"
CORE_TEMPLATE = "common/plot_core.c.j2"
COURSE_TEMPLATE = "course/plot.c.j2"  # the course modules' own plot, linear only (the hand-in's, `pfharness dist`)
SET_END = "==== end of set\n"  # tests/plot_host/driver.c prints it after each record set
TOP = 2**64 - 1
PAGES = 2**52  # page numbers of 64-bit addresses
NAME_CHARS = "".join(chr(c) for c in range(0x21, 0x7F))  # what a region name holds (the module replaces the rest)
GENERATED = 3000  # random record sets per run


@dataclass(frozen=True)
class Case:
    """One plot to draw on both sides: the records, the region table and the module's parameters."""

    name: str
    records: tuple[FaultRecord, ...]
    regions: tuple[Region, ...]
    scale: str = "folded"
    cls: int | None = None  # None: B's one plot of all faults; 0..2: one of C's class plots
    pid: int = 4242
    comm: str = "work"

    def driver_input(self) -> str:
        key, title = ("all", "") if self.cls is None else fmt.FAULT_CLASSES[self.cls]
        head = f"plot {self.scale} {self.pid} {self.cls or 0} {len(self.regions)} {len(self.records)} {key}\n"
        lines = [head, self.comm + "\n", title + "\n", *(f"{r.kind} {r.name}\n" for r in self.regions)]
        lines += [f"{r.t_ns} {r.address} {r.region} {r.flags}\n" for r in self.records]
        return "".join(lines)

    def python_lines(self) -> list[str]:
        """What folded.py draws: the plot of all faults, or of the class's faults on the clock of all of them (C
        draws each class alone, every one on the run's clock)."""
        if self.cls is None:
            return folded.draw(self.records, self.regions, scale=self.scale, pid=self.pid, comm=self.comm).lines
        key, title = fmt.FAULT_CLASSES[self.cls]
        mine = [
            r for r in self.records if (r.flags & fmt.RECORD_FLAG_CLASS_MASK) >> fmt.RECORD_FLAG_CLASS_SHIFT == self.cls
        ]
        if not mine:
            return [fmt.LINES["plot_empty_class"].template.format(pid=self.pid, comm=self.comm, class_title=title)]
        clock = (min(r.t_ns for r in self.records), max(r.t_ns for r in self.records))
        drawn = folded.draw(
            mine,
            self.regions,
            scale=self.scale,
            pid=self.pid,
            comm=self.comm,
            plot_class=key,
            class_title=title,
            clock=clock,
        )
        return drawn.lines


def rec(t: int, address: int, region: int, flags: int = 0) -> FaultRecord:
    return FaultRecord(t, address, 1, region, 0, flags)


def table(names: Sequence[str], kinds: Sequence[str] = ()) -> tuple[Region, ...]:
    """Regions of kind file, or of the given kinds (code and data: the program's own, named first in a label)."""
    return tuple(Region(i, kinds[i] if i < len(kinds) else "file", 0, 0, 0, name) for i, name in enumerate(names))


# ---- building and running the C side ----


def build_driver(
    compiler: str,
    out: Path,
    classify: bool,
    edit: Callable[[str], str] = lambda c: c,
    *,
    folded: bool = True,
    template: str = CORE_TEMPLATE,
) -> Path:
    """Render the core with the project's renderer (B's plot, or C's per class; the full modules' with both scales,
    or without the folded one: folded=False; or the course modules' plot: COURSE_TEMPLATE, folded=False) and
    compile it with the driver."""
    out.mkdir(parents=True, exist_ok=True)
    context = {**render.template_context(), "classify": classify, "folded": folded}
    core = render.environment().get_template(template).render(context)
    (out / "plot_core.c").write_text(edit(core))
    defines = {
        "REGION_NAME_MAX": str(fmt.REGION_NAME_MAX),
        "BAND_NONE_NAME": f'"{fmt.BAND_NONE_NAME}"',
        "RECORD_FLAG_CLASS_SHIFT": str(fmt.RECORD_FLAG_CLASS_SHIFT),
        "RECORD_FLAG_CLASS_MASK": str(fmt.RECORD_FLAG_CLASS_MASK),
    }
    argv = [compiler, "-std=gnu11", "-O2", "-Wall", "-Werror", f"-I{out}", f"-I{HOST}"]
    argv += [f"-D{k}={v}" for k, v in defines.items()] + (["-DPLOT_FOLDED"] if folded else [])
    argv += [str(HOST / "driver.c"), "-o", str(out / "driver")]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, f"the plot core does not compile as a host program:\n{done.stderr[-4000:]}"
    return out / "driver"


@pytest.fixture(scope="session")
def compiler() -> str:
    found = shutil.which("gcc") or shutil.which("cc")
    if found is None:
        pytest.skip("no C compiler (gcc or cc) on PATH: install gcc to compare the module's plot C with folded.py")
    return found


@pytest.fixture(scope="session")
def drivers(compiler, tmp_path_factory) -> dict[bool, Path]:
    out = tmp_path_factory.mktemp("plot_host")
    return {classify: build_driver(compiler, out / f"classify{int(classify)}", classify) for classify in (False, True)}


@pytest.fixture(scope="session")
def course_drivers(compiler, tmp_path_factory) -> dict[bool, Path]:
    """The course modules' plot (course/plot.c.j2): the linear scale only (no bands, no region table)."""
    out = tmp_path_factory.mktemp("plot_host_course")
    return {
        c: build_driver(compiler, out / f"classify{int(c)}", c, folded=False, template=COURSE_TEMPLATE)
        for c in (False, True)
    }


def c_lines(drivers: dict[bool, Path], cases: Sequence[Case]) -> list[list[str]]:
    """The lines the C core prints for each case: one driver run per build, all its cases at once."""
    got: dict[int, list[str]] = {}
    for classify, exe in drivers.items():
        mine = [i for i, c in enumerate(cases) if (c.cls is not None) == classify]
        if not mine:
            continue
        text = "".join(cases[i].driver_input() for i in mine)
        done = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=False, timeout=300)
        assert done.returncode == 0, f"{exe} failed: {done.stderr[-2000:]}"
        outputs = done.stdout.split(SET_END)
        assert len(outputs) == len(mine) + 1 and outputs[-1] == "", f"{exe}: {len(outputs) - 1} outputs for {len(mine)}"
        got.update({i: out.removesuffix("\n").split("\n") for i, out in zip(mine, outputs, strict=False)})
    return [got[i] for i in range(len(cases))]


def first_difference(cases: Sequence[Case], got: Sequence[list[str]], keep: Path) -> str | None:
    """None when every case is equal; else the first differing case, readable, its input kept in `keep`."""
    for case, c in zip(cases, got, strict=True):
        py = case.python_lines()
        if c == py:
            continue
        n = next((i for i, (a, b) in enumerate(zip(c, py, strict=False)) if a != b), min(len(c), len(py)))
        saved = keep / f"{case.name.replace('/', '_')}.in"
        saved.write_text(case.driver_input())
        return (
            f"case {case.name} ({len(case.records)} records, {len(case.regions)} regions, scale={case.scale}, "
            f"class={case.cls}): line {n} of the plot differs ({len(c)} lines from C, {len(py)} from Python)\n"
            f"  C:      {c[n] if n < len(c) else '(no line)'!r}\n"
            f"  Python: {py[n] if n < len(py) else '(no line)'!r}\n"
            f"  input (tests/plot_host/driver.c's format): {saved}"
        )
    return None


# ---- the record sets ----


def random_name(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(["[heap]", "[stack]", "[anon]", "[vdso]", "[vvar]", "libc.so.6", "ld-linux-x86-64.so.2"])
    return "".join(rng.choices(NAME_CHARS, k=rng.choice([1, 5, 23, 24, 25, 63])))


def random_times(rng: random.Random, n: int) -> list[int]:
    t0 = rng.choice([0, 1, rng.randrange(2**40), 2**63, TOP])
    span = min(TOP - t0, rng.choice([0, 1, 69, 70, 71, 1000, 999_999, 10**9, 10**13, TOP]))
    return [t0 + rng.getrandbits(64) % (span + 1) for _ in range(n)]


def random_case(rng: random.Random, number: int) -> Case:
    """Regions at low, typical and extreme pages, of any width, often overlapping; records in them, some in no
    region of the table; times anywhere; either scale; B's plot or one of C's."""
    count = rng.choice([0, 1, 1, 2, 3, 5, 8, 15, 16, 17, 30, 60])
    kinds = rng.choices(fmt.REGION_KINDS, k=count)
    regions = table([random_name(rng) for _ in range(count)], kinds)
    spots = []
    for _ in range(max(1, len(regions)) + (rng.random() < 0.2)):
        base = rng.choice([0, rng.randrange(2**10), 0x555555554, 0x7F0000000, 0x7FFFFFFF0, rng.randrange(PAGES)])
        spots.append((base, rng.choice([1, 2, 3, 29, 30, 31, 100, 10_000, 2**30, PAGES])))
    n = rng.choice([1, 2, 3, 5, 10, 30, 100, 300]) if rng.random() < 0.98 else 1000
    outside = [fmt.REGION_NONE, len(regions), 0xFFFE]  # no region: the table was full, or an index it lacks
    records = []
    for t in random_times(rng, n):
        spot = rng.randrange(len(spots))
        base, width = spots[spot]
        bits = rng.getrandbits(64)  # the page within the spot, the byte within the page, the flags
        page = min(base + bits % width, PAGES - 1)
        region = spot if spot < len(regions) else outside[bits % 3]
        records.append(FaultRecord(t, page << 12 | bits >> 40 & 4095, 1, region, 0, bits >> 52 & 15))
    cls = rng.choice([None, None, 0, 1, 2])
    comm = "".join(rng.choices(NAME_CHARS + " ", k=rng.randrange(1, 16))).strip() or "x"
    scale = rng.choice(folded.SCALES)
    return Case(f"random-{number}", tuple(records), regions, scale, cls, rng.randrange(1, 2**22), comm)


def named_cases() -> list[Case]:
    """The edge cases, each on both scales."""
    rng = random.Random(7)
    libs = table(["[heap]", "libc.so.6", "[stack]"])
    hundred = table([f"lib{i}.so" for i in range(100)])
    thousand = table([f"r{i}" for i in range(1000)])
    # gcc's cc1 among its libraries: the program's code (kind code, few faults) and data (kind data) are named
    # first in a band of bigger members; a file mapped twice far apart (ld.so.cache) is two regions, two bands.
    gcc_names = ["[anon]", "cc1", "libc.so.6", "cc1", "[anon]", "libm.so.6", "ld.so.cache", "ld.so.cache", "[heap]"]
    gcc = table(gcc_names, ["anon", "code", "file", "data", "anon", "file", "file", "file", "heap"])
    gcc_spots = [(0x7F00000, 300), (0x7F00350, 2), (0x7F00300, 500), (0x7F00400, 1), (0x7F01000, 80)]
    gcc_spots += [(0x7F01100, 40), (0x7F02000, 3), (0x7F09000, 3), (0x5555000, 100)]
    gcc_records = [
        rec(t, (base + t % width) << 12, r)
        for r, (base, width) in enumerate(gcc_spots)
        for t in range([400, 3, 600, 2, 90, 50, 1, 2, 150][r])
    ]
    members = table([f"m{i}" for i in range(20)] + ["prog"], ["anon"] * 20 + ["code"])
    crowded = [rec(t, (0x1000 + t % 23) << 12, t % 20) for t in range(2100)] + [rec(1, 0x1010 << 12, 20)]
    sets: dict[str, tuple[list[FaultRecord], tuple[Region, ...]]] = {
        "several members, the program among the small": (gcc_records, gcc),
        "a band of more names than fit, the program's last by faults": (crowded, members),
        "one fault": ([rec(5, 0x7F0000001234, 1)], libs),
        "all faults in one page": ([rec(t, 0x7F0000001000 + t % 4096, 1) for t in range(500)], libs),
        "three regions in one page": ([rec(t, 0x55550000, t % 3) for t in range(30)], libs),
        "one band": ([rec(t * 977, (0x7F0000000 + t * 13 % 4000) << 12, 0) for t in range(3000)], libs),
        "100 regions": (
            [rec(t, (0x7F0000000 + (t % 100) * 0x1000 + t % 7) << 12, t % 100) for t in range(5000)],
            hundred,
        ),
        "1000 regions, 15 bands": ([rec(t, (t * 7919 % 10**6) << 20, t % 1000) for t in range(4000)], thousand),
        "a 34 s run: seconds on the axis": (
            [rec(t * 34_017_024, 0x7F0000000000 + t * 4096, 1) for t in range(1001)],
            libs,
        ),
        "just under 10 s: ms": ([rec(0, 0x1000, 0), rec(10**10 - 1, 0x2000, 0)], libs),
        "exactly 10 s: seconds": ([rec(5, 0x1000, 0), rec(10**10 + 5, 0x2000, 0)], libs),
        "huge time span": ([rec(0, 0x1000, 0), rec(TOP, 0x7FFFFFFFF000, 2), rec(TOP // 2, 0x2000, 0)], libs),
        "zero time span": ([rec(123456789, (100 + i) << 12, 0) for i in range(40)], libs),
        "bottom of the address space": ([rec(1, 0, 0), rec(2, 4095, 0), rec(3, 0x3000, 1)], libs),
        "top of the address space": ([rec(1, TOP, 2), rec(2, TOP - 4096, 2), rec(3, 0x1000, 0)], libs),
        "whole address space": ([rec(i, rng.randrange(2**64), i % 3) for i in range(300)], libs),
        "table full": ([rec(t, (t * 37 % 500 + 1000) << 12, [0, fmt.REGION_NONE, 7][t % 3]) for t in range(300)], libs),
        "100 or more per cell": ([rec(t // 300, 0x7F0000000000 + (t % 3) * 4096, 1) for t in range(30000)], libs),
        "long names": ([rec(i, i << 30, i) for i in range(30)], table(["n" * 63, "m" * 24, "k" * 23] * 10)),
        "more records than cells": (
            [rec(rng.randrange(10**10), rng.randrange(2**47), rng.randrange(3)) for _ in range(150_000)],
            libs,
        ),
    }
    cases = []
    for name, (records, regions) in sets.items():
        for scale in folded.SCALES:
            cases.append(Case(f"{name}/{scale}", tuple(records), regions, scale))
    classed = tuple(rec(t, (0x400 + t % 50) << 12, 0, (t % 2) << fmt.RECORD_FLAG_CLASS_SHIFT) for t in range(200))
    cases += [Case(f"class {key}/folded", classed, libs, "folded", c) for c, (key, _) in enumerate(fmt.FAULT_CLASSES)]
    # C's classes one after the other over 20 s: each plot on the run's clock, its marks in its own third
    in_turn = tuple(
        rec(t * 10**8, (0x400 + t % 50) << 12, 0, (t // 67) << fmt.RECORD_FLAG_CLASS_SHIFT) for t in range(201)
    )
    cases += [
        Case(f"classes in turn {key}/{scale}", in_turn, libs, scale, c)
        for c, (key, _) in enumerate(fmt.FAULT_CLASSES)
        for scale in folded.SCALES
    ]
    return cases


# ---- the tests ----


@pytest.mark.parametrize("case", named_cases(), ids=lambda c: c.name)
def test_named_edge_cases_draw_alike(drivers, case, tmp_path):
    difference = first_difference([case], c_lines(drivers, [case]), tmp_path)
    assert difference is None, difference


def test_thousands_of_random_record_sets_draw_alike(drivers, tmp_path):
    rng = random.Random(21)
    cases = [random_case(rng, i) for i in range(GENERATED)]
    difference = first_difference(cases, c_lines(drivers, cases), tmp_path)
    assert difference is None, difference


def linear(cases: Iterable[Case]) -> list[Case]:
    return [c for c in cases if c.scale == "linear"]


@pytest.mark.parametrize("case", linear(named_cases()), ids=lambda c: c.name)
def test_the_course_modules_linear_plot_draws_alike(course_drivers, case, tmp_path):
    difference = first_difference([case], c_lines(course_drivers, [case]), tmp_path)
    assert difference is None, difference


def test_random_record_sets_draw_alike_in_the_course_modules(course_drivers, tmp_path):
    rng = random.Random(22)
    cases = linear(random_case(rng, i) for i in range(GENERATED // 3))
    difference = first_difference(cases, c_lines(course_drivers, cases), tmp_path)
    assert difference is None, difference


def test_the_course_plot_has_no_folded_scale(course_drivers):
    """The course modules' plot has no bands, no region table, no plot_folded: the linear scale the assignment asks."""
    core = (course_drivers[False].parent / "plot_core.c").read_text()
    assert "plot_band" not in core and "plot_folded" not in core and "region_name" not in core
    assert "static unsigned long plot_fill(" in core and "scale_to_cell(" in core


@pytest.mark.parametrize("template", [CORE_TEMPLATE, COURSE_TEMPLATE])
def test_a_changed_rounding_in_the_c_is_caught(compiler, tmp_path, template):
    """The comparison can fail: the C's middle cell for a span of 0 moved from (cells - 1) / 2 to cells / 2."""
    original = "return (cells - 1) / 2;"

    def edit(core: str) -> str:
        assert original in core, "scale_to_cell() changed: update this test's edit"
        return core.replace(original, "return cells / 2;")

    course = template == COURSE_TEMPLATE
    exe = build_driver(compiler, tmp_path / "changed", classify=False, edit=edit, folded=not course, template=template)
    scale = "linear" if course else "folded"
    case = Case("one fault", (rec(5, 0x7F0000001234, 0),), table(["[heap]"]), scale=scale)
    difference = first_difference([case], c_lines({False: exe}, [case]), tmp_path)
    assert difference is not None and "of the plot differs" in difference, "the comparison missed a changed rounding"
