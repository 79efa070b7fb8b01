"""Python's own start-up is part of a run's turnaround (issue 24): each command imports only what it uses.
The command line and its help load no numpy, pyarrow, matplotlib, Dask, Jinja, pexpect or QEMU's library;
`run` loads the result readers (numpy, pyarrow) only once its VM has started, while the guest resumes
(pipeline/targets.py's load_result_readers), and they are then loaded by the time the step's result is read.
Each check runs a fresh interpreter and reads its sys.modules."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

from pfharness import proc

HEAVY = ("numpy", "pyarrow", "matplotlib", "dask", "distributed", "jinja2", "pexpect", "qemu", "elftools")


def modules_after(code: str, *argv: str) -> set[str]:
    """The modules a fresh interpreter holds after `code` (which prints them as JSON on its last line)."""
    done = proc.run([sys.executable, "-c", code, *argv], timeout=120)
    assert done.stdout.strip(), done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or m == "rich.markdown")


def test_importing_the_command_line_loads_no_command():
    modules = modules_after("import json, sys, pfharness.cli; print(json.dumps(sorted(sys.modules)))")
    assert heavy(modules) == []
    assert not {"pfharness.run", "pfharness.pipeline.core", "pfharness.kmod.render", "pfharness.guest"} & modules
    assert "pfharness.cli" in modules


def test_help_loads_nothing_heavy():
    code = textwrap.dedent(
        """
        import atexit, json, sys
        atexit.register(lambda: print(json.dumps(sorted(sys.modules))))
        from pfharness import cli
        sys.argv = ["pfharness", *sys.argv[1:]]
        cli.main()
        """
    )
    for argv in (["--help"], ["run", "--help"], ["sites", "--help"], ["grade", "--help"], ["check", "--help"]):
        modules = modules_after(code, *argv)
        assert [m for m in heavy(modules) if m != "rich.markdown"] == [], argv
        assert "typer.rich_utils" in modules, argv  # the help itself was rendered


def test_a_run_loads_the_result_readers_only_once_its_vm_starts(tmp_path: Path):
    """The real `run` command up to where its VM would start (a target whose open() stops there), then what
    load_result_readers() adds."""
    code = textwrap.dedent(
        """
        import json, sys
        from pfharness import cli
        from pfharness.errors import PfhError
        from pfharness.pipeline.prepare import Prepared
        from pfharness.pipeline.targets import VmSpec, load_result_readers


        class Spec(VmSpec):
            def prepare(self, release, build_dir):
                return Prepared("0-test", {"B": build_dir / "pf_probe_B.ko"}, build_dir)

            def open(self, prepared, **kw):
                before = sorted(sys.modules)
                load_result_readers()
                print(json.dumps([before, sorted(sys.modules)]))
                raise PfhError("stopped where the VM would start")


        cli.target_spec = lambda *a, **k: Spec()
        sys.argv = ["pfharness", "run", "--out", sys.argv[1], "--", "true"]
        cli.main()
        """
    )
    done = proc.run([sys.executable, "-c", code, str(tmp_path)], timeout=120)
    assert "stopped where the VM would start" in done.stderr and done.returncode == 120, done.stderr
    before, after = (set(m) for m in json.loads(done.stdout.strip().splitlines()[-1]))
    # Jinja (the build's freshness check), pexpect and QEMU's library (the VM's start) are what a run needs first.
    assert [m for m in heavy(before) if m.split(".")[0] not in ("jinja2", "pexpect", "qemu")] == []
    assert {"numpy", "pfharness.results.run_dir", "pfharness.results.text", "pfharness.results.sites"} <= after
    assert ("pyarrow.parquet" in after) == _has_pyarrow()


def _has_pyarrow() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None
