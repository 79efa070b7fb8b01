"""Booting and driving the VM: QEMU machine and argv, accelerator, PVH kernel, initramfs, console, session."""
