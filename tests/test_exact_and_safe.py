"""Issue "Prove the modules exact and safe": oracle workloads whose faults are known,
hostile inputs, two CPUs at once, and the kernel splat scan. All in the shared VM
(TCG, 2 vCPUs); every step's kernel log is scanned for splats."""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import pytest
from conftest import traced

from pfharness import step
from pfharness.results import module_output, output_format, protocol, splat
from pfharness.results import text as text_output

pytestmark = [pytest.mark.vm, pytest.mark.core]
GUEST = Path(__file__).parent / "guest"

# The oracle for whole-process capture is the process's own count, ru_minflt +
# ru_majflt at its very end (tests/programs/exact_end.h: nothing faults after it
# is taken), less the faults the held shell took between fork and its stop
# (before the module was loaded; run_step.sh reads them from /proc/PID/stat).
# The modules count completed faults as the kernel does (mm_account_fault():
# not VM_FAULT_RETRY attempts, not VM_FAULT_ERROR), so the two must be equal.


def own_count(result) -> int:
    """The workload's own fault count over the traced span."""
    return rusage_faults(result.workload_output) - result.pre_exec_faults


def assert_exact(result) -> None:
    """Records (and faults past the capacity) equal the process's own count, and the probe missed nothing."""
    r = result.report
    c = r.counts
    assert c is not None and c.exact and result.exact(), c
    assert c.completed == r.recorded + r.dropped and c.remote == 0
    assert c.read + c.write + c.exec == c.completed == c.major + c.minor
    assert r.recorded + r.dropped == own_count(result), (r.recorded, r.dropped, own_count(result), c)


def guest_script(vm, script, *args, timeout=120.0):
    """Run a tests/guest helper untraced; return its output and the kernel records it printed."""
    shell = vm.run(["sh", str(GUEST / script), *map(str, args)], stage=script, timeout=timeout)
    # the helper scripts print their kernel log records between their own kmsg markers on the console
    section = shell.output.split("##PFH## kmsg-begin\n", 1)[-1].split("##PFH## kmsg-end", 1)[0]
    records = [r for line in section.splitlines() if (r := protocol.parse_kmsg_line(line)) is not None]
    messages = [r.message for r in records]
    assert not splat.scan(messages), splat.scan(messages)
    return shell.output, messages


def regions(output: str) -> list[tuple[int, int]]:
    return [(int(a, 16), int(b, 16)) for a, b in re.findall(r"region=0x([0-9a-f]+)-0x([0-9a-f]+)", output)]


def rusage_faults(output: str) -> int:
    return int(re.search(r"rusage_faults=(\d+)", output).group(1))


def in_range(records, start, end):
    return [r for r in records if start <= r.address < end]


@pytest.mark.parametrize("module", ["B", "C"])
def test_n_fresh_pages_are_recorded_exactly(vm, built_modules, programs, module):
    n = 300
    result = traced(vm, built_modules, module, programs["touch_pages"], n, params=("dump_records=1",))
    r = result.report
    assert len(r.records) == r.recorded == r.records_announced and r.dropped == 0
    [(start, end)] = regions(result.workload_output)
    mine = in_range(r.records, start, end)
    pages = [rec.address >> 12 for rec in mine]
    assert pages == list(range(start >> 12, end >> 12)), "each page once, in address order"
    times = [rec.t_ns for rec in mine]
    assert times == sorted(times), "in time order"
    if module == "C":
        assert {rec.fault_class for rec in mine} == {"other"}
    assert {(rec.access, rec.major, rec.tgid) for rec in mine} == {("write", False, result.pid)}
    assert len({rec.region for rec in mine}) == 1, "one anonymous region"
    rusage = rusage_faults(result.workload_output)
    print(
        f"{module}: N={n} in_region={len(mine)} whole_process={r.recorded} rusage_minflt+majflt={rusage} "
        f"pre_exec={result.pre_exec_faults} own_count={own_count(result)} counts={r.counts}"
    )
    assert_exact(result)


def test_every_thread_is_recorded_on_two_cpus(vm, built_modules, programs):
    """T threads x P pages, faulting on both vCPUs at once: no lost slot, no torn record."""
    threads, pages = 4, 1500
    result = traced(vm, built_modules, "B", programs["touch_pages"], pages, threads, params=("dump_records=1",))
    r = result.report
    assert len(r.records) == r.recorded == r.records_announced and r.dropped == 0
    assert [rec.index for rec in r.records] == list(range(r.recorded)), "every slot once"
    found = regions(result.workload_output)
    assert len(found) == threads
    for start, end in found:
        mine = in_range(r.records, start, end)
        assert sorted(rec.address >> 12 for rec in mine) == list(range(start >> 12, end >> 12))
    span = max(rec.t_ns for rec in r.records)
    assert all(0 <= rec.t_ns <= span for rec in r.records)
    assert sum(len(in_range(r.records, s, e)) for s, e in found) == threads * pages
    print(f"threads: {threads}x{pages} recorded={r.recorded} own_count={own_count(result)} counts={r.counts}")
    assert_exact(result)


def test_a_full_region_table_is_counted_and_its_faults_form_the_question_band(vm, built_modules, programs):
    """max_regions=3: the first three regions fill the table; every later fault is recorded with region 0xffff,
    counted as full, and drawn in one band named '?'."""
    result = traced(vm, built_modules, "B", programs["touch_pages"], 50, params=("max_regions=3", "dump_records=1"))
    r = result.report
    assert r.regions_used == 3 and r.regions_capacity == 3 and r.regions_full > 50
    none = [rec for rec in r.records if rec.region == output_format.REGION_NONE]
    assert len(none) == r.regions_full and all(rec.region < 3 for rec in r.records if rec not in none)
    [plot] = r.plots
    # A band is named by its members (docs/folded-plot.md): the '?' band may hold others beside it.
    [question] = [b for b in plot.bands if output_format.BAND_NONE_NAME in b.name.rstrip("+").split(",")]
    assert question.faults >= r.regions_full
    assert_exact(result)


def test_more_faults_than_capacity_are_counted_as_dropped(vm, profile_modules, programs):
    result = traced(vm, profile_modules, "B", programs["touch_pages"], 600, params=("max_records=100",))
    r = result.report
    assert r.recorded == 100 and r.capacity == 100 and r.dropped > 500
    assert_exact(result)
    assert any("faults were dropped because the buffer was full" in line for line in r.lines)
    assert f"dropped {r.dropped}" in "\n".join(text_output.summary_lines(result))
    assert result.to_json()["counters"]["dropped"] == r.dropped
    assert result.report.plots[0].faults == 100


def read_proc_files(output: str) -> tuple[list[tuple], list[dict]]:
    """The records and regions files the workload printed in hex (tests/programs/kinds.c)."""
    files = dict(re.findall(r"^proc (\w+) ([0-9a-f]*)$", output, re.M))
    raw = bytes.fromhex(files["records"])
    magic, header_size, record_size, count, dropped = output_format.RECORDS_HEADER.unpack_from(raw)
    assert magic == output_format.RECORDS_MAGIC and header_size == output_format.RECORDS_HEADER.size
    assert record_size == output_format.RECORD.size and dropped == 0
    assert len(raw) == header_size + count * record_size
    records = [output_format.RECORD.unpack_from(raw, header_size + i * record_size) for i in range(count)]
    text = bytes.fromhex(files["regions"]).decode()
    regions = [output_format.TABLE_LINES["region"].parse(line) for line in text.splitlines()]
    assert all(regions) and [g["index"] for g in regions] == list(range(len(regions)))
    return records, regions


@pytest.mark.parametrize("module", ["B", "C"])
def test_access_kinds_major_faults_and_the_proc_files(vm, built_modules, programs, module):
    """Reads of a file mapping whose pages were dropped (major), writes of anonymous memory, calls of code
    on fresh pages: each recorded with its kind; the /proc files give the same records and name the regions."""
    n = 12
    name = f"pf_probe_{module}"
    result = traced(
        vm, built_modules, module, programs["kinds"], programs["kinds.dat"], n, name, params=("dump_records=1",)
    )
    r = result.report
    out = result.workload_output
    ranges = {k: (int(a, 16), int(b, 16)) for k, a, b in re.findall(r"(\w+)=0x([0-9a-f]+)-0x([0-9a-f]+)", out)}
    kinds = {}
    for kind in ("read", "write", "exec"):
        mine = in_range(r.records, *ranges[kind])
        kinds[kind] = mine
        assert len(mine) == n, (kind, len(mine))
        assert {rec.access for rec in mine} == {kind}
    assert all(rec.major for rec in kinds["read"]), "pages read in from the file: major"
    assert not any(rec.major for rec in kinds["write"] + kinds["exec"])
    c = r.counts
    print(f"{module} kinds: counts={c} own_count={own_count(result)}")
    assert c.major >= n and c.exec >= n and c.write >= n
    assert_exact(result)

    records, regions = read_proc_files(out)
    # The file snapshot was taken while the workload ran: a prefix of what the module dumped at unload.
    assert 0 < len(records) <= r.recorded
    for raw, rec in zip(records, r.records, strict=False):
        _t_ns, address, tgid, region, access, flags, tid, exec_seq, ip, service_ns = raw
        assert (address, tgid, region) == (rec.address, rec.tgid, rec.region)
        assert (
            output_format.ACCESS_KINDS[access] == rec.access
            and bool(flags & output_format.RECORD_FLAG_MAJOR) == rec.major
        )
        assert (tid, exec_seq, ip, service_ns) == (rec.tid, rec.exec_seq, rec.ip, rec.service_ns)
    by_kind = {kind: {regions[rec.region]["kind"] for rec in kinds[kind]} for kind in kinds}
    names = {kind: {regions[rec.region]["name"] for rec in kinds[kind]} for kind in kinds}
    assert by_kind == {"read": {"file"}, "write": {"anon"}, "exec": {"file"}}, by_kind
    assert names["read"] == {"kinds.dat"} and names["exec"] == {"memfd:kinds-code"}, names
    program = [g for g in regions if g["kind"] == "code"]
    assert [g["name"] for g in program] == ["kinds"]
    # The file mapped twice more, 64 and 128 MiB below (kinds.c): three regions, none stretched over a gap.
    again = [in_range(r.records, *ranges[k]) for k in ("twice", "again")]
    assert [len(a) for a in again] == [1, 1], again
    apart = {kinds["read"][0].region, again[0][0].region, again[1][0].region}
    assert len(apart) == 3 and {regions[i]["name"] for i in apart} == {"kinds.dat"}, apart
    assert (regions[kinds["read"][0].region]["start"], regions[kinds["read"][0].region]["end"]) == ranges["read"]
    assert {g["kind"] for g in regions} >= {"code", "data", "heap", "stack", "file", "anon", "vdso"}


@pytest.mark.parametrize("scale", ["folded", "linear"])
def test_both_plot_scales(vm, built_modules, programs, scale):
    n = 300
    result = traced(vm, built_modules, "B", programs["touch_pages"], n, params=(f"plot_scale={scale}",))
    [plot] = result.report.plots
    assert plot.complete and plot.scale == scale and plot.outside == 0 and len(plot.rows) == 30
    assert plot.faults == result.report.recorded
    if scale == "linear":
        assert not plot.bands and not plot.cuts and not plot.row_bands
        assert sorted(plot.y_labels) == [0, 10, 20, 29]
        return
    bands = plot.bands
    assert 2 <= len(bands) <= 15 and sum(b.faults for b in bands) == plot.faults
    assert sum(b.rows for b in bands) <= 30 and all(b.rows >= 1 for b in bands)
    assert all(a.pmax < b.pmin for a, b in itertools.pairwise(bands)), "bands in page order, disjoint"
    assert all(b.rows <= b.pmax - b.pmin + 1 for b in bands)
    # Each band is named on its top row, and the axis is cut ('~') once below every band but the lowest.
    assert sorted(plot.row_bands.values()) == sorted(b.name for b in bands)
    assert len(plot.cuts) == len(bands) - 1
    [region] = regions(result.workload_output)
    holding = [b for b in bands if b.pmin <= region[0] >> 12 and (region[1] >> 12) - 1 <= b.pmax]
    assert len(holding) == 1 and holding[0].faults >= n and holding[0].rows >= 10, bands
    names = {name for b in bands for name in b.name.rstrip(output_format.BAND_MORE).split(",")}
    assert {"touch_pages", "[stack]"} <= names, names


def test_c_puts_each_segment_into_its_plot(vm, built_modules, programs):
    data_pages, stack_pages = 64, 120
    result = traced(vm, built_modules, "C", programs["segments"], data_pages, stack_pages, params=("dump_records=1",))
    out = result.workload_output
    data = [int(x, 16) for x in re.search(r"data=0x([0-9a-f]+)-0x([0-9a-f]+)", out).groups()]
    code = [int(x, 16) for x in re.search(r"code=0x([0-9a-f]+)-0x([0-9a-f]+)", out).groups()]
    by_class = {p.plot_class: p.faults for p in result.report.plots}
    records = result.report.records
    data_recs = in_range(records, *data)
    # Every page of the array faults on its write; a page the loader had already mapped
    # read-only (fault-around of a neighbouring read) faults a second time for the copy.
    assert len({r.address >> 12 for r in data_recs}) == data_pages and len(data_recs) <= data_pages + 4
    assert {r.fault_class for r in data_recs} == {"data"}
    code_recs = in_range(records, *code)
    assert len({r.address >> 16 for r in code_recs}) == 16 and {r.fault_class for r in code_recs} == {"code"}
    print(f"C segments: plots {by_class}; data array {len(data_recs)}, code functions {len(code_recs)}")
    assert data_pages <= by_class["data"] <= data_pages + 10
    assert 16 <= by_class["code"] <= 16 + 20
    assert by_class["other"] >= stack_pages
    stack = [r for r in records if r.fault_class == "other" and r.address > 0x7F0000000000]
    assert len(stack) >= stack_pages


# ---- hostile inputs: a clear message, a non-zero status, no splat ----


def load_messages(vm, built_modules, *params, module="B"):
    output, messages = guest_script(vm, "try_load.sh", built_modules.modules[module], *params)
    status = int(re.search(r"insmod_status=(\d+)", output).group(1))
    return status, [m for m in messages if m.startswith(f"pf_probe_{module}: ")]


@pytest.mark.parametrize(
    "params, expected",
    [
        ((), r"tpid=0 is not a valid process id: load with tpid=<pid>"),
        (("tpid=0",), r"tpid=0 is not a valid process id"),
        (("tpid=-1",), r"tpid=-1 is not a valid process id"),
        (("tpid=999999",), r"no process with pid 999999: start the process first"),
        (("tpid=2",), r"pid 2 is a kernel thread, which has no user memory"),
        (("tpid=1", "max_records=0"), r"max_records=0 is out of range: use 1\.\.16777216"),
        (("tpid=1", "max_records=99999999999"), r"max_records=99999999999 is out of range"),
    ],
)
def test_bad_parameters_are_refused_clearly(vm, profile_modules, params, expected):
    assert_refused(vm, profile_modules, params, expected)


@pytest.mark.parametrize(
    "params, expected",
    [
        (("tpid=1", "plot_scale=log"), r"plot_scale=log is not a scale: use folded or linear"),
        (("tpid=1", "max_regions=0"), r"max_regions=0 is out of range: use 1\.\.16384"),
    ],
)
def test_bad_parameters_of_the_full_modules_are_refused_clearly(vm, built_modules, params, expected):
    """Parameters the course modules do not have (docs/modules.md)."""
    assert_refused(vm, built_modules, params, expected)


def assert_refused(vm, modules, params, expected) -> None:
    status, messages = load_messages(vm, modules, *params)
    print(params, "->", messages)
    assert status != 0
    assert any(re.search(expected, m) for m in messages), messages


def test_zombie_is_refused(vm, profile_modules):
    output, messages = guest_script(vm, "zombie_load.sh", profile_modules.modules["C"])
    assert int(re.search(r"insmod_status=(\d+)", output).group(1)) != 0
    zombie = re.search(r"zombie=(\d+)", output).group(1)
    assert any(f"process {zombie} has already exited" in m for m in messages), messages


def test_a_refused_load_is_a_harness_error_with_the_modules_reason(vm, built_modules):
    """insmod refused (here: a bad parameter) -> exit status 122 and the module's own reason; the held
    workload never runs. (A process gone before the load, "no process with pid", is refused by the module
    itself: test_bad_parameters_are_refused_clearly. Through a step it is only reachable with --no-hold,
    where whether `true` is gone before insmod is a race, as in the course's own script.)"""
    result = step.trace(
        vm, step.TraceRequest("B", built_modules.modules["B"], ("echo", "ran"), params=("max_records=0",))
    )
    error = result.verdict.error
    assert result.insmod_status != 0 and error is not None and error.exit_status == 122
    assert "max_records=0 is out of range" in str(error) and not result.splats
    assert "ran" not in result.workload_output


def test_command_not_found(vm, built_modules):
    result = step.trace(vm, step.TraceRequest("B", built_modules.modules["B"], ("no-such-command-pfh",)))
    assert result.not_found and result.verdict.exit_status == 127
    assert "command not found" in str(result.verdict.error)


def test_workload_that_exits_at_once(vm, built_modules):
    result = traced(vm, built_modules, "B", "true")
    assert result.workload_status == 0 and result.report.recorded > 0 and result.verdict.exit_status == 0


def test_workload_killed_by_a_signal(vm, built_modules):
    result = traced(vm, built_modules, "C", "sh", "-c", "kill -KILL $$")
    assert result.workload_status == 128 + 9 and result.verdict.exit_status == 137
    assert result.report.recorded > 0


def test_arguments_reach_the_workload_byte_exact(vm, built_modules):
    args = [
        "two words",
        'it\'s "quoted"',
        "$HOME",
        "*",
        "line1\nline2",
        "naïve",
        os.fsdecode(b"\xff\xfe raw"),
        "",
        "\t-tab",
    ]
    script = "import sys; print('ARGV=' + ','.join(a.encode('utf-8', 'surrogateescape').hex() for a in sys.argv[1:]))"
    result = traced(vm, built_modules, "A", "python3", "-c", script, *args)
    got = re.search(r"ARGV=(.*)", result.workload_output).group(1).split(",")
    assert got == [a.encode("utf-8", "surrogateescape").hex() for a in args]


@pytest.mark.parametrize("module", ["B", "C"])
def test_unload_while_the_workload_faults_hard(vm, profile_modules, programs, module):
    output, messages = guest_script(
        vm, "unload_while_faulting.sh", profile_modules.modules[module], programs["touch_pages"], 100000, timeout=120
    )
    assert "still_running_at_rmmod=1" in output, "the workload ended before the unload: make it longer"
    assert "rmmod_status=0" in output and "workload_status=0" in output
    report = module_output.parse_module_output(messages, f"pf_probe_{module}")
    assert report.recorded > 0 and all(p.complete and p.outside == 0 for p in report.plots)


def test_load_and_unload_50_times(vm, profile_modules):
    output, messages = guest_script(vm, "load_unload_loop.sh", profile_modules.modules["C"], 50)
    assert "cycles_ok=50" in output
    summaries = [m for m in messages if m.startswith("pf_probe_C: summary pid=") and "recorded=" in m]
    assert len(summaries) == 50


# ---- the splat scan ----


def test_a_kernel_warning_fails_the_run(vm, built_modules, warn_module):
    """A test-only module WARNs while the traced workload runs: the run must fail, showing the lines."""
    request = step.TraceRequest("B", built_modules.modules["B"], ("insmod", str(warn_module)))
    result = step.trace(vm, request)
    assert result.workload_status == 0
    assert any("WARNING:" in s for s in result.splats), result.kernel_messages[-30:]
    error = result.verdict.error
    assert error.exit_status == 125 and "deliberate warning" in "\n".join(result.kernel_messages)
    assert "WARNING:" in str(error)
    assert result.to_json()["kernel_warnings"] == result.splats
    vm.run(["rmmod", "pfh_warn"], stage="cleanup", timeout=60)
