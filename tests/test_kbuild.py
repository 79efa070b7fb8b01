"""Real kbuild builds against the installed headers."""

from __future__ import annotations

import re

import pytest
from conftest import copy_templates

from pfharness import proc
from pfharness.errors import BuildError, HeadersMissing
from pfharness.kmod import arrange, kbuild, kernels, toolchain

pytestmark = pytest.mark.kbuild


def test_all_three_build_without_warnings(built_modules):
    assert set(built_modules.modules) == {"A", "B", "C"}
    for ko in built_modules.modules.values():
        assert ko.is_file() and ko.stat().st_size > 0
    assert not built_modules.skipped
    assert not re.search(r"\bwarning:", built_modules.log), built_modules.log


def test_modinfo_shows_tpid_with_description(built_modules):
    for letter, ko in built_modules.modules.items():
        info = proc.run(["modinfo", ko]).stdout
        assert re.search(r"^parm:\s+tpid:Process ID .*\(int\)$", info, re.M), info
        assert f"vermagic:       {built_modules.kernel_release} " in info
        if letter in "BC":
            assert re.search(r"^parm:\s+max_records:Capacity .*\(ulong\)$", info, re.M), info


def test_second_build_is_skipped(built_modules, default_kernel):
    again = kbuild.build(kbuild.BuildRequest(built_modules.modules["A"].parent, default_kernel, werror=True))
    assert again.skipped and again.modules == built_modules.modules


def _no_second_look(monkeypatch) -> None:
    """Building takes the kernel as resolved: selecting, the fetched marker and the toolchain probes fail."""

    def looked(*args, **kwargs):
        raise AssertionError("the kernel was looked up again while building")

    monkeypatch.setattr(kernels, "select", looked)
    monkeypatch.setattr(arrange, "read_marker", looked)
    monkeypatch.setattr(toolchain, "resolve", looked)
    monkeypatch.setattr(toolchain, "host_make_vars", looked)


def test_broken_template_points_at_rendered_line(tmp_path, default_kernel, monkeypatch):
    _no_second_look(monkeypatch)
    templates = copy_templates(tmp_path / "templates")
    kprobe = templates / "common" / "kprobe.c.j2"
    kprobe.write_text(
        kprobe.read_text().replace("unregister_kretprobe(&fault_probe);", "unregister_kretprobe(&no_such_probe);")
    )
    out = tmp_path / "out"
    with pytest.raises(BuildError) as err:
        kbuild.build(kbuild.BuildRequest(out, default_kernel, ("A",), template_dir=templates))
    message = str(err.value)
    rendered = (out / "pf_probe_A.c").read_text().splitlines()
    line_no = next(i for i, line in enumerate(rendered, 1) if "no_such_probe" in line)
    assert f"{out / 'pf_probe_A.c'}:{line_no}:" in message
    assert "unregister_kretprobe(&no_such_probe);" in message
    assert "error:" in message


def test_missing_headers_names_the_package(tmp_path):
    with pytest.raises(HeadersMissing, match=r"apt-get install linux-headers-9\.9\.9-nope"):
        kbuild.build(kbuild.BuildRequest(tmp_path, kernels.select("9.9.9-nope"), ("B",)))
