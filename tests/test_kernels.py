"""Kernel discovery on a fake /boot and /lib/modules tree."""

from __future__ import annotations

import pytest

from pfharness.errors import HeadersMissing, KernelNotFound
from pfharness.kernel import BUILT, HOST_TOOLCHAIN, INSTALLED, Origin
from pfharness.kmod import kernels


def make_tree(root, releases):
    """releases: {release: (has_image, has_headers)}"""
    (root / "boot").mkdir()
    (root / "lib" / "modules").mkdir(parents=True)
    for release, (image, headers) in releases.items():
        if image:
            (root / "boot" / f"vmlinuz-{release}").write_bytes(b"MZ")
        mod = root / "lib" / "modules" / release
        mod.mkdir()
        if headers:
            (mod / "build").mkdir()
            (mod / "build" / "Makefile").write_text("# kbuild\n")
    return root


def test_discover_sorts_newest_first_and_marks_usable(tmp_path):
    root = make_tree(
        tmp_path,
        {
            "6.1.0-9-amd64": (True, True),
            "6.1.0-56-amd64": (True, True),
            "6.12.12+bpo-amd64": (True, False),
        },
    )
    found = kernels.discover(root)
    assert [k.release for k in found] == ["6.12.12+bpo-amd64", "6.1.0-56-amd64", "6.1.0-9-amd64"]
    assert [k.usable for k in found] == [False, True, True]
    assert found[0].headers is None and found[0].image == root / "boot" / "vmlinuz-6.12.12+bpo-amd64"
    assert kernels.default_kernel(found).release == "6.1.0-56-amd64"


def test_headers_dir_without_makefile_is_not_headers(tmp_path):
    root = make_tree(tmp_path, {"6.1.0-56-amd64": (True, False)})
    (root / "lib" / "modules" / "6.1.0-56-amd64" / "build").mkdir()
    [k] = kernels.discover(root)
    assert k.headers is None and not k.usable
    with pytest.raises(HeadersMissing, match=r"apt-get install linux-headers-6\.1\.0-56-amd64"):
        k.require_headers()


def test_select_default_and_named(tmp_path):
    root = make_tree(tmp_path, {"6.1.0-56-amd64": (True, True), "6.12.9-amd64": (False, True)})
    assert kernels.select(None, root).release == "6.1.0-56-amd64"
    assert kernels.select("6.12.9-amd64", root).image is None
    unknown = kernels.select("5.10.0-1-amd64", root)
    assert unknown.headers is None and unknown.image is None
    with pytest.raises(KernelNotFound, match=r"linux-image-5\.10\.0-1-amd64"):
        unknown.require_image()


def test_no_usable_kernel_names_the_packages(tmp_path):
    root = make_tree(tmp_path, {"6.1.0-56-amd64": (False, True)})
    with pytest.raises(KernelNotFound, match="apt-get install linux-image-amd64 linux-headers-amd64"):
        kernels.select(None, root)


def test_empty_machine(tmp_path):
    assert kernels.discover(tmp_path) == []


def test_a_selected_kernel_comes_whole(tmp_path):
    """What boots and builds it is found once: image, headers, modules, config, origin, toolchain."""
    root = make_tree(tmp_path, {"6.1.0-56-amd64": (True, True)})
    (root / "boot" / "config-6.1.0-56-amd64").write_text("CONFIG_HZ=250\n")
    k = kernels.select(None, root)
    assert (k.image, k.headers) == (root / "boot/vmlinuz-6.1.0-56-amd64", root / "lib/modules/6.1.0-56-amd64/build")
    assert k.modules_dir == root / "lib/modules/6.1.0-56-amd64" and k.config == root / "boot/config-6.1.0-56-amd64"
    assert k.origin == Origin(INSTALLED, root) and k.installed and k.toolchain == HOST_TOOLCHAIN


def test_a_kdir_is_a_built_kernel_with_headers_only(tmp_path):
    kdir = tmp_path / "linux"
    (kdir / "include" / "config").mkdir(parents=True)
    (kdir / "Makefile").write_text("# kbuild\n")
    (kdir / "include" / "config" / "kernel.release").write_text("6.19.0-dbg\n")
    k = kernels.from_kdir(kdir, "6.1.0-56-amd64")  # the tree's own release wins over --kernel-release
    assert (k.release, k.headers, k.image, k.origin.kind) == ("6.19.0-dbg", kdir.resolve(), None, BUILT)
    assert k.toolchain == HOST_TOOLCHAIN
    (kdir / "include" / "config" / "kernel.release").unlink()
    assert kernels.from_kdir(kdir, "6.1.0-56-amd64").release == "6.1.0-56-amd64"
    with pytest.raises(HeadersMissing, match="no Makefile there"):
        kernels.from_kdir(tmp_path / "nope")
