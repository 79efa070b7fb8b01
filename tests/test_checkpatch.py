"""The rendered module sources pass the kernel's checkpatch.pl --strict with nothing to report.

checkpatch comes from PFH_CHECKPATCH (a path to checkpatch.pl) when set, else from the Debian
package linux-source-6.1: its three files are extracted once from the tarball into the cache.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from pfharness import assets
from pfharness.kmod import render

pytestmark = pytest.mark.kbuild

SOURCE_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
CHECKPATCH_FILES = ("checkpatch.pl", "spelling.txt", "const_structs.checkpatch")
TOTAL = re.compile(r"^total: (\d+) errors, (\d+) warnings, (\d+) checks, \d+ lines checked$", re.M)


def _extract_checkpatch(dest: Path) -> None:
    """Extract scripts/{checkpatch.pl,spelling.txt,const_structs.checkpatch} into dest/scripts/."""
    staging = Path(tempfile.mkdtemp(prefix=".checkpatch-", dir=dest.parent))
    try:
        argv = ["tar", "-xJf", str(SOURCE_TARBALL), "-C", str(staging), "--strip-components=1", "--wildcards"]
        argv += [f"*/scripts/{name}" for name in CHECKPATCH_FILES]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"extracting checkpatch from {SOURCE_TARBALL} failed:\n{result.stderr}"
        for name in CHECKPATCH_FILES:
            assert (staging / "scripts" / name).is_file(), f"{SOURCE_TARBALL} has no scripts/{name}"
        try:
            staging.rename(dest)  # atomic: a concurrent run that got there first wins
        except OSError:
            if not (dest / "scripts" / "checkpatch.pl").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@pytest.fixture(scope="session")
def checkpatch() -> Path:
    """checkpatch.pl: PFH_CHECKPATCH, or extracted once from linux-source-6.1; fails (not skips) without it."""
    configured = os.environ.get("PFH_CHECKPATCH")
    if configured:
        path = Path(configured)
        assert path.is_file(), f"PFH_CHECKPATCH={configured} is not a file"
        return path
    dest = assets.cache_dir() / "checkpatch-6.1"
    path = dest / "scripts" / "checkpatch.pl"
    if not path.is_file():
        assert SOURCE_TARBALL.is_file(), (
            f"{SOURCE_TARBALL} is missing: run `apt-get install linux-source-6.1` "
            "or set PFH_CHECKPATCH to a checkpatch.pl"
        )
        _extract_checkpatch(dest)
    return path


@pytest.mark.parametrize("profile", list(render.Profile))
@pytest.mark.parametrize("letter", render.MODULES)
def test_rendered_module_is_checkpatch_clean(checkpatch, tmp_path, letter, profile):
    source = tmp_path / f"{render.module_name(letter)}.c"
    source.write_text(render.render_module(letter, profile=profile))
    argv = ["perl", str(checkpatch), "--no-tree", "--strict", "--show-types", "--color=never", "-f", str(source)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    totals = TOTAL.search(output)
    assert totals is not None, f"checkpatch printed no totals (exit status {result.returncode}):\n{output}"
    assert totals.groups() == ("0", "0", "0"), f"checkpatch --strict found problems:\n{output}"
    assert result.returncode == 0, output
