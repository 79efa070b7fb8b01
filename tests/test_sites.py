"""Fault sites on the host (issue 26): IPs in real ELF files built here (tests/programs/sites.c, a C++ file, a
stripped copy) named by function, the oracle being the symbol tables `nm` prints; the tables, histograms and the
`pfharness sites` command over a run directory."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pfharness import proc
from pfharness.cli import app
from pfharness.results import elf_symbols, records_table, sites, sites_view
from pfharness.results import output_format as fmt
from pfharness.results.records_file import FaultRecord, Region, records_bytes, region_line

PROGRAM = Path(__file__).parent / "programs" / "sites.c"
BASE = 0x5555_5555_4000  # where the program's first page is mapped (a PIE's load address)
ANON = 0x7F00_0000_0000
PID = 4242


def build(tmp_path: Path, source: Path, compiler: str = "gcc", *extra: str) -> Path:
    binary = tmp_path / source.stem
    result = proc.run([compiler, "-O1", "-o", binary, source, *extra], merge_stderr=True)
    assert result.returncode == 0, result.stdout
    return binary


def nm(binary: Path) -> dict[str, int]:
    """The oracle: each function symbol's address, as binutils' nm gives it."""
    out = proc.run(["nm", "--defined-only", binary]).stdout.split("\n")
    return {parts[2]: int(parts[0], 16) for parts in (line.split() for line in out) if len(parts) == 3}


def code_region(binary: Path, index: int = 0) -> Region:
    """The program's code as the module's region table gives it: the text vma, at file offset 0x1000."""
    return Region(index, "code", BASE + 0x1000, BASE + 0x2000, 0, binary.name, 0x1000, str(binary))


def record(ip: int, page: int, *, major: bool = False, access: int = 1, service: int = 1000) -> FaultRecord:
    flags = fmt.RECORD_FLAG_MAJOR if major else 0
    return FaultRecord(page, ANON + page * 4096, PID, 1, access, flags, PID, 1, ip, service)


def oracle_records(binary: Path) -> list[FaultRecord]:
    """100 faults at touch_100, 300 at touch_300, 64 major reads at read_file, 2 without an IP."""
    at = {name: BASE + addr + 4 for name, addr in nm(binary).items()}  # an instruction inside each
    records = [record(at["touch_100"], i, service=800 + i) for i in range(100)]
    records += [record(at["touch_300"], 100 + i, service=600 + i) for i in range(300)]
    records += [record(at["read_file"], 400 + i, major=True, access=0, service=50_000 + i) for i in range(64)]
    no_ip = fmt.RECORD_FLAG_NO_IP
    return [*records, *(FaultRecord(1, ANON, PID, 1, 1, no_ip, PID, 1, 0, 5) for _ in range(2))]


def oracle_sites(tmp_path: Path) -> sites.Sites:
    binary = build(tmp_path, PROGRAM)
    regions = [code_region(binary), Region(1, "anon", ANON, ANON + (1 << 22), 466, "[anon]")]
    return sites.sites(records_table.from_tuples(oracle_records(binary)), regions)


def test_each_function_gets_exactly_its_faults(tmp_path):
    view = oracle_sites(tmp_path)
    by_name = {r.function: r for r in view.functions}
    assert {name: by_name[name].faults for name in ("touch_300", "touch_100", "read_file", sites.NO_IP)} == {
        "touch_300": 300,
        "touch_100": 100,
        "read_file": 64,
        sites.NO_IP: 2,
    }
    assert [r.function for r in view.functions] == ["touch_300", "touch_100", "read_file", sites.NO_IP]
    read = by_name["read_file"]
    assert (read.major, read.read, read.write, read.library) == (64, 64, 0, "sites")
    assert (by_name["touch_100"].write, by_name["touch_100"].major) == (100, 0)
    assert by_name["touch_100"].median_ns == (849 + 850) // 2 and by_name["touch_300"].total_ns == sum(range(600, 900))
    assert read.median_ns > by_name["touch_100"].median_ns
    assert [(r.library, r.faults) for r in view.libraries] == [("sites", 464), (sites.NO_IP, 2)]
    assert (
        view.faults == 466
        and view.total_ns == sum(range(800, 900)) + sum(range(600, 900)) + sum(range(50_000, 50_064)) + 2 * 5
    )


def test_histograms_are_log2_buckets_per_kind(tmp_path):
    view = oracle_sites(tmp_path)
    major = view.histograms["major"]
    assert [(b.low_ns, b.high_ns, b.count) for b in major] == [(32768, 65536, 64)]
    minor = view.histograms["minor"]
    assert sum(b.count for b in minor) == 402 and minor[0].low_ns == 4 and minor[-1].high_ns == 1024
    assert [b.low_ns for b in minor] == [4, 8, 16, 32, 64, 128, 256, 512]
    assert view.histograms["exec"] == []
    assert sites.histogram(np.array([0, 1, 2, 3], dtype=np.uint64)) == [sites.Bucket(0, 2, 2), sites.Bucket(2, 4, 2)]


def test_the_slowest_faults_name_their_site(tmp_path):
    slow = oracle_sites(tmp_path).slowest
    assert len(slow) == sites.SLOWEST and slow[0].service_ns == 50_063
    assert {(f.function, f.major, f.access) for f in slow} == {("read_file", True, "read")}


def test_a_stripped_file_names_its_sites_by_offset(tmp_path):
    binary = build(tmp_path, PROGRAM)
    functions = nm(binary)
    stripped = tmp_path / "stripped"
    shutil.copy(binary, stripped)
    assert proc.run(["strip", stripped]).returncode == 0
    symbols = elf_symbols.load(str(stripped))
    assert symbols.function(functions["touch_100"]) is None
    ip = BASE + functions["touch_100"] + 4
    table = records_table.from_tuples([record(ip, 0)])
    [row, *_] = sites.sites(table, [code_region(stripped)]).functions
    assert row.function == f"stripped+{functions['touch_100'] + 4:#x}"


def test_cxx_names_are_demangled(tmp_path):
    if shutil.which("g++") is None or shutil.which("c++filt") is None:
        pytest.skip("g++ and c++filt (build-essential) are not installed")
    source = tmp_path / "cxx.cc"
    source.write_text("namespace ns { int twice(int x) { return 2 * x; } }\nint main() { return ns::twice(0); }\n")
    binary = build(tmp_path, source, "g++")
    address = nm(binary)["_ZN2ns5twiceEi"]
    assert elf_symbols.load(str(binary)).function(address) == "ns::twice(int)"


def test_missing_or_not_elf_files_give_no_symbols(tmp_path):
    (tmp_path / "text").write_text("not ELF")
    assert elf_symbols.load(str(tmp_path / "text")).function(0) is None
    assert elf_symbols.load(str(tmp_path / "gone")).table == ""


def test_sites_command_text_and_json(tmp_path):
    binary = build(tmp_path, PROGRAM)
    run = tmp_path / "run"
    (run / "guest").mkdir(parents=True)
    (run / "guest" / "records").write_bytes(records_bytes(oracle_records(binary)))
    regions = [code_region(binary), Region(1, "anon", ANON, ANON + (1 << 22), 466, "[anon]")]
    (run / "guest" / "regions").write_text("".join(region_line(r) + "\n" for r in regions))
    runner = CliRunner()
    text = runner.invoke(app, ["sites", str(run)])
    assert text.exit_code == 0, text.output
    assert "     300      0       0     300      0" in text.output and "touch_300 (sites)" in text.output
    assert "@major (service time, ns):" in text.output
    data = json.loads(runner.invoke(app, ["sites", str(run), "--json", "--top", "2"]).output)
    assert [(r["function"], r["faults"]) for r in data["functions"]] == [("touch_300", 300), ("touch_100", 100)]
    line = sites_view.summary_line(sites.sites(records_table.from_tuples(oracle_records(binary)), regions))
    assert line.startswith("top sites:       touch_300 (sites) 300, touch_100 (sites) 100, read_file (sites) 64;")


def test_sites_of_a_version_1_run_is_refused_in_one_line(tmp_path):
    run = tmp_path / "run"
    (run / "guest").mkdir(parents=True)
    (run / "guest" / "records").write_bytes(records_bytes([FaultRecord(0, 0, 1, 0, 0, 0)], version=1))
    result = CliRunner().invoke(app, ["sites", str(run)])
    assert result.exit_code == 2 and "fault sites need version 2" in result.output


def test_histograms_png_and_flame_svg(tmp_path):
    pytest.importorskip("matplotlib")
    binary = build(tmp_path, PROGRAM)
    run = tmp_path / "run"
    (run / "guest").mkdir(parents=True)
    (run / "guest" / "records").write_bytes(records_bytes(oracle_records(binary)))
    (run / "guest" / "regions").write_text(region_line(code_region(binary)) + "\n")
    png, svg = tmp_path / "h.png", tmp_path / "f.svg"
    result = CliRunner().invoke(app, ["sites", str(run), "--png", str(png), "--svg", str(svg)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    assert all(f"{name} (" in text for name in ("touch_300", "touch_100", "read_file", "sites"))
    bad = CliRunner().invoke(app, ["sites", str(run), "--svg", str(tmp_path / "f.png")])
    assert bad.exit_code != 0 and "must end in .svg" in bad.output


def test_the_run_summary_line_needs_version_2_records(tmp_path):
    from pfharness.results import run_dir, text

    binary = build(tmp_path, PROGRAM)
    saved = run_dir.SavedRecords.of(oracle_records(binary), 0, [code_region(binary)])
    [line] = text.sites_line(saved)
    assert line.startswith("top sites:       touch_300 (sites) 300, touch_100 (sites) 100, read_file (sites) 64;")
    assert line.endswith(" in 466 faults")
    old = run_dir.SavedRecords(saved.table, 0, saved.regions, version=1)
    assert text.sites_line(old) == [] and text.sites_line(run_dir.SavedRecords.of([], 0)) == []


def test_a_stripped_file_is_named_from_its_debug_file_found_by_build_id(tmp_path, monkeypatch):
    binary = build(tmp_path, PROGRAM)
    functions = nm(binary)
    build_id = proc.run(["readelf", "-n", binary]).stdout.split("Build ID: ")[1].split()[0]
    debug = tmp_path / "debug" / ".build-id" / build_id[:2] / f"{build_id[2:]}.debug"
    debug.parent.mkdir(parents=True)
    assert proc.run(["objcopy", "--only-keep-debug", binary, debug]).returncode == 0
    stripped = tmp_path / "stripped-with-debug"
    assert proc.run(["strip", "-o", stripped, binary]).returncode == 0
    monkeypatch.setattr(elf_symbols, "DEBUG_ROOT", tmp_path / "debug")
    symbols = elf_symbols.load.__wrapped__(str(stripped))
    assert symbols.table == "debug .symtab"
    assert symbols.function(functions["read_file"] + 4) == "read_file"


def test_a_regions_path_that_is_no_regular_file_is_not_opened(tmp_path):
    """The path comes from the guest: a FIFO (which would block), a device or a relative path give no symbols."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero", "relative/lib.so"):
        assert elf_symbols.load(path).table == "" and elf_symbols.load(path).function(0) is None


def readelf_functions(path: Path, table: str) -> list[tuple[int, int, str]]:
    """The oracle: binutils' readelf's defined FUNC symbols with an address in `table` (.symtab or .dynsym),
    in its order; .dynsym names without the @VERSION readelf adds to them."""
    out = proc.run(["readelf", "-W", "--syms", path]).stdout
    found, inside = [], False
    for line in out.splitlines():
        if line.startswith("Symbol table "):
            inside = line.startswith(f"Symbol table '{table}'")
            continue
        parts = line.split()
        if inside and len(parts) >= 8 and parts[0].endswith(":") and parts[3] == "FUNC" and parts[6] != "UND":
            name = parts[7].split("@")[0] if table == ".dynsym" else parts[7]
            if int(parts[1], 16):
                found.append((int(parts[1], 16), int(parts[2], 0), name))
    return found


def test_function_symbols_are_readelfs(tmp_path):
    """elf_file reads the symbol tables as readelf does: a program built here, libc's .dynsym and (with
    libc6-dbg) the .symtab of libc's debug file, found by build id."""
    from pfharness.results.elf_file import ElfFile

    binary = build(tmp_path, PROGRAM)
    libc = Path("/usr/lib/x86_64-linux-gnu/libc.so.6")
    cases = [(binary, ".symtab"), (libc, ".dynsym")]
    with open(libc, "rb") as f:
        build_id = ElfFile(f).build_id()
    assert build_id and build_id in proc.run(["readelf", "-n", libc]).stdout
    debug = elf_symbols.DEBUG_ROOT / ".build-id" / build_id[:2] / f"{build_id[2:]}.debug"
    if debug.is_file():
        cases.append((debug, ".symtab"))
    for path, table in cases:
        with open(path, "rb") as f:
            mine = elf_symbols._function_symbols(ElfFile(f), table)
        assert mine == readelf_functions(path, table) and len(mine) > 3, (path, table)
    segments = elf_symbols.load.__wrapped__(str(binary)).segments
    headers = [line.split() for line in proc.run(["readelf", "-lW", binary]).stdout.splitlines()]
    loads = [(int(h[1], 16), int(h[2], 16), int(h[4], 16)) for h in headers if h[:1] == ["LOAD"]]
    assert [(s.offset, s.vaddr, s.size) for s in segments] == loads and loads


def test_symbols_come_back_from_the_cache_as_parsed_and_a_changed_file_is_read_again(tmp_path, monkeypatch):
    """What a file gave is kept in the cache (symbols/) and read back the same, names and segments too; the
    same path with other contents is parsed again, not answered from the cache."""
    monkeypatch.setenv("PFHARNESS_CACHE", str(tmp_path / "cache"))
    lib = tmp_path / "libc.so.6"
    shutil.copyfile("/lib/x86_64-linux-gnu/libc.so.6", lib)
    elf_symbols.load.cache_clear()
    parsed = elf_symbols.load(str(lib))
    assert len(parsed.starts) > 1000 and parsed.table and parsed.segments
    assert len(list((tmp_path / "cache" / "symbols").glob("*.npz"))) == 1
    elf_symbols.load.cache_clear()
    monkeypatch.setattr(elf_symbols, "_read", lambda path: pytest.fail("parsed again instead of read from the cache"))
    assert elf_symbols.load(str(lib)) == parsed
    monkeypatch.undo()
    monkeypatch.setenv("PFHARNESS_CACHE", str(tmp_path / "cache"))
    shutil.copyfile("/bin/true", lib)  # another file at the same path
    elf_symbols.load.cache_clear()
    other = elf_symbols.load(str(lib))
    assert other != parsed and other.starts != parsed.starts
    elf_symbols.load.cache_clear()
