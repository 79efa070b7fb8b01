"""kbuild's failure message: each compiler diagnostic with the rendered source line it points at (no build)."""

from __future__ import annotations

from pfharness.kmod.kbuild import explain_failure


def test_a_diagnostic_shows_its_source_line_whether_kbuild_names_the_file_whole_or_relative(tmp_path):
    (tmp_path / "pf_probe_A.c").write_text("int a;\n\tunregister_kretprobe(&no_such_probe);\n")
    whole = f"{tmp_path}/pf_probe_A.c:2:31: error: 'no_such_probe' undeclared"  # 6.1's kbuild
    relative = "pf_probe_A.c:2:31: error: 'no_such_probe' undeclared"  # 7.2's kbuild compiles in the module dir
    want = f"{whole}\n        2 | \tunregister_kretprobe(&no_such_probe);"
    assert explain_failure(f"make: entering\n  {whole}\nmore\n", tmp_path) == want
    assert explain_failure(f"  CC [M]  pf_probe_A.o\n{relative}\n", tmp_path) == want
    assert explain_failure("ld: undefined reference\n", tmp_path) == ""
