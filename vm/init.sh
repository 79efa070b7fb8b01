#!/bin/sh
# pfharness guest /init (runs under busybox sh from the initramfs).
#
# 1. mount proc, sys, devtmpfs;
# 2. insmod the modules listed in /modules.order (dependencies first);
# 3. mount the host root (9p tag "hostroot") read-only on /lower;
# 4. build a writable root: overlayfs (lower = 9p, upper/work = tmpfs), or,
#    if overlay is refused, the read-only 9p root with tmpfs on the usual
#    writable directories;
# 5. move /proc /sys /dev into it, print the ready marker PFH-READY, and run
#    the host's /bin/sh (dash) interactively on /dev/ttyS0, chrooted into the
#    new root; when it exits, power off (QEMU then exits).
#
# Why chroot and not switch_root: PID 1 stays busybox, so the final
# "poweroff -f" is a synchronous reboot(2) from a binary that is not on 9p
# (after "echo o > /proc/sysrq-trigger" the virtio device is shut down
# while PID 1 still runs, and a host-root PID 1 then dies -> kernel panic).
# Why dash: no line editing, so the serial stream holds no cursor-control
# escapes for the host's pexpect; it is the host's /bin/sh anyway.
#
# Optional kernel command line parameters (read from /proc/cmdline):
#   pfh.9p=OPTS        extra 9p mount options (default: msize=512000,cache=loose)
#   pfh.root=overlay|ro  writable-root strategy (default: overlay, falls back to ro)
#   pfh.loglevel=N     console loglevel set just before the shell starts
#   pfh.shell=PATH     shell run on the serial console (default: /bin/sh)
# Failures print "PFH-INIT-ERROR: ..." and power off, so the host never hangs.

PATH=/bin
export PATH

fail() {
    echo "PFH-INIT-ERROR: $*"
    poweroff -f
    sleep 5
}

mount -t proc proc /proc || fail "mount proc"
mount -t sysfs sysfs /sys || fail "mount sysfs"
mount -t devtmpfs devtmpfs /dev || fail "mount devtmpfs"

P9_OPTS="msize=512000,cache=loose"
ROOT_MODE=overlay
LOGLEVEL=
SHELL_BIN=/bin/sh
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        pfh.9p=*) P9_OPTS="${arg#pfh.9p=}" ;;
        pfh.root=*) ROOT_MODE="${arg#pfh.root=}" ;;
        pfh.loglevel=*) LOGLEVEL="${arg#pfh.loglevel=}" ;;
        pfh.shell=*) SHELL_BIN="${arg#pfh.shell=}" ;;
    esac
done

while read -r mod; do
    [ -n "$mod" ] || continue
    insmod "$mod" || fail "insmod $mod"
done < /modules.order

mount -t 9p -o "trans=virtio,version=9p2000.L,ro,$P9_OPTS" hostroot /lower \
    || fail "mount 9p hostroot (is -virtfs/-device virtio-9p with mount_tag=hostroot given?)"

# Writable root. overlayfs needs upper and work on the same tmpfs.
mount -t tmpfs -o mode=0755 pfh-rw /rw || fail "mount tmpfs /rw"
mkdir -p /rw/upper /rw/work
if [ "$ROOT_MODE" = overlay ] && mount -t overlay \
        -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work pfh-root /newroot; then
    :
else
    echo "pfh-init: overlay root unavailable, using read-only 9p root + tmpfs dirs"
    mount -o bind /lower /newroot || fail "bind host root"
    for d in tmp var/tmp; do
        [ -d "/newroot/$d" ] && mount -t tmpfs -o mode=1777 pfh-tmp "/newroot/$d"
    done
    for d in run root home; do
        [ -d "/newroot/$d" ] && mount -t tmpfs -o mode=0755 pfh-tmp "/newroot/$d"
    done
fi

for d in proc sys dev; do
    mount --move "/$d" "/newroot/$d" || fail "move /$d"
done
[ -d /newroot/dev/pts ] || mkdir /newroot/dev/pts
mount -t devpts -o mode=620,ptmxmode=666 devpts /newroot/dev/pts
# Loopback for network workloads (iperf3 server and client in the guest).
ip link set lo up || echo "pfh-init: could not bring up lo"
[ -n "$LOGLEVEL" ] && echo "$LOGLEVEL" > /newroot/proc/sys/kernel/printk

# PID 1 stays this busybox script (outside the chroot), so the shell exiting
# or being killed never panics the kernel, and poweroff -f is synchronous.
# setsid -c makes /dev/ttyS0 the shell's controlling tty (job control,
# Ctrl-C reaches the foreground command).
# The shell announces itself from its start-up file ($ENV), once it owns the
# terminal: input sent after PFH-READY is never lost.
cd /newroot
mkdir -p /newroot/run
printf '%s\n' "PS1=''" "PS2=''" "echo PFH-READY" >/newroot/run/pfh-shellrc
# No echo: the host sees only what commands print. busybox's own (static)
# stty, env and chroot start faster than the host's under emulation.
stty -F /newroot/dev/ttyS0 -echo
setsid -c env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root TERM=dumb PWD=/ ENV=/run/pfh-shellrc \
    chroot /newroot "$SHELL_BIN" -i </newroot/dev/ttyS0 >/newroot/dev/ttyS0 2>&1
echo "pfh-init: shell exited with status $?, powering off"
poweroff -f
