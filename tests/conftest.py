"""Shared fixtures. Slow tests are marked `kbuild` (real kbuild) or `vm` (real QEMU)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pfharness import kernels

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def default_kernel() -> kernels.KernelInfo:
    """The kernel the real tests build for; they fail (not skip) without one: `make test` installs it."""
    kernel = kernels.default_kernel(kernels.discover())
    assert kernel is not None, "no kernel with image and headers: run `make test` (it installs linux-image-amd64 and linux-headers-amd64)"
    return kernel


@pytest.fixture(scope="session")
def built_modules(tmp_path_factory, default_kernel):
    """All three modules, really built once with warnings as errors."""
    from pfharness import kbuild

    out = tmp_path_factory.mktemp("modules")
    return kbuild.build(kbuild.BuildRequest(out_dir=out, kernel_release=default_kernel.release, werror=True))


def copy_templates(dst: Path) -> Path:
    from pfharness import assets

    shutil.copytree(assets.KMOD_TEMPLATES, dst)
    return dst
