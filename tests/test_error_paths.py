"""Every failure is a PfhError with a message that names the fix and its documented exit status;
no traceback reaches the user (issue: one error hierarchy)."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import lzma
import shutil
import sys
from pathlib import Path

import pytest
import zstandard

from pfharness import cli, proc
from pfharness.errors import PfhError, SetupError
from pfharness.guest import cpio, initramfs, kernel_image
from pfharness.guest.console import Console
from pfharness.kmod import kernels
from pfharness.results import notes, transcript

COMPRESSORS = {
    ".ko": lambda b: b,
    ".ko.xz": lzma.compress,
    ".ko.gz": gzip.compress,
    ".ko.zst": lambda b: zstandard.ZstdCompressor().compress(b),
}


def fake_modules(root: Path, release: str, suffix: str, real: Path) -> Path:
    """A modules directory for `release` whose 9p, overlay and virtio modules are real module files,
    compressed with `suffix`'s format, as Debian ships them from 6.12 on (.ko.xz) or as others do."""
    mod_dir = root / release
    deps = {
        "kernel/fs/9p/9p": ["kernel/net/9p/9pnet"],
        "kernel/net/9p/9pnet": [],
        "kernel/net/9p/9pnet_virtio": ["kernel/net/9p/9pnet"],
        "kernel/fs/overlayfs/overlay": [],
        "kernel/drivers/char/virtio_console": [],
    }
    lines = []
    for stem, dep in deps.items():
        data = (real / f"{stem}.ko").read_bytes()
        path = mod_dir / f"{stem}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(COMPRESSORS[suffix](data))
        lines.append(f"{stem}{suffix}: " + " ".join(d + suffix for d in dep))
    (mod_dir / "modules.dep").write_text("\n".join(lines) + "\n")
    (mod_dir / "modules.builtin").write_text("kernel/drivers/virtio/virtio_pci.ko\n")  # built in: needs no file
    return mod_dir


@pytest.fixture(scope="module")
def real_modules() -> Path:
    kernel = kernels.default_kernel(kernels.discover())
    assert kernel is not None and kernel.modules_dir is not None, "make test installs linux-image-amd64"
    return kernel.modules_dir


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_compressed_and_builtin_modules_go_into_the_initramfs(tmp_path, real_modules, suffix):
    fake_modules(tmp_path / "lib", "9.9.9-test", suffix, real_modules)
    out = initramfs.build_initramfs(
        "9.9.9-test", tmp_path / "initrd.cpio", modules_root=tmp_path / "lib",
        busybox=Path(shutil.which("busybox") or "/bin/busybox"), init_script="#!/bin/sh\n",
    )  # fmt: skip
    archive = out.read_bytes()
    original = (real_modules / "kernel/fs/9p/9p.ko").read_bytes()
    # Decompressed, byte for byte, less the appended signature (initramfs.strip_module_signature).
    assert original.endswith(initramfs.MODULE_SIG_MAGIC)
    unsigned = initramfs.strip_module_signature(original)
    assert unsigned in archive and len(unsigned) < len(original) and original not in archive
    listed = archive.split(b"modules.order\x00", 1)[1].lstrip(b"\x00").split(b"\n")
    order = [line.decode() for line in listed if line.startswith(b"/lib/modules/")]
    # virtio_pci is built in (no file); dependencies come first
    assert order == [
        f"/lib/modules/9.9.9-test/{m}.ko" for m in ("9pnet", "9pnet_virtio", "9p", "overlay", "virtio_console")
    ]


def test_missing_modules_dep_is_a_setup_error(tmp_path):
    (tmp_path / "lib" / "9.9.9-test").mkdir(parents=True)
    with pytest.raises(initramfs.InitramfsError) as err:
        initramfs.modules_closure(tmp_path / "lib" / "9.9.9-test", ["9p"])
    assert err.value.exit_status == 126 and "depmod 9.9.9-test" in str(err.value)


def test_unreadable_busybox_and_a_corrupt_module_are_setup_errors(tmp_path, real_modules):
    fake_modules(tmp_path / "lib", "9.9.9-test", ".ko.zst", real_modules)
    kwargs = {"modules_root": tmp_path / "lib", "init_script": "#!/bin/sh\n"}
    with pytest.raises(SetupError, match="apt-get install busybox-static"):
        initramfs.build_initramfs("9.9.9-test", tmp_path / "a.cpio", busybox=tmp_path / "no-busybox", **kwargs)
    (tmp_path / "lib/9.9.9-test/kernel/fs/9p/9p.ko.zst").write_bytes(b"\x28\xb5\x2f\xfd garbage")
    with pytest.raises(SetupError, match="not a valid zstd file"):
        initramfs.build_initramfs("9.9.9-test", tmp_path / "b.cpio", busybox=Path("/bin/busybox"), **kwargs)


def test_a_bad_kernel_image_is_a_setup_error(tmp_path):
    bad = tmp_path / "vmlinuz"
    bad.write_bytes(b"not a kernel" * 100)
    with pytest.raises(kernel_image.KernelImageError) as err:
        kernel_image.extract_vmlinux(bad, tmp_path / "out")
    assert isinstance(err.value, PfhError) and err.value.exit_status == 126


def test_a_cpio_entry_escaping_the_root_is_refused():
    with pytest.raises(cpio.CpioError):
        cpio.newc_archive([cpio.CpioEntry.file("../etc/passwd", b"x")])


def run_main(monkeypatch, capsys, *argv: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["pfharness", *argv])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    err = capsys.readouterr().err
    return int(exited.value.code or 0), err


@pytest.mark.kbuild
def test_run_with_broken_kernel_modules_exits_126_without_traceback(tmp_path, monkeypatch, capsys, default_kernel):
    """The whole path of `pfharness run`: a kernel whose modules directory has no modules.dep."""
    modules_dir = tmp_path / "lib" / default_kernel.release  # exists, but has no modules.dep
    modules_dir.mkdir(parents=True)
    broken = dataclasses.replace(default_kernel, modules_dir=modules_dir)
    monkeypatch.setattr(kernels, "select", lambda release=None, root=None: broken)
    monkeypatch.setenv("PFHARNESS_CACHE", str(tmp_path / "cache"))
    status, err = run_main(monkeypatch, capsys, "run", "--accel", "tcg", "--out", str(tmp_path / "out"), "--", "true")
    assert status == 126, err
    assert "modules.dep" in err and "depmod" in err and "Traceback" not in err
    assert err.count("\n") == 1  # one line


def test_an_unexpected_exception_is_one_line_and_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PFHARNESS_CACHE", str(tmp_path))

    def boom(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(transcript, "parse_transcript", boom)
    log = tmp_path / "t.log"
    log.write_text("x\n")
    status, err = run_main(monkeypatch, capsys, "parse", str(log))
    assert status == 120 and "internal error: ZeroDivisionError: a bug" in err and "Traceback" not in err
    saved = next(tmp_path.glob("internal-error-*.txt")).read_text()
    assert "Traceback" in saved and "ZeroDivisionError" in saved


@pytest.mark.parametrize(
    ("argv", "status", "words"),
    [
        (["run", "--accel", "foo", "--", "true"], 2, "foo"),
        (["run", "--target", "moon", "--", "true"], 2, "moon"),
        (["run", "--timeout", "0", "--", "true"], 2, "--timeout"),
        (["run", "--timeout", "nan", "--", "true"], 2, "--timeout"),
        (["run", "--timeout", "inf", "--", "true"], 2, "--timeout"),
        (["run", "--param", "tpid=1", "--", "true"], 2, "tpid is set by pfharness"),
        (["run", "--param", "x y", "--", "true"], 2, "NAME=VALUE"),
        (["run", "--", ""], 2, "no workload"),
        (["run", "--module", "Q", "--", "true"], 2, "--module Q: not a module: use A, B or C"),
        (["build", "--module", "D"], 2, "--module D: not a module: use A, B or C"),
        (["render", "--module", "D"], 2, "--module D: not a module: use A, B or C"),
        (["study", "--module", "D"], 2, "--module D: not a module: use A, B or C"),
        (["run", "--", "no-such-program-pfh"], 127, "command not found: no-such-program-pfh"),
        (["run", "--target", "host", "--", "no-such-program-pfh"], 127, "command not found"),
        (["run", "--env", "PATH=/nonexistent", "--", "no-such-program-pfh"], 127, "command not found"),
        (["run", "--", "cd", "/"], 127, "cd is a shell builtin, not a program"),
        (["run", "--", "./no-such-program-pfh"], 127, "./no-such-program-pfh: no such program"),
        (["run", "--cwd", "/", "--", "tmp"], 127, "command not found: tmp"),
        (["parse", "/nonexistent/file"], 2, "cannot read /nonexistent/file"),
    ],
)
def test_bad_input_is_a_usage_error_before_anything_boots(monkeypatch, capsys, argv, status, words):
    monkeypatch.setattr(kernels, "select", lambda *a, **k: pytest.fail("looked for a kernel before validating"))
    got, err = run_main(monkeypatch, capsys, *argv)
    assert got == status and words in err and "Traceback" not in err


def test_console_temp_files_have_private_names(tmp_path):
    """A symlink planted at the old fixed names (/tmp/pfh-cmd.b64, /tmp/pfh-cmd.sh) is not followed."""
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    planted = [Path("/tmp/pfh-cmd.b64"), Path("/tmp/pfh-cmd.sh")]
    for link in planted:
        link.unlink(missing_ok=True)
        link.symlink_to(victim)
    try:
        path = tmp_path / "console.log"
        with contextlib.closing(notes.open_transcript(path)) as transcript:
            child = proc.spawn_interactive(["sh", "-i"], logfile=transcript, timeout=10)
            console = Console(child, transcript, path)
            console.start_shell("start", timeout=10)
            result = console.run(["printf", "%s", "tab\there"], stage="test", timeout=10)  # a tab: sent as base64
            child.close(force=True)
        assert result.status == 0 and "tab\there" in result.output
        assert victim.read_text() == "untouched\n"
    finally:
        for link in planted:
            link.unlink(missing_ok=True)
