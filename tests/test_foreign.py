"""A brought module's pure parts: parsing the source, the Makefile's driving, diagnosing recorded
build logs (tests/data/foreign_build/<id>.log, each a real build of tests/api_breaks/<id>/), the
matrix line and its cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pfharness.errors import UsageError
from pfharness.kernel import Kernel, Toolchain
from pfharness.kmod import diagnose, foreign, matrix

DATA = Path(__file__).parent / "data" / "foreign_build"
BREAKS = Path(__file__).parent / "api_breaks"
HELLO = '#include <linux/module.h>\nMODULE_LICENSE("GPL");\n'


def _dir(tmp_path: Path, files: dict[str, str]) -> Path:
    top = tmp_path / "mod"
    for rel, text in files.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_text(text)
    return top


def test_a_directory_with_a_makefile_is_driven_and_built_files_are_left_behind(tmp_path):
    top = _dir(tmp_path, {"Makefile": "obj-m += a.o\n", "a.c": HELLO, "a.ko": "old", ".a.o.cmd": "", "sub/h.h": ""})
    source = foreign.parse_source([top])
    assert source.has_makefile
    assert [rel for _, rel in source.files] == ["Makefile", "a.c", "sub/h.h"]


def test_c_files_get_a_kbuild_file_of_their_own(tmp_path):
    top = _dir(tmp_path, {"pf_probe_A.c": HELLO, "pf_probe_B.c": HELLO})
    source = foreign.parse_source([top / "pf_probe_A.c", top / "pf_probe_B.c"])
    assert not source.has_makefile and source.c_files == ("pf_probe_A.c", "pf_probe_B.c")
    copy = foreign.copy_source(source, tmp_path / "build" / "src")
    assert "obj-m := pf_probe_A.o pf_probe_B.o\n" in (copy / "Kbuild").read_text()
    assert (copy / "pf_probe_A.c").read_text() == HELLO
    assert foreign.parse_source([top]).c_files == ("pf_probe_A.c", "pf_probe_B.c")  # a directory without a Makefile


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"README": "x"}, "no .c file"),
        ({"Makefile": "all:\n"}, "no .c file"),
    ],
)
def test_a_directory_that_is_not_a_module_is_refused(tmp_path, files, message):
    with pytest.raises(UsageError, match=message):
        foreign.parse_source([_dir(tmp_path, files)])


def test_missing_paths_and_other_files_are_refused(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        foreign.parse_source([tmp_path / "nope"])
    top = _dir(tmp_path, {"a.c": HELLO, "notes.txt": ""})
    with pytest.raises(UsageError, match=r"not a \.c file"):
        foreign.parse_source([top / "a.c", top / "notes.txt"])
    with pytest.raises(UsageError, match="no module source"):
        foreign.parse_source([])


def test_a_symbolic_link_out_of_the_tree_is_refused(tmp_path):
    top = _dir(tmp_path, {"a.c": HELLO})
    (tmp_path / "secret").write_text("x")
    (top / "leak.h").symlink_to(tmp_path / "secret")
    with pytest.raises(UsageError, match="outside"):
        foreign.parse_source([top])


def test_a_link_inside_the_tree_is_copied_as_a_file(tmp_path):
    top = _dir(tmp_path, {"a.c": HELLO})
    (top / "b.c").symlink_to(top / "a.c")
    copy = foreign.copy_source(foreign.parse_source([top]), tmp_path / "src")
    assert not (copy / "b.c").is_symlink() and (copy / "b.c").read_text() == HELLO


def test_a_source_too_big_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(foreign, "MAX_BYTES", 100)
    top = _dir(tmp_path, {"a.c": HELLO * 10})
    with pytest.raises(UsageError, match="too big"):
        foreign.parse_source([top])


def test_the_digest_follows_the_contents(tmp_path):
    top = _dir(tmp_path, {"a.c": HELLO})
    before = foreign.parse_source([top]).digest()
    (top / "a.c").write_text(HELLO + "\n")
    assert foreign.parse_source([top]).digest() != before


def _kernel(tmp_path: Path, make_vars: tuple[str, ...] = ()) -> Kernel:
    return Kernel("6.1.0-57-amd64", None, tmp_path / "kbuild", None, toolchain=Toolchain(make_vars))


def test_their_makefile_is_pointed_at_the_kernel_with_every_usual_name(tmp_path):
    args = foreign.make_args(_kernel(tmp_path, ("CC=gcc-12",)), tmp_path / "src", kbuild=False)
    kdir = str(tmp_path / "kbuild")
    assert [f"KDIR={kdir}", f"KERNELDIR={kdir}", f"KERNEL_DIR={kdir}", f"KSRC={kdir}"] == args[:4]
    assert "KCFLAGS=-g" in args and "CC=gcc-12" in args and "modules" not in args
    assert not any("Werror" in a for a in args)


def test_kbuild_is_run_on_the_copy_when_their_targets_build_no_module(tmp_path):
    args = foreign.make_args(_kernel(tmp_path), tmp_path / "src", kbuild=True)
    assert args[:3] == ["-C", str(tmp_path / "kbuild"), f"M={tmp_path / 'src'}"]
    assert args[-1] == "modules" and "KCFLAGS=-g" in args


def test_a_module_built_for_another_kernel_does_not_count(tmp_path):
    (tmp_path / "a.ko").write_bytes(b"\x7fELF...vermagic=6.1.0-57-amd64 SMP preempt mod_unload modversions \0")
    (tmp_path / "b.ko").write_bytes(b"\x7fELF...vermagic=6.18.44-fc SMP mod_unload \0")
    assert foreign.vermagic_release(tmp_path / "a.ko") == "6.1.0-57-amd64"
    assert foreign.built_modules(tmp_path, "6.1.0-57-amd64") == {"a": tmp_path / "a.ko"}


def test_every_table_entry_has_a_module_and_a_recorded_log():
    ids = {c.id for c in diagnose.CHANGES}
    assert ids == {p.name for p in BREAKS.iterdir()}
    assert ids - {"div64"} == {p.stem for p in DATA.glob("*.log")}


@pytest.mark.parametrize("log", sorted(DATA.glob("*.log")), ids=lambda p: p.stem)
def test_a_recorded_build_log_is_explained_by_its_change_alone(log):
    explained = diagnose.explain(log.read_text())
    assert [e.change.id for e in explained] == [log.stem]
    line = explained[0].line
    assert "\n" not in line and f"(Linux {explained[0].change.version})" in line and "; fix: " in line


def test_typographic_quotes_are_understood():
    # gcc in a UTF-8 locale, as a user's terminal shows it (a real report of a 7.0 build)
    log = (
        "ms912x_transfer.c:12:46: error: implicit declaration of function \u2018from_timer\u2019; "
        "did you mean \u2018mod_timer\u2019?"
    )
    assert [e.change.id for e in diagnose.explain(log)] == ["from-timer-6.16"]


def test_a_64_bit_division_in_a_32_bit_build_is_explained():
    # modpost's line for a u64 / u64 in an i386 build (the division builds on x86-64: tests/api_breaks/div64)
    log = 'ERROR: modpost: "__udivdi3" [/home/s/pf_probe_B.ko] undefined!\nmake[2]: *** Error 1'
    (found,) = diagnose.explain(log)
    assert found.change.id == "div64" and "div64_u64" in found.line and found.evidence.startswith("ERROR: modpost")


def test_an_unknown_error_is_not_explained_but_shown():
    log = "x.c:3:1: error: expected ';' before '}' token\nx.c:2:5: warning: unused variable 'y' [-Wunused-variable]"
    assert diagnose.explain(log) == []
    assert diagnose.errors(log) == ["x.c:3:1: error: expected ';' before '}' token"]
    assert diagnose.warnings(log) == ["x.c:2:5: warning: unused variable 'y' [-Wunused-variable]"]


def test_the_matrix_reads_its_cache_and_builds_nothing(tmp_path, monkeypatch):
    source = foreign.parse_source([_dir(tmp_path, {"a.c": HELLO})])
    store = tmp_path / "store"
    store.mkdir()
    kernels = [Kernel(r, None, tmp_path, None) for r in ("7.2.13+deb14-amd64", "5.10.0-35-amd64", "6.1.0-57-amd64")]
    for k, ok in zip(kernels, (False, True, True), strict=True):
        (store / f"{source.digest()}-{k.release}.json").write_text(json.dumps({"builds": ok}))
    monkeypatch.setattr(foreign, "build_foreign", lambda *a, **k: pytest.fail("built although cached"))
    entries = matrix.builds_on(source, kernels, tmp_path / "work", store)
    assert [(e.release, e.builds, e.cached) for e in entries] == [
        ("5.10.0-35-amd64", True, True),
        ("6.1.0-57-amd64", True, True),
        ("7.2.13+deb14-amd64", False, True),
    ]
    assert matrix.matrix_line(entries) == "builds on 5.10, 6.1; not on 7.2"
    assert matrix.matrix_line(entries[2:]) == "builds on none of the kernels here (7.2)"


def test_a_makefile_that_takes_the_running_kernel_is_noticed(tmp_path):
    makefile = "obj-m += a.o\nall:\n\tmake -C /lib/modules/$(shell uname -r)/build M=$(PWD) modules\n"
    source = foreign.parse_source([_dir(tmp_path, {"Makefile": makefile, "a.c": "// uname -r\n"})])
    assert foreign.running_kernel_lines(source) == ["make -C /lib/modules/$(shell uname -r)/build M=$(PWD) modules"]


def test_the_build_directory_inside_the_source_is_left_out(tmp_path):
    top = _dir(tmp_path, {"a.c": HELLO, "out/foreign/6.1/src/a.c": HELLO, "lib/b.c": HELLO})
    source = foreign.parse_source([top], exclude=[top / "out" / "foreign" / "6.1"])
    assert [rel for _, rel in source.files] == ["a.c", "lib/b.c"]


def test_an_earlier_build_inside_the_source_is_left_out(tmp_path):
    top = _dir(tmp_path, {"a.c": HELLO, f"out/7.2/{foreign.MARKER}": "", "out/7.2/src/a.c": HELLO})
    assert [rel for _, rel in foreign.parse_source([top]).files] == ["a.c"]
