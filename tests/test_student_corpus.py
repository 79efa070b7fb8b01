"""The module check's test corpus (tests/student_modules, issue 22): small student-style modules,
each with the findings `pfharness check` must give in its expected.toml. These tests prove, with the
real compiler and the real kernel, that each case does what it claims, so the check has a ground truth:
the API breaks fail to build with the error the finding names, every other case builds, and each runtime
defect shows in a VM the way its finding expects (the kernel's own lines)."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from pfharness import proc, step
from pfharness.check.findings import STAGES, ApiChange, Finding
from pfharness.errors import VmLost, VmTimeout
from pfharness.kmod import toolchain

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")

CORPUS = Path(__file__).parent / "student_modules"
SERIES = {"5.10", "6.1", "6.1-rt", "6.12", "7.2"}  # the kernel matrix (KERNELS.md)
CASE_KEYS = {"module", "kernels", "workload", "kernel_params", "absent", "finding"}
FINDING_KEYS = {"id", "stage", "detail", "evidence", "function"}
# One case at least for each class of the "Done when".
REQUIRED_CASES = {
    "correct-A",
    "correct-B",
    "correct-C",
    "api-fault-handler",
    "api-proc-ops",
    "api-timespec",
    "wrong-param-name",
    "pid-not-tgid",
    "oob-first-write",
    "div-zero",
    "printk-flood",
    "free-before-unregister",
    "handler-loops",
    "plot-70x30",
    "plot-no-labels",
    "null-deref-unload",
    "probe-symbol",
    "missing-pid-null",  # error handling: the NULL task of a pid no process has (the check's missing-pid step)
    "init-hangs",  # an init function that never returns: the student's, not a harness failure (grade)
}


@dataclass(frozen=True)
class Case:
    """One corpus directory and its expected.toml."""

    name: str
    path: Path
    module: str  # A, B or C
    data: dict

    @property
    def source(self) -> Path:
        return self.path / f"pf_probe_{self.module}.c"

    @property
    def findings(self) -> list[dict]:
        return self.data.get("finding", [])

    def finding(self, finding_id: str) -> dict:
        [found] = [f for f in self.findings if f["id"] == finding_id]
        return found

    @property
    def ids(self) -> set[str]:
        return {f["id"] for f in self.findings}


def load(path: Path) -> Case:
    data = tomllib.loads((path / "expected.toml").read_text())
    return Case(path.name, path, data.get("module", "?"), data)


CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


def case(name: str) -> Case:
    return load(CORPUS / name)


# ---- fast: every case is complete and speaks the findings' vocabulary ----


def test_the_corpus_covers_every_class():
    assert set(CASES) >= REQUIRED_CASES and len(CASES) >= 12


@pytest.mark.parametrize("name", CASES)
def test_case_is_complete(name):
    c = case(name)
    assert c.module in ("A", "B", "C") and set(c.data) <= CASE_KEYS, c.data
    assert [p.name for p in c.path.glob("*.c")] == [c.source.name]
    text = c.source.read_text()
    assert 60 <= len(text.splitlines()) <= 250, "a student's length"
    assert "module_init(" in text and "module_exit(" in text and 'MODULE_LICENSE("GPL")' in text
    makefile = c.path / "Makefile"
    if makefile.exists():
        assert re.search(rf"^obj-m\s*[+:]?=\s*pf_probe_{c.module}\.o$", makefile.read_text(), re.M)
    assert set(c.data["kernels"]) <= SERIES and c.data["kernels"]
    assert isinstance(c.data["workload"], str) and c.data["workload"]


@pytest.mark.parametrize("name", CASES)
def test_expected_uses_only_the_vocabulary(name):
    c = case(name)
    ids = {f.value for f in Finding}
    assert c.findings, "every case names at least one finding"
    for f in c.findings:
        assert set(f) <= FINDING_KEYS and f["id"] in ids, f
        assert f.get("stage", "build") in STAGES, f
        if f["id"] == Finding.API_CHANGE:
            assert f["detail"] in {d.value for d in ApiChange}, f
        else:
            assert "detail" not in f, f
        assert all(isinstance(e, str) and e for e in f.get("evidence", [])), f
    assert set(c.data["absent"]) <= ids and not set(c.data["absent"]) & c.ids
    assert len(c.ids) == len(c.findings), "one entry per id"


@pytest.mark.parametrize("name", CASES)
def test_makefile_kdir_is_expected_exactly_when_the_makefile_asks_uname(name):
    c = case(name)
    makefile = c.path / "Makefile"
    asks = makefile.exists() and "$(shell uname -r)" in makefile.read_text()
    assert (Finding.MAKEFILE_KDIR.value in c.ids) == asks
    assert (Finding.MAKEFILE_KDIR.value in c.data["absent"]) == (not asks)


# ---- kbuild: each case against the default kernel's headers ----


@dataclass(frozen=True)
class Built:
    returncode: int
    log: str
    ko: Path


@pytest.fixture(scope="session")
def corpus_built(tmp_path_factory, default_kernel) -> dict[str, Built]:
    """Every case built as the student's own directory, `make -C <headers> M=<dir> modules` (their
    Makefile is read by kbuild for obj-m; a case without one gets a one-line Makefile)."""
    out = tmp_path_factory.mktemp("corpus")
    built = {}
    for name in CASES:
        c = case(name)
        src = out / name
        shutil.copytree(c.path, src, ignore=shutil.ignore_patterns("expected.toml"))
        if not (src / "Makefile").exists():
            (src / "Makefile").write_text(f"obj-m += pf_probe_{c.module}.o\n")
        args = ["-C", str(default_kernel.headers), f"M={src}", "modules"]
        argv = toolchain.make_argv(default_kernel.toolchain, src, args)
        result = proc.run(argv, merge_stderr=True)
        built[name] = Built(result.returncode, result.stdout, src / f"pf_probe_{c.module}.ko")
    return built


def compiler_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if re.search(r"\.c:\d+:\d+: error:", line)]


@pytest.mark.kbuild
@pytest.mark.parametrize("name", CASES)
def test_case_builds_or_fails_as_expected(corpus_built, name):
    c, built = case(name), corpus_built[name]
    if Finding.API_CHANGE.value in c.ids:
        assert built.returncode != 0 and not built.ko.exists()
        errors = compiler_errors(built.log)
        evidence = c.finding(Finding.API_CHANGE.value)["evidence"]
        assert any(all(e in line for e in evidence) for line in errors), errors
        return
    assert built.returncode == 0 and built.ko.is_file(), built.log
    if Finding.BUILD_WARNING.value in c.data["absent"]:
        assert not re.search(r"\bwarning:", built.log), built.log


# ---- vm: the runtime defects, in Debian's kernel ----


def trace(vm, c: Case, built: dict[str, Built], command, timeout=120.0):
    request = step.TraceRequest(c.module, built[c.name].ko, tuple(str(a) for a in command), timeout=timeout)
    return step.trace(vm, request)


def regions(output: str) -> list[set[int]]:
    """The pages of each region touch_pages printed."""
    found = re.findall(r"region=0x([0-9a-f]+)-0x([0-9a-f]+)", output)
    return [set(range(int(a, 16) >> 12, int(b, 16) >> 12)) for a, b in found]


def printed_pages(lines: list[str]) -> set[int]:
    return {int(m, 16) >> 12 for line in lines for m in re.findall(r"fault at 0x([0-9a-f]+)", line)}


def plot_rows(lines: list[str]) -> list[tuple[str, str]]:
    """(label, marks) of each plot line: `pf_probe_B: LABEL |MARKS|` (or pf_probe_C)."""
    rows = [re.match(r"pf_probe_[BC]: (.*?)\|(.*)\|$", line) for line in lines]
    return [(m.group(1).strip(), m.group(2)) for m in rows if m]


@pytest.mark.vm
def test_a_runs_against_a_threaded_workload(vm, corpus_built, programs):
    """correct-A sees both threads' regions; pid-not-tgid (current->pid) sees neither: they are the
    other threads'."""
    command = (programs["touch_pages"], 100, 2)
    good = trace(vm, case("correct-A"), corpus_built, command)
    assert good.insmod_status == 0 and good.rmmod_status == 0 and not good.splats
    touched = regions(good.workload_output)
    assert len(touched) == 2 and all(r <= printed_pages(good.kernel_messages) for r in touched)
    bad = trace(vm, case("pid-not-tgid"), corpus_built, command)
    assert bad.insmod_status == 0 and not bad.splats
    pages = printed_pages(bad.kernel_messages)
    assert pages and all(not (r & pages) for r in regions(bad.workload_output)), bad.kernel_messages


@pytest.mark.vm
def test_wrong_param_name_loads_and_traces_nothing(vm, corpus_built, programs):
    c = case("wrong-param-name")
    result = trace(vm, c, corpus_built, (programs["touch_pages"], 50))
    assert result.insmod_status == 0 and result.rmmod_status == 0 and not result.splats
    [evidence] = c.finding(Finding.NO_TPID_PARAM.value)["evidence"]
    assert evidence in result.kernel_messages
    assert not printed_pages(result.kernel_messages)


@pytest.mark.vm
def test_probe_symbol_fails_to_load(vm, corpus_built):
    c = case("probe-symbol")
    result = trace(vm, c, corpus_built, ("/bin/true",))
    assert result.insmod_status not in (0, None) and result.rmmod_status is None
    [evidence] = c.finding(Finding.PROBE_SYMBOL.value)["evidence"]
    assert evidence in result.kernel_messages


@pytest.mark.vm
@pytest.mark.parametrize(
    ("name", "shape"),
    [("correct-B", (30, 70, True)), ("plot-70x30", (70, 30, True)), ("plot-no-labels", (30, 70, False))],
)
def test_b_plots(vm, corpus_built, programs, name, shape):
    rows, cols, labelled = shape  # the plot's lines, its columns, and whether it has axis labels
    result = trace(vm, case(name), corpus_built, (programs["touch_pages"], 200))
    assert result.insmod_status == 0 and result.rmmod_status == 0 and not result.splats
    lines = result.kernel_messages
    plot = [marks for label, marks in plot_rows(lines) if not marks.startswith("-")]
    assert len(plot) == rows and {len(r) for r in plot} == {cols} and "*" in "".join(plot)
    assert any("Page faults of pid" in line for line in lines)  # the title
    labels = [label for label, marks in plot_rows(lines) if not marks.startswith("-")]
    assert all(labels) if labelled else not any(labels)
    assert any("time (ms)" in line for line in lines) == labelled


@pytest.mark.vm
def test_c_plots_each_segment(vm, corpus_built, programs):
    """correct-C: a 30 x 70 plot for each of code, data and other, the data plot with the 32 pages
    segments writes in .data."""
    result = trace(vm, case("correct-C"), corpus_built, (programs["segments"], 32, 16))
    assert result.insmod_status == 0 and result.rmmod_status == 0 and not result.splats
    lines = result.kernel_messages
    titles = [re.search(r"in the (\w+) segment: (\d+) of", x) for x in lines]
    counts = {m.group(1): int(m.group(2)) for m in titles if m}
    assert list(counts) == ["code", "data", "other"] and counts["data"] >= 32, counts
    plot = [marks for label, marks in plot_rows(lines) if label]
    assert len(plot) == 3 * 30 and {len(r) for r in plot} == {70}


@pytest.mark.vm
def test_printk_flood_prints_more_lines_than_faults(vm, corpus_built, programs):
    result = trace(vm, case("printk-flood"), corpus_built, (programs["touch_pages"], 200))
    assert result.insmod_status == 0 and result.rmmod_status == 0 and not result.splats
    lines = result.kernel_messages
    recorded = int(next(re.search(r": (\d+) recorded", x).group(1) for x in lines if " recorded, " in x))
    per_fault = [x for x in lines if re.match(r"pf_probe_B: fault \d+ at 0x", x)]
    assert recorded >= 200 and len(per_fault) == recorded and len(lines) > recorded + 30


# The target keeps faulting while it unloads the module itself (the course's flow unloads after the
# target has exited: a handler that outlives the buffer never runs then).
FAULT_WHILE_UNLOADING = (
    "import mmap, os, time\n"
    "os.system('rmmod pf_probe_B &')\n"
    "end = time.monotonic() + 5\n"
    "while time.monotonic() < end:\n"
    "    m = mmap.mmap(-1, 1 << 18)\n"
    "    for i in range(0, 1 << 18, 4096):\n"
    "        m[i] = 1\n"
    "    m.close()\n"
)


@pytest.mark.vm
def test_the_unload_while_faulting_workload_is_harmless_to_a_correct_b(vm, corpus_built):
    """The control for free-before-unregister: the same workload with correct-B, no splat."""
    result = trace(vm, case("correct-B"), corpus_built, ("python3", "-c", FAULT_WHILE_UNLOADING))
    assert result.insmod_status == 0 and result.workload_status == 0 and not result.splats
    assert any(re.search(r"Page faults of pid \d+: \d+ recorded", line) for line in result.kernel_messages)
    assert result.rmmod_status != 0  # the workload had unloaded it already


@dataclass(frozen=True)
class Crash:
    name: str
    command: tuple[str, ...]
    hangs: bool = False  # the step never ends: VmTimeout (else the Oops panics the guest: VmLost)
    timeout: float = 120.0


CRASHES = [
    Crash("div-zero", ("/bin/true",)),
    Crash("null-deref-unload", ("/bin/true",)),
    Crash("free-before-unregister", ("python3", "-c", FAULT_WHILE_UNLOADING)),
    Crash("handler-loops", ("touch_pages", "400"), hangs=True, timeout=40.0),
]


def console_lines(transcript: Path) -> list[str]:
    """The kernel's console lines of the transcript, timestamps cut."""
    text = transcript.read_text(errors="replace")
    return [re.sub(r"^\[ *\d+\.\d+\] ", "", line.rstrip("\r")) for line in text.splitlines()]


@pytest.mark.vm
@pytest.mark.parametrize("crash", CRASHES, ids=[c.name for c in CRASHES])
def test_a_crash_case_in_its_own_vm(tmp_path, default_kernel, corpus_built, programs, crash):
    """Each in a fresh guest (oops=panic: the Oops ends it; a hang is killed at the step's timeout):
    the kernel's lines name the defect, the module's function, and the stage (the module's state
    in the report's "Modules linked in:": "-" while it is being unloaded)."""
    from pfharness.guest.session import VmOptions, VmSession

    c = case(crash.name)
    splat = c.finding(Finding.KERNEL_SPLAT.value)
    command = tuple(str(programs[a]) if a in programs else a for a in crash.command)
    transcript = tmp_path / "console.log"
    options = VmOptions(kernel=default_kernel, transcript=transcript, accel="tcg", smp=2)
    with VmSession(options) as vm, pytest.raises(VmLost) as lost:
        trace(vm, c, corpus_built, command, timeout=crash.timeout)
    assert isinstance(lost.value, VmTimeout) == crash.hangs
    lines = console_lines(transcript)
    hits = [i for i, line in enumerate(lines) if all(e in line for e in splat["evidence"])]
    assert hits, f"no {splat['evidence']} in {transcript}"
    at = hits[0]
    assert any(re.match(rf"RIP: 0010:{splat['function']}\+0x[0-9a-f]+/0x[0-9a-f]+ \[pf_probe_", x) for x in lines)
    # An Oops's module list marks a module being unloaded with "-": pf_probe_B(OE-). An RCU stall
    # report has no module list: before the workload's end (the protocol's line) is the run.
    flags = [m.group(1) for x in lines[at:] if (m := re.search(rf"\bpf_probe_{c.module}\((\w*-?)\)", x))]
    ended = any(" workload-end status=" in line for line in lines[:at])
    unloading = flags[0].endswith("-") if flags else ended
    assert unloading == (splat["stage"] == "unload"), (flags, ended)


@pytest.mark.vm
def test_oob_first_write_is_seen_by_slub_debug(tmp_path, default_kernel, corpus_built, programs):
    """Debian's 6.1 has no KASAN: booted with slub_debug=FZPU, SLUB finds the left redzone of the
    kmalloc'd records overwritten when the exit function frees them (no Oops: the guest lives)."""
    from pfharness.guest.session import VmOptions, VmSession

    c = case("oob-first-write")
    evidence = c.finding(Finding.KERNEL_SPLAT.value)["evidence"]
    extra = tuple(c.data["kernel_params"])
    options = VmOptions(default_kernel, tmp_path / "console.log", accel="tcg", smp=2, extra_append=extra)
    with VmSession(options) as vm:
        result = trace(vm, c, corpus_built, (programs["touch_pages"], 200))
    assert result.insmod_status == 0 and result.rmmod_status == 0 and result.splats
    lines = result.kernel_messages
    assert any(all(e in line for e in evidence) for line in lines), lines[:40]
    assert any(line.startswith("Allocated in pf_probe_init+") for line in lines)
