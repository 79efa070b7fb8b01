"""A wheel carries everything: built from the checkout, installed in a fresh virtualenv outside it.

The module-scoped `installed` fixture builds one wheel and one virtualenv per session; the
tests run the virtualenv's `pfharness` console script from tmp_path, with neither the
checkout nor its virtualenv on sys.path, PATH or PYTHONPATH.

The wheel is built from a copy of the checkout's files (tracked and untracked, not ignored,
as `git ls-files` lists them): building in place would leave build/ in the checkout, where a
stale build/lib from an earlier build can put a file in the wheel that the package mapping no
longer maps.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.wheel

CHECKOUT = Path(__file__).resolve().parent.parent
# The data directories pyproject.toml maps into pfharness/data/ (with Makefile.j2 beside them).
DATA_DIRS = ("kmod_templates", "vm", "handin", "study")
MUST_SHIP = (
    "Makefile.j2",
    "vm/init.sh",
    "vm/run_step.sh",
    "vm/walk.py",
    "vm/experiment.py",
    "handin/README.j2",
    "study/report.txt",
)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    env: dict[str, str]

    @property
    def pfharness(self) -> Path:
        return self.venv / "bin" / "pfharness"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def _checkout_files() -> list[Path]:
    """The checkout's files as a clone plus its working-tree changes would have them."""
    listed = subprocess.run(
        ["git", "-C", str(CHECKOUT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    return [Path(os.fsdecode(name)) for name in listed if name and (CHECKOUT / os.fsdecode(name)).is_file()]


def _clean_env(venv: Path | None) -> dict[str, str]:
    """The environment of a user who has not activated the checkout's virtualenv."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSAFEPATH")
    }
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not Path(p).resolve().is_relative_to(CHECKOUT)]
    if venv is not None:
        path.insert(0, str(venv / "bin"))
        env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join(path)
    return env


def _run(argv, *, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _expected_data_files() -> list[str]:
    """Every data file of the checkout, relative to what becomes pfharness/data/ (by glob: none forgotten)."""
    files = ["Makefile.j2"]
    for directory in DATA_DIRS:
        for path in sorted((CHECKOUT / directory).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.append(path.relative_to(CHECKOUT).as_posix())
    return files


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    started = time.monotonic()

    source = root / "src"
    for rel in _checkout_files():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(CHECKOUT / rel, source / rel)

    dist = root / "dist"
    have_build = (
        subprocess.run([sys.executable, "-c", "import build"], capture_output=True, check=False).returncode == 0
    )
    if have_build:
        command = [sys.executable, "-m", "build", "--wheel", "--outdir", dist, source]
    else:  # the [test] extra not installed yet
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist, source]
    built = _run(command, cwd=root, env=_clean_env(None), timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = dist.glob("pfharness-*.whl")
    built_at = time.monotonic()

    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", venv], cwd=root, env=_clean_env(None), timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    env = _clean_env(venv)
    pip = _run(
        [venv / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check", "-q", wheel],
        cwd=root,
        env=env,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    print(f"wheel built in {built_at - started:.1f} s, installed in {time.monotonic() - built_at:.1f} s: {wheel}")

    result = Installed(wheel, venv, env)
    assert result.pfharness.is_file()

    # The installed package is the one imported, with the checkout nowhere on sys.path.
    probe = _run(
        [
            result.python,
            "-c",
            "import json, sys, pfharness; from pfharness import assets; "
            "print(json.dumps([pfharness.__file__, str(assets.data_root()), sys.path]))",
        ],
        cwd=root,
        env=env,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    module_file, data_root, sys_path = json.loads(probe.stdout)
    site_packages = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert Path(module_file) == site_packages / "pfharness" / "__init__.py"
    assert Path(data_root) == site_packages / "pfharness" / "data"
    assert not [p for p in sys_path if p and Path(p).resolve().is_relative_to(CHECKOUT)], sys_path
    return result


def test_wheel_lists_every_data_file(installed):
    with zipfile.ZipFile(installed.wheel) as whl:
        names = set(whl.namelist())
        expected = _expected_data_files()
        for required in MUST_SHIP:
            assert required in expected, f"{required} is not in the checkout"
        templates = [f for f in expected if f.startswith("kmod_templates/")]
        assert {f"kmod_templates/pf_probe_{letter}.c.j2" for letter in "ABC"} <= set(templates)
        assert any(f.startswith("kmod_templates/common/") for f in templates)

        missing = [f for f in expected if f"pfharness/data/{f}" not in names]
        assert not missing, f"not in the wheel {installed.wheel.name}: {missing}"
        differ = [f for f in expected if whl.read(f"pfharness/data/{f}") != (CHECKOUT / f).read_bytes()]
        assert not differ, f"differ from the checkout: {differ}"


def test_installed_render_matches_the_checkout(installed, tmp_path):
    checkout_pfharness = Path(sys.executable).parent / "pfharness"
    assert checkout_pfharness.is_file(), "the checkout's virtualenv has no pfharness: run `make setup`"

    ours = _run(
        [installed.pfharness, "render", "--out", tmp_path / "src"], cwd=tmp_path, env=installed.env, timeout=120
    )
    assert ours.returncode == 0, ours.stderr
    theirs = _run(
        [checkout_pfharness, "render", "--out", tmp_path / "checkout-src"],
        cwd=tmp_path,
        env=_clean_env(None),
        timeout=120,
    )
    assert theirs.returncode == 0, theirs.stderr

    names = ["pf_probe_A.c", "pf_probe_B.c", "pf_probe_C.c", "Makefile"]
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == sorted(names)
    for name in names:
        assert (tmp_path / "src" / name).read_bytes() == (tmp_path / "checkout-src" / name).read_bytes(), name


@pytest.mark.kbuild
def test_installed_build_makes_the_three_modules(installed, tmp_path):
    out = tmp_path / "build"
    built = _run([installed.pfharness, "build", "--out", out, "--werror"], cwd=tmp_path, env=installed.env, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    for letter in "ABC":
        module = out.resolve() / f"pf_probe_{letter}.ko"
        assert module.is_file() and module.stat().st_size > 0, built.stdout
        assert str(module) in built.stdout


@pytest.mark.vm
def test_installed_run_traces_under_tcg(installed, tmp_path):
    run = _run(
        [installed.pfharness, "run", "--accel", "tcg", "--out", tmp_path / "out", "--", "true"],
        cwd=tmp_path,
        env=installed.env,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert re.search(r"^---- BEGIN PLOT pid=\d+ comm=true class=all scale=folded ----$", out, re.M), out
    assert "---- END PLOT ----" in out
    assert "---- pfharness summary ----" in out
    assert re.search(r"^module:\s+pf_probe_B$", out, re.M), out
    assert re.search(r"^kernel:\s+\S+ \(vm, accelerator tcg\)$", out, re.M), out
    assert re.search(r"^workload status: 0$", out, re.M), out
