"""The initramfs writer and the kernel-image extraction (no VM needed)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from pfharness.guest import cpio, initramfs, kernel_image
from pfharness.guest.cpio import CpioEntry


def test_newc_archive_reads_back_with_cpio(tmp_path):
    archive = cpio.newc_archive(
        cpio.with_parent_dirs(
            [
                CpioEntry.file("bin/hello", b"#!/bin/sh\necho hi\n", perm=0o755),
                CpioEntry.symlink("bin/sh", "busybox"),
                CpioEntry.chardev("dev/console", 5, 1),
            ]
        )
    )
    assert archive == cpio.newc_archive(
        cpio.with_parent_dirs(
            [
                CpioEntry.file("bin/hello", b"#!/bin/sh\necho hi\n", perm=0o755),
                CpioEntry.symlink("bin/sh", "busybox"),
                CpioEntry.chardev("dev/console", 5, 1),
            ]
        )
    ), "not reproducible"
    if shutil.which("cpio") is None:
        pytest.skip("cpio is not installed (make test installs it)")
    listing = subprocess.run(["cpio", "-itv"], input=archive, capture_output=True, check=True).stdout.decode()
    assert "bin/hello" in listing and "bin/sh -> busybox" in listing and "dev/console" in listing
    subprocess.run(
        ["cpio", "-idm", "--no-absolute-filenames"], input=archive, cwd=tmp_path, capture_output=True, check=True
    )
    assert (tmp_path / "bin" / "hello").read_bytes() == b"#!/bin/sh\necho hi\n"


def test_modules_closure_puts_dependencies_first(tmp_path):
    (tmp_path / "modules.dep").write_text(
        "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko\n"
        "kernel/net/9p/9pnet.ko:\n"
        "kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko\n"
        "kernel/fs/netfs/netfs.ko:\n"
    )
    for rel in (
        "kernel/fs/9p/9p.ko",
        "kernel/net/9p/9pnet.ko",
        "kernel/fs/fscache/fscache.ko",
        "kernel/fs/netfs/netfs.ko",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"\x7fELF")
    order = [p.name for p in initramfs.modules_closure(tmp_path, ["9p"])]
    assert order[-1] == "9p.ko"
    assert order.index("netfs.ko") < order.index("fscache.ko") < order.index("9p.ko")
    assert set(order) == {"9p.ko", "9pnet.ko", "fscache.ko", "netfs.ko"}


def test_unknown_module_is_an_error(tmp_path):
    (tmp_path / "modules.dep").write_text("kernel/a.ko:\n")
    with pytest.raises(initramfs.InitramfsError):
        initramfs.modules_closure(tmp_path, ["nope"])


def test_extract_refuses_what_is_not_a_bzimage(tmp_path):
    fake = tmp_path / "vmlinuz"
    fake.write_bytes(b"\0" * 4096)
    with pytest.raises(kernel_image.KernelImageError):
        kernel_image.extract_vmlinux(fake, tmp_path / "vmlinux")


def _signed(elf: bytes, signature: bytes) -> bytes:
    info = bytes([0, 0, 2, 0, 0, 0, 0, 0]) + len(signature).to_bytes(4, "big")  # PKCS#7: no signer, no key id
    return elf + signature + info + initramfs.MODULE_SIG_MAGIC


def test_a_module_signature_is_stripped_and_nothing_else():
    elf = b"\x7fELF" + bytes(range(200))
    assert initramfs.strip_module_signature(_signed(elf, b"S" * 700)) == elf
    assert initramfs.strip_module_signature(elf) == elf  # unsigned: unchanged
    # A length that does not fit the file is not trusted: unchanged.
    bogus = elf + bytes(8) + (10**6).to_bytes(4, "big") + initramfs.MODULE_SIG_MAGIC
    assert initramfs.strip_module_signature(bogus) == bogus


def test_a_real_debian_module_ends_at_its_section_headers_once_stripped():
    modules = sorted(Path("/lib/modules").glob("*/kernel/fs/overlayfs/overlay.ko*"))
    if not modules:
        pytest.skip("no Debian kernel modules installed")
    _, data = initramfs._read_module(modules[-1])
    stripped = initramfs.strip_module_signature(data)
    assert data.endswith(initramfs.MODULE_SIG_MAGIC) and len(stripped) < len(data)
    # The oracle: an x86-64 ELF object's section header table is the last thing in the file.
    (e_shoff,) = struct.unpack_from("<Q", stripped, 0x28)
    e_shentsize, e_shnum = struct.unpack_from("<HH", stripped, 0x3A)
    assert e_shoff + e_shentsize * e_shnum == len(stripped)
