"""Rendering the module sources: standalone C, no template residue, key lines present."""

from __future__ import annotations

import re

import pytest

from pfharness import assets
from pfharness.kmod import render
from pfharness.results import output_format
from pfharness.values import UnknownModule


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return {m: render.render_module(m) for m in render.MODULES}


@pytest.mark.parametrize("letter", render.MODULES)
def test_each_module_renders_without_residue(sources, letter):
    text = sources[letter]
    assert not re.search(r"\{\{|\}\}|\{%|%\}|\{#|#\}", text)
    assert text.startswith("// SPDX-License-Identifier: GPL-2.0\n")
    assert f" * pf_probe_{letter} - " in text
    assert "\n\n\n" not in text


@pytest.mark.parametrize("letter", render.MODULES)
def test_common_key_lines(sources, letter):
    text = sources[letter]
    assert "module_param(tpid, int, 0444);" in text
    assert "MODULE_PARM_DESC(tpid, " in text
    assert '.symbol_name = "handle_mm_fault",' in text
    assert "regs_get_kernel_argument(regs, 0)" in text
    assert "regs_get_kernel_argument(regs, 1)" in text
    assert "regs->si" not in text and "regs->di" not in text
    assert "owner = rcu_dereference(mm->owner);" in text
    assert "tgid = task_tgid_nr(owner);" in text
    assert "return tgid == target_tgid ? tgid : 0;" in text
    assert "#ifdef CONFIG_MEMCG" in text
    assert "return -ESRCH;" in text and "return -EINVAL;" in text
    assert 'MODULE_LICENSE("GPL");' in text


@pytest.mark.parametrize("letter", render.MODULES)
def test_completed_faults_are_counted_as_the_kernel_counts_them(sources, letter):
    """A kretprobe: the entry handler filters, the return handler counts what mm_account_fault() counts."""
    text = sources[letter]
    assert ".entry_handler = fault_entry_handler," in text and ".handler = fault_return_handler," in text
    assert '.kp.symbol_name = "handle_mm_fault",' in text
    entry = text[text.index("static int fault_entry_handler(") :]
    entry = entry[: entry.index("\n}\n")]
    assert "if (!fault_is_target(vma))\n\t\treturn 1;" in entry  # others get no return probe
    ret = text[text.index("static int fault_return_handler(") :]
    ret = ret[: ret.index("\n}\n")]
    assert ret.index("VM_FAULT_RETRY") < ret.index("VM_FAULT_ERROR") < ret.index("fault_completed(")
    assert "major = (ret & VM_FAULT_MAJOR) || (entry->flags & FAULT_FLAG_TRIED);" in ret
    assert ret.index("follow_count_fault((pid_t)entry->tgid);") < ret.index("fault_completed(")
    assert "fault_probe.nmissed, fault_probe.kp.nmissed" in text
    assert "NOKPROBE_SYMBOL(fault_entry_handler);" in text and "NOKPROBE_SYMBOL(fault_return_handler);" in text


@pytest.mark.parametrize("letter", ["B", "C"])
def test_proc_files_go_before_the_buffers(sources, letter):
    text = sources[letter]
    exit_fn = text[text.index(f"static void __exit pf_probe_{letter}_exit") :]
    assert exit_fn.index("probe_disarm();") < exit_fn.index("records_proc_remove();") < exit_fn.index("records_free();")
    assert exit_fn.index("records_free();") < exit_fn.index("regions_free();")
    assert "module_param(plot_scale, charp, 0444);" in text


def test_a_prints_each_fault_and_keeps_no_records(sources):
    a = sources["A"]
    assert 'pr_info("pid=%d addr=0x%lx\\n", (int)entry->tgid, entry->address);' in a
    assert "records_alloc" not in a and "max_records" not in a


@pytest.mark.parametrize("letter", ["B", "C"])
def test_recording_modules(sources, letter):
    text = sources[letter]
    assert "#define PLOT_ROWS 30" in text and "#define PLOT_COLS 70" in text
    assert "module_param(max_records, ulong, 0444);" in text
    assert "atomic64_inc_return(&faults_seen)" in text
    assert "mul_u64_u64_div_u64" in text and "div_u64_rem" in text
    assert "if (span == 0)" in text  # no division by zero
    assert "if (col >= PLOT_COLS || row_from_bottom >= PLOT_ROWS)" in text
    assert "BEGIN PLOT" in text and "END PLOT" in text
    # The exit path stops the probe before reading the records, and frees them last.
    exit_fn = text[text.index(f"static void __exit pf_probe_{letter}_exit") :]
    assert exit_fn.index("probe_disarm();") < exit_fn.index("report(comm);") < exit_fn.index("records_free();")


@pytest.mark.parametrize("letter", render.MODULES)
def test_follow_is_a_parameter_and_every_probe_goes_before_anything_is_freed(sources, letter):
    text = sources[letter]
    assert "module_param(follow, bool, 0444);" in text
    assert "follow_count_fault((pid_t)entry->tgid);" in text
    assert "NOKPROBE_SYMBOL(follow_count_fault);" in text and "NOKPROBE_SYMBOL(follow_lookup);" in text
    assert "return tgid > 0 && tgid < PID_MAX_LIMIT && test_bit(tgid, follow_traced);" in text
    for tracepoint in ("sched_process_fork", "sched_process_exec", "sched_process_exit"):
        assert f'.name = "{tracepoint}"' in text
    exit_fn = text[text.index(f"static void __exit pf_probe_{letter}_exit") :]
    disarmed = max(exit_fn.index("probe_disarm();"), exit_fn.index("follow_disarm();"))
    assert disarmed < exit_fn.index("follow_report();") < exit_fn.index("follow_free();")
    assert "tracepoint_synchronize_unregister();" in text


def test_c_classifies_by_segment(sources):
    c = sources["C"]
    for field in ("start_code", "end_code", "start_data", "end_data"):
        assert f"mm->{field}" in c
    assert "for (cls = 0; cls < FAULT_CLASSES; cls++)" in c
    assert "FAULT_CLASSES; cls++)" not in sources["B"]
    assert 'plot_one(stored, 0, comm, "all", "", &clock);' in sources["B"]
    # C's three plots on one clock: measured once, of every record, before the loop over the classes
    assert c.index("plot_measure(stored, PLOT_ALL, &clock);") < c.index("for (cls = 0; cls < FAULT_CLASSES; cls++)")


def test_shared_blocks_live_once_in_the_templates():
    """The kprobe set-up, parameter checks and plot code exist in one template each."""
    top = {p.name: p.read_text() for p in assets.kmod_templates().glob("*.j2")}
    for snippet in ("register_kretprobe", "module_param(tpid", "mul_u64_u64_div_u64", 'proc_create("', "get_file("):
        assert not any(snippet in text for text in top.values()), snippet
        owners = [p for p in (assets.kmod_templates() / "common").glob("*.j2") if snippet in p.read_text()]
        assert len(owners) == 1, (snippet, owners)


def test_strict_undefined(tmp_path):
    (tmp_path / "pf_probe_A.c.j2").write_text("int x = {{ no_such_value }};\n")
    with pytest.raises(render.TemplateResidue, match="no_such_value' is undefined") as caught:
        render.render_module("A", render.environment(tmp_path))
    assert caught.value.exit_status == 120 and "pf_probe_A.c.j2" in str(caught.value)


def test_render_writes_files_and_makefile(tmp_path):
    result = render.render(tmp_path, ["b", "pf_probe_c"], kernel_release="6.1.0-56-amd64")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Makefile", "pf_probe_B.c", "pf_probe_C.c"]
    makefile = result.makefile.read_text()
    assert "obj-m := pf_probe_B.o pf_probe_C.o\n" in makefile
    assert "KRELEASE ?= 6.1.0-56-amd64\n" in makefile
    assert "\t$(MAKE) -C $(KDIR) M=$(CURDIR) modules\n" in makefile


def test_makefile_without_release_uses_running_kernel():
    assert "KRELEASE ?= $(shell uname -r)\n" in render.render_makefile(("A",), None)


def test_unknown_module_is_refused():
    with pytest.raises(UnknownModule, match="--module D: not a module: use A, B or C"):
        render.normalize_modules(["D"])


def test_the_oracle_is_pf_probe_B_under_another_name(tmp_path):
    """kbuild.oracle_request renders pf_probe_B's source as pfh_oracle.c with obj-m pfh_oracle.o: its /proc
    directory and its lines take the name from KBUILD_MODNAME, so it can never be taken for a user's pf_probe_B."""
    from pfharness.kmod import kbuild

    request = kbuild.oracle_request(tmp_path, kernel=None)  # type: ignore[arg-type] - the kernel is not used here
    out = render.render(tmp_path, request.modules, kernel_release="6.1.0-1-amd64", names=dict(request.names))
    assert out.sources == {"B": tmp_path / f"{kbuild.ORACLE_NAME}.c"} and out.module_names() == ["pfh_oracle"]
    assert out.sources["B"].read_text() == render.render_module("B")
    assert re.search(r"^obj-m := pfh_oracle\.o$", out.makefile.read_text(), re.M)
    assert "proc_mkdir(KBUILD_MODNAME" in out.sources["B"].read_text()
    assert "pf_probe_B.c" not in {p.name for p in tmp_path.iterdir()}


# ---- the course profile: the hand-in's modules (docs/modules.md) ----

#: The course modules' size in lines, at most: a grader reads them in one sitting (issue 25).
COURSE_LINES = {"A": 295, "B": 550, "C": 585}


@pytest.fixture(scope="module")
def course() -> dict[str, str]:
    return {m: render.render_module(m, profile=render.Profile.course) for m in render.MODULES}


@pytest.mark.parametrize("letter", render.MODULES)
def test_course_modules_keep_what_the_assignment_asks(course, letter):
    """The target's tgid through mm->owner under RCU, completed faults from a kretprobe, nothing of the full
    modules' machinery (follow=1, the region table, /proc files, the folded plot)."""
    text = course[letter]
    assert not re.search(r"\{\{|\}\}|\{%|%\}|\{#|#\}", text) and "\n\n\n" not in text
    assert text.startswith("// SPDX-License-Identifier: GPL-2.0\n") and f" * pf_probe_{letter} - " in text
    assert "owner = rcu_dereference(vma->vm_mm->owner);" in text and "rcu_read_unlock();" in text
    assert "if (!vma || !vma->vm_mm || fault_owner_tgid(vma) != target_tgid)\n\t\treturn 1;" in text
    assert ".entry_handler = fault_entry_handler," in text and ".handler = fault_return_handler," in text
    ret = text[text.index("static int fault_return_handler(") :]
    ret = ret[: ret.index("\n}\n")]
    assert ret.index("VM_FAULT_RETRY") < ret.index("VM_FAULT_ERROR") < ret.index("fault_completed(")
    for gone in ("follow", "proc_create", "region_", "plot_folded", "plot_band", "dump_records", "spin_lock"):
        assert gone not in text, gone
    assert len(text.splitlines()) <= COURSE_LINES[letter], len(text.splitlines())


@pytest.mark.parametrize("letter", ["B", "C"])
def test_course_plot_divides_with_the_kernels_helpers_and_frees_after_unregistering(course, letter):
    text = course[letter]
    assert "mul_u64_u64_div_u64(" in text and "div_u64_rem(" in text
    assert not re.search(r"[^/*]\s/\s*(span|ext->|t_span|NSEC)", text), "a plain 64-bit division"
    assert "if (col >= PLOT_COLS || row_from_bottom >= PLOT_ROWS) {" in text
    exit_fn = text[text.index(f"static void __exit pf_probe_{letter}_exit(void)") :]
    unregister = exit_fn.index("unregister_kretprobe(&fault_probe);")
    assert unregister < exit_fn.index("report(") < exit_fn.index("vfree(records);")
    store = text[text.index("static void fault_completed(") :]
    assert "if (slot >= max_records)\n\t\treturn;" in store[: store.index("\n}\n")]
    if letter == "C":
        assert "mm->start_code" in text and "mm->start_data" in text and "SEGMENTS" in text


def test_the_full_modules_are_the_default_profile(sources):
    assert all(sources[m] == render.render_module(m, profile=render.Profile.full) for m in render.MODULES)
    assert "plot_folded" in sources["B"] and "follow" in sources["A"]


#: The lines of output_format.LINES each course module prints, as the parser reads them (tests/test_course_vm.py
#: reads them from a real run).
COURSE_SHAPES = {
    "A": ("a_fault", "a_summary", "fault_counts"),
    "B": ("records_summary", "fault_counts", "plot_begin", "plot_summary", "plot_end", "plot_empty"),
    "C": ("records_summary", "fault_counts", "plot_begin", "plot_summary", "plot_end", "plot_empty_class"),
}


@pytest.mark.parametrize("letter", render.MODULES)
def test_course_modules_print_the_lines_the_parser_reads(course, letter):
    for name in COURSE_SHAPES[letter]:
        assert output_format.LINES[name].c_literal() in course[letter], name


def test_compiled_templates_are_cached_and_render_the_same(tmp_path, monkeypatch):
    """The modules rendered from Jinja's bytecode cache (what every run's freshness check uses after the first)
    are byte for byte those compiled from the templates."""
    plain, first, cached = tmp_path / "plain", tmp_path / "first", tmp_path / "cached"
    monkeypatch.setattr(render, "_compiled_templates", lambda: None)
    render.render(plain, render.MODULES, kernel_release="6.1.0-test")
    monkeypatch.undo()
    monkeypatch.setenv("PFHARNESS_CACHE", str(tmp_path / "cache"))
    render.render(first, render.MODULES, kernel_release="6.1.0-test")
    assert len(list((tmp_path / "cache" / "jinja").iterdir())) >= 3
    render.render(cached, render.MODULES, kernel_release="6.1.0-test")
    for made in sorted(plain.iterdir()):
        assert (first / made.name).read_bytes() == made.read_bytes() == (cached / made.name).read_bytes()
