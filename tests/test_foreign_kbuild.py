"""A brought module really built (sandboxed kbuild, no VM): a student's Makefile driven at the
chosen kernel, each tests/api_breaks/<id>/ module failing with its one-line explanation exactly on
the kernels at or after its change, and the matrix of kernels it builds on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pfharness import proc
from pfharness.cli import app
from pfharness.errors import BuildError, PfhError
from pfharness.kernel import Kernel
from pfharness.kmod import bring, diagnose, foreign, kernels, matrix
from pfharness.kmod.spec import version_key

pytestmark = pytest.mark.kbuild

BREAKS = Path(__file__).parent / "api_breaks"
CHANGES = {c.id: c for c in diagnose.CHANGES}
HELLO = '#include <linux/module.h>\nstatic int x;\nmodule_param(x, int, 0444);\nMODULE_LICENSE("GPL");\n'
UNAME_MAKEFILE = """obj-m += pf_probe_A.o
KDIR ?= /lib/modules/$(shell uname -r)/build
all:
\tmake -C /lib/modules/$(shell uname -r)/build M=$(PWD) modules
"""


@pytest.fixture(scope="module")
def newer_kernel(default_kernel) -> Kernel:
    """7.2 from the cache (`pfharness kernels fetch 7.2`), for the changes newer than the default kernel."""
    try:
        kernel = kernels.select("7.2")
    except PfhError:
        pytest.skip("no 7.2 kernel in the cache: `pfharness kernels fetch 7.2`")
    return kernel


def _changed_in(change_id: str, release: str) -> bool:
    """Is the kernel ``release`` at or after the change (div64: never, this is a 64-bit build)?"""
    version = CHANGES[change_id].version
    return version[0].isdigit() and version_key(release) >= version_key(version)


def _check(change_id: str, kernel: Kernel, out: Path) -> None:
    built = foreign.build_foreign(foreign.parse_source([BREAKS / change_id]), kernel, out)
    if _changed_in(change_id, kernel.release):
        assert not built.ok, built.log
        assert [e.change.id for e in diagnose.explain(built.log)] == [change_id], built.log
    else:
        assert built.ok and list(built.modules) == ["x"], built.log
        assert diagnose.explain(built.log) == []


@pytest.mark.parametrize("change_id", sorted(CHANGES))
def test_each_api_break_is_explained_on_the_default_kernel(change_id, default_kernel, tmp_path):
    _check(change_id, default_kernel, tmp_path)


@pytest.mark.parametrize("change_id", sorted(CHANGES))
def test_the_changes_newer_than_the_default_kernel_are_explained_on_7_2(
    change_id, default_kernel, newer_kernel, tmp_path
):
    if _changed_in(change_id, default_kernel.release) or not _changed_in(change_id, newer_kernel.release):
        pytest.skip("checked on the default kernel")
    _check(change_id, newer_kernel, tmp_path)


def test_a_makefile_for_the_running_kernel_is_built_for_the_chosen_one_with_debug_info(default_kernel, tmp_path):
    src = tmp_path / "student"
    src.mkdir()
    (src / "pf_probe_A.c").write_text(HELLO)
    (src / "Makefile").write_text(UNAME_MAKEFILE)
    built = foreign.build_foreign(foreign.parse_source([src]), default_kernel, tmp_path / "out")
    assert built.ok and built.driven == ("makefile", "kbuild"), built.log
    ko = built.modules["pf_probe_A"]
    assert ko.parent == tmp_path / "out" / "src" and not (src / "pf_probe_A.ko").exists()
    info = proc.run(["modinfo", ko]).stdout
    assert f"vermagic:       {default_kernel.release} " in info and "parm:           x:" in info
    sections = proc.run([shutil.which("readelf") or "readelf", "-S", "-W", ko]).stdout
    assert ".debug_info" in sections and ".debug_line" in sections
    assert built.log_path.read_text() == built.log and "$ make KDIR=" in built.log


def test_a_makefile_that_takes_kdir_is_driven_once(default_kernel, tmp_path):
    src = tmp_path / "student"
    src.mkdir()
    (src / "probe.c").write_text(HELLO)
    (src / "Makefile").write_text(
        "obj-m := probe.o\nKDIR ?= /nonexistent\nall:\n\t$(MAKE) -C $(KDIR) M=$(CURDIR) modules\n"
    )
    built = foreign.build_foreign(foreign.parse_source([src]), default_kernel, tmp_path / "out")
    assert built.ok and built.driven == ("makefile",) and list(built.modules) == ["probe"], built.log


def test_a_compiler_error_under_their_makefile_is_not_built_again(default_kernel, tmp_path):
    src = tmp_path / "student"
    shutil.copytree(BREAKS / "fault-handler-5.14", src)
    (src / "Makefile").write_text("obj-m := x.o\nall:\n\t$(MAKE) -C $(KERNELDIR) M=$(CURDIR) modules\n")
    built = foreign.build_foreign(foreign.parse_source([src]), default_kernel, tmp_path / "out")
    assert not built.ok and built.driven == ("makefile",), built.log
    assert [e.change.id for e in diagnose.explain(built.log)] == ["fault-handler-5.14"]


def test_a_failure_names_the_kernels_it_builds_on_and_is_cached(default_kernel, newer_kernel, tmp_path):
    store = tmp_path / "store"
    module = BREAKS / "strlcpy-6.8"
    with pytest.raises(BuildError) as failed:
        bring.build([module], newer_kernel, tmp_path / "out", [default_kernel, newer_kernel], store)
    message = str(failed.value)
    assert "strlcpy-6.8: strlcpy() is gone (Linux 6.8); fix: use strscpy(" in message
    assert "builds on 6.1; not on 7.2" in message and f"the build log: {tmp_path / 'out' / 'build.log'}" in message
    again = matrix.builds_on(foreign.parse_source([module]), [default_kernel], tmp_path / "again", store)
    assert [(e.builds, e.cached) for e in again] == [(True, True)]


def test_a_module_from_before_a_change_builds_on_the_older_kernel_of_the_matrix(default_kernel, tmp_path):
    try:
        older = kernels.select("5.10")
    except PfhError:
        pytest.skip("no 5.10 kernel in the cache: `pfharness kernels fetch 5.10`")
    with pytest.raises(BuildError) as failed:
        bring.build([BREAKS / "fault-handler-5.14"], default_kernel, tmp_path / "out", [older], tmp_path / "store")
    assert "builds on 5.10; not on 6.1" in str(failed.value)


def test_build_source_on_the_command_line(tmp_path):
    result = CliRunner().invoke(
        app, ["build", "--source", str(BREAKS / "fault-handler-5.14"), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 121, result.output
    assert "fault-handler-5.14: struct kprobe lost .fault_handler (Linux 5.14)" in result.output
    assert f"the build log: {tmp_path / 'out' / 'build.log'}" in result.output
    ok = CliRunner().invoke(app, ["build", "--source", str(BREAKS / "div64" / "x.c"), "--out", str(tmp_path / "ok")])
    assert ok.exit_code == 0, ok.output
    assert str(tmp_path / "ok" / "src" / "x.ko") in ok.output
    assert "compiler warning" not in ok.output
    warned = tmp_path / "w.c"
    warned.write_text(HELLO + "static int __init w_init(void) { int unused; return 0; }\nmodule_init(w_init);\n")
    kept = CliRunner().invoke(app, ["build", "--source", str(warned), "--out", str(tmp_path / "w")])
    assert kept.exit_code == 0 and "1 compiler warning(s), the first: " in kept.output, kept.output
    assert "warning: unused variable 'unused'" in kept.output
