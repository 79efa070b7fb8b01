"""The QEMU command line is a pure function of the VM configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfharness.guest.machine import VmConfig, kernel_cmdline, qemu_argv

CFG = VmConfig(kernel=Path("/k/vmlinux"), initrd=Path("/k/initrd.cpio"), smp=2, memory_mib=2048)


def option(argv, name):
    return argv[argv.index(name) + 1]


def test_tcg():
    argv = qemu_argv(CFG)
    assert option(argv, "-accel") == "tcg,thread=single"
    assert option(argv, "-cpu") == "max"
    assert "-no-reboot" in argv and "-nographic" in argv
    assert option(argv, "-smp") == "2" and option(argv, "-m") == "2048M"
    assert option(argv, "-kernel") == "/k/vmlinux" and option(argv, "-initrd") == "/k/initrd.cpio"
    fsdev = option(argv, "-fsdev")
    assert "path=/," in fsdev and "readonly=on" in fsdev and "security_model=none" in fsdev


def test_kvm():
    argv = qemu_argv(VmConfig(kernel=CFG.kernel, initrd=CFG.initrd, accel="kvm"))
    assert option(argv, "-accel") == "kvm" and option(argv, "-cpu") == "host"


def test_cmdline_makes_a_crash_end_the_vm():
    cmdline = kernel_cmdline(CFG).split()
    for word in ("console=ttyS0", "panic=-1", "oops=panic"):
        assert word in cmdline
    assert "log_buf_len=16M" in cmdline  # the default: room for pf_probe_A's line per fault


def test_the_log_buffer_is_sized_per_run():
    small = kernel_cmdline(VmConfig(kernel=CFG.kernel, initrd=CFG.initrd, log_buf_mib=1)).split()
    assert "log_buf_len=1M" in small and not any(w == "log_buf_len=16M" for w in small)
    with pytest.raises(ValueError):
        kernel_cmdline(VmConfig(kernel=CFG.kernel, initrd=CFG.initrd, log_buf_mib=0))


def test_a_run_gets_a_large_log_buffer_only_when_it_prints_per_fault():
    from pfharness.pipeline.steps import Step
    from pfharness.pipeline.targets import log_buffer_mib
    from pfharness.values import Module

    def step(letter, *params):
        return Step(Module(letter), ("true",), params=params)

    assert log_buffer_mib([step("A")]) == 16
    assert log_buffer_mib([step("B")]) == 1
    assert log_buffer_mib([step("C", "dump_records=1")]) == 16
    assert log_buffer_mib([step("C", "dump_records=0")]) == 1
    assert log_buffer_mib([step("B"), step("A")]) == 16, "one boot for both: the larger buffer"


def test_bad_values_are_refused():
    with pytest.raises(ValueError):
        kernel_cmdline(VmConfig(kernel=CFG.kernel, initrd=CFG.initrd, extra_append=("a b",)))
    with pytest.raises(ValueError):
        qemu_argv(VmConfig(kernel=CFG.kernel, initrd=CFG.initrd, smp=0))


def test_the_save_dir_is_the_only_writable_export():
    """With a save directory: a second 9p export of exactly that directory, read-write, under its own tag, and
    pfh.save=TAG on the kernel command line; the host root stays read-only. Without one: neither."""
    from dataclasses import replace

    assert "pfh.save" not in kernel_cmdline(CFG) and qemu_argv(CFG).count("-fsdev") == 1
    cfg = replace(CFG, save_dir=Path("/out/runs/x-pf_probe_B/guest"))
    argv = qemu_argv(cfg)
    fsdevs = [argv[i + 1] for i, a in enumerate(argv) if a == "-fsdev"]
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    assert len(fsdevs) == 2
    assert "path=/," in fsdevs[0] and "readonly=on" in fsdevs[0]
    assert fsdevs[1].startswith("local,id=pfhsave,path=/out/runs/x-pf_probe_B/guest,") and "readonly" not in fsdevs[1]
    assert "fsdev=pfhsave,mount_tag=pfhsave" in devices[-1]
    assert "pfh.save=pfhsave" in kernel_cmdline(cfg).split()
    with pytest.raises(ValueError, match="','"):
        qemu_argv(replace(CFG, save_dir=Path("/a,b")))


def test_virtio_device_names_follow_the_transport():
    from dataclasses import replace

    from pfharness.guest.machine import virtio_device

    assert virtio_device(CFG, "9p") == "virtio-9p-pci"
    assert virtio_device(replace(CFG, machine="pc"), "serial") == "virtio-serial-pci"
    mmio = replace(CFG, machine="microvm")
    assert virtio_device(mmio, "9p") == "virtio-9p-device"
    assert virtio_device(mmio, "serial") == "virtio-serial-device"
    assert option(qemu_argv(CFG), "-device").startswith("virtio-9p-pci,")
    with pytest.raises(ValueError):
        virtio_device(CFG, "gpu")


def test_ports_are_named_virtio_serial_ports_on_sockets():
    from dataclasses import replace

    from pfharness.guest.machine import kernel_cmdline
    from pfharness.results.step_protocol import PORTS

    cfg = replace(CFG, ports=tuple((name, Path(f"/tmp/p/{name}.sock")) for name in PORTS))
    argv = qemu_argv(cfg)
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    chardevs = [argv[i + 1] for i, a in enumerate(argv) if a == "-chardev"]
    assert "virtio-serial-pci,id=pfhser" in devices
    for i, name in enumerate(PORTS):
        assert f"socket,id=pfhport{i},path=/tmp/p/{name}.sock" in chardevs  # QEMU connects: the harness listens
        assert f"virtserialport,bus=pfhser.0,chardev=pfhport{i},name={name}" in devices
    assert "pfh.ports=pfh.proto,pfh.out,pfh.err" in kernel_cmdline(cfg).split()
    assert "pfh.ports=" not in kernel_cmdline(CFG) and "virtio-serial-pci,id=pfhser" not in qemu_argv(CFG)
    with pytest.raises(ValueError):
        qemu_argv(replace(CFG, ports=(("a,b", Path("/tmp/x.sock")),)))


def test_lpj_preset_and_icount():
    from dataclasses import replace

    assert "lpj=" not in kernel_cmdline(CFG)
    assert "lpj=10384560" in kernel_cmdline(replace(CFG, lpj=10384560)).split()
    assert "-icount" not in qemu_argv(CFG)
    argv = qemu_argv(replace(CFG, smp=1, icount_shift=0))
    assert option(argv, "-icount") == "shift=0,sleep=off"
    with pytest.raises(ValueError):  # two vCPUs hang under icount
        qemu_argv(replace(CFG, icount_shift=0))
    with pytest.raises(ValueError):
        qemu_argv(replace(CFG, smp=1, accel="kvm", icount_shift=0))


def test_preset_lpj_from_the_hosts_bogomips_and_the_guests_hz(tmp_path):
    from pfharness.guest.boot import preset_lpj

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nbogomips\t: 5192.28\n")
    config = tmp_path / "config-9.9"
    config.write_text("CONFIG_HZ_250=y\nCONFIG_HZ=250\n")
    assert preset_lpj(config, cpuinfo) == 10384560  # 2596.14 MHz TSC / 250 Hz
    config.write_text("CONFIG_HZ=1000\n")
    assert preset_lpj(config, cpuinfo) == 2596140
    assert preset_lpj(None, cpuinfo) is None  # no config: the guest measures
    assert preset_lpj(tmp_path / "config-8.8", cpuinfo) is None  # unreadable: the guest measures
    cpuinfo.write_text("processor\t: 0\n")
    assert preset_lpj(config, cpuinfo) is None


def test_tsc_frequency_is_given():
    from dataclasses import replace

    assert "tsc_early_khz" not in kernel_cmdline(CFG)
    assert "tsc_early_khz=2596140" in kernel_cmdline(replace(CFG, tsc_khz=2596140)).split()
