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
#   pfh.9p=OPTS          extra 9p mount options (default: msize=512000,cache=loose;
#                        pfharness always passes its own)
#   pfh.root=overlay|ro  writable-root strategy (default: overlay, falls back to
#                        ro; pass ro by hand to try the fallback)
#   pfh.save=TAG         mount the 9p export TAG read-write on /run/pfh-save: the
#                        one host directory the guest may write (a run's guest/,
#                        where run_step.sh --save-dir copies the module's procfs files)
#   pfh.ports=A,B,...    virtio-serial port names to wait for (pfharness passes
#                        pfh.proto,pfh.out,pfh.err); each gets the link
#                        /dev/virtio-ports/NAME (what udev would make)
#   pfh.mm=KEY:VALUE,... memory-management settings to write before anything
#                        runs (pfharness copies the host's: pfharness/mm_settings.py);
#                        KEY thp/X is /sys/kernel/mm/transparent_hugepage/X, vm/X is
#                        /proc/sys/vm/X; a per-size THP key (thp/hugepages-*) this
#                        kernel lacks is skipped, any other missing key is an error
#   pfh.snap=1           stop before the 9p mounts: print PFH-SNAPSHOT-POINT and read
#                        one line from the port pfh.proto, "PFH-RESUME SECONDS HEX"
#                        (needs pfh.ports with pfh.proto; the host snapshots the
#                        guest meanwhile; each restored guest reads its own run's
#                        line): set the clock, feed the bytes to the entropy pool
# Fail-stop: every step on the way to the shell is checked; a failure prints
# "PFH-INIT-ERROR: <what>" and powers off at once, so the host reports it
# instead of waiting out its boot timeout, and no later step runs.

# In the guest nothing sets PFH_INIT_PATH (pfharness passes no such kernel
# parameter), so PATH is /bin, the initramfs's busybox applets. It exists only
# so that tests/test_shell_scripts.py can run this script on a host with fake
# commands (busybox sh prefers its own applets anyway: the test also fakes
# them as shell functions).
PATH=${PFH_INIT_PATH:-/bin}
export PATH

fail() {
    echo "PFH-INIT-ERROR: $*"
    poweroff -f
    # Only reached if poweroff failed: never go on to the next step. PID 1
    # exiting panics the kernel, and with panic=-1 and QEMU's -no-reboot the
    # VM ends.
    exit 1
}

mount -t proc proc /proc || fail "mount proc"
mount -t sysfs sysfs /sys || fail "mount sysfs"
mount -t devtmpfs devtmpfs /dev || fail "mount devtmpfs"

P9_OPTS="msize=512000,cache=loose"
ROOT_MODE=overlay
SHELL_BIN=/bin/sh
SAVE_TAG=
PORTS=
MM=
SNAP=
read -r cmdline </proc/cmdline || fail "read /proc/cmdline"
set -f # split the command line into words, but never expand them as globs
for arg in $cmdline; do
    case "$arg" in
        pfh.9p=*) P9_OPTS="${arg#pfh.9p=}" ;;
        pfh.root=*) ROOT_MODE="${arg#pfh.root=}" ;;
        pfh.save=*) SAVE_TAG="${arg#pfh.save=}" ;;
        pfh.ports=*) PORTS="${arg#pfh.ports=}" ;;
        pfh.mm=*) MM="${arg#pfh.mm=}" ;;
        pfh.snap=*) SNAP="${arg#pfh.snap=}" ;;
        pfh.*) echo "pfh-init: ignoring unknown parameter $arg" ;;
        *) ;;
    esac
done
set +f
case "$ROOT_MODE" in
    overlay | ro) ;;
    *) fail "pfh.root=$ROOT_MODE (expected overlay or ro)" ;;
esac

# The memory-management settings, first: nothing has faulted in user space yet.
apply_mm() {
    rest="$1,"
    while [ -n "$rest" ]; do
        pair=${rest%%,*}
        rest=${rest#*,}
        [ -n "$pair" ] || continue
        key=${pair%%:*}
        value=${pair#*:}
        case "$key" in
            *..* | "" | */) fail "pfh.mm: bad key '$key'" ;;
            thp/*) file="/sys/kernel/mm/transparent_hugepage/${key#thp/}" ;;
            vm/*) file="/proc/sys/vm/${key#vm/}" ;;
            *) fail "pfh.mm: unknown key '$key' (thp/... or vm/...)" ;;
        esac
        if [ ! -f "$file" ]; then
            case "$key" in
                thp/hugepages-*)
                    echo "pfh-init: this kernel has no $key: left at its default"
                    continue
                    ;;
                *) fail "pfh.mm: this kernel has no $file" ;;
            esac
        fi
        echo "$value" >"$file" || fail "pfh.mm: cannot write $value to $file"
    done
}
[ -z "$MM" ] || apply_mm "$MM"

[ -r /modules.order ] || fail "no /modules.order in the initramfs"
while read -r mod; do
    [ -n "$mod" ] || continue
    insmod "$mod" || fail "insmod $mod"
done < /modules.order

# The virtio-serial ports appear once the host has announced them (shortly
# after virtio_console is loaded): wait for each named one, up to 10 s, and
# link it by name as udev would. No udev here: the names are in sysfs.
link_port() {
    for port in /sys/class/virtio-ports/*; do
        [ -r "$port/name" ] || continue
        read -r pname <"$port/name" || continue
        if [ "$pname" = "$1" ]; then
            ln -sf "../${port##*/}" "/dev/virtio-ports/$1" || return 1
            [ -c "/dev/virtio-ports/$1" ]
            return
        fi
    done
    return 1
}
if [ -n "$PORTS" ]; then
    mkdir -p /dev/virtio-ports || fail "mkdir /dev/virtio-ports"
    tries=0
    rest="$PORTS,"
    while [ -n "$rest" ]; do
        name=${rest%%,*}
        rest=${rest#*,}
        [ -n "$name" ] || continue
        until link_port "$name"; do
            tries=$((tries + 1))
            [ "$tries" -le 1000 ] || fail "no virtio-serial port named $name (is -device virtserialport,name=$name given?)"
            sleep 0.01
        done
    done
fi

# What needs nothing of the host's file system is done before the snapshot point, once, rather than
# after each restore: the tmpfs of the writable root, devpts and udev's links in /dev (moved into the
# new root with /dev), the loopback device and the console's settings.
mount -t tmpfs -o mode=0755 pfh-rw /rw || fail "mount tmpfs /rw"
mkdir -p /rw/upper /rw/work || fail "mkdir /rw/upper /rw/work"
[ -d /dev/pts ] || mkdir /dev/pts || fail "mkdir /dev/pts"
mount -t devpts -o mode=620,ptmxmode=666 devpts /dev/pts || fail "mount devpts"
# What udev would add: /dev/fd and the standard streams (run_step.sh writes to
# /dev/fd/N when pfharness runs with --target host inside the guest).
ln -sfn /proc/self/fd /dev/fd || fail "link /dev/fd"
for n in 0:stdin 1:stdout 2:stderr; do
    ln -sfn "/proc/self/fd/${n%%:*}" "/dev/${n#*:}" || fail "link /dev/${n#*:}"
done
# Loopback for network workloads (iperf3 server and client in the guest).
ip link set lo up || echo "pfh-init: could not bring up lo"
[ -c /dev/ttyS0 ] || fail "no /dev/ttyS0"
# No echo: the host sees only what commands print. busybox's own (static)
# stty, env and chroot start faster than the host's under emulation.
stty -F /dev/ttyS0 -echo || fail "stty -echo on /dev/ttyS0"
# The shell keeps descriptor 5 open on the kernel log, read up to here: each step
# (run_step.sh --kmsg-fd 5) reads on from where the last one stopped, with no
# program to start to skip the boot's records. The mark is a user-space record;
# sed reads one record per read(2) and one line ahead before it acts on one
# (for its $ address), so a second record follows the mark: sed stops after it.
exec 5</dev/kmsg || fail "open /dev/kmsg"
echo "<14>pfh-init: kernel log read up to here" >/dev/kmsg || fail "write /dev/kmsg"
echo "<14>pfh-init: (and this one)" >/dev/kmsg || fail "write /dev/kmsg"
sed -n '/pfh-init: kernel log read up to here/q' <&5 || fail "read /dev/kmsg"

# The snapshot point: nothing of the host's file system is attached yet (a mounted 9p export blocks
# QEMU's migration). Whatever a run does later happens after this point, in its own restored copy.
if [ "$SNAP" = 1 ]; then
    echo "PFH-SNAPSHOT-POINT"
    # From the protocol's port, not the console: QEMU holds what the host sends there until the
    # restored guest takes it (the serial port would drop bytes that come in while QEMU restores).
    read -r tag seconds entropy extra </dev/virtio-ports/pfh.proto || fail "read the resume line"
    if [ "$tag" != PFH-RESUME ] || [ -z "$entropy" ] || [ -n "$extra" ]; then
        fail "bad resume line '$tag $seconds $entropy $extra'"
    fi
    date -s "@$seconds" >/dev/null || fail "set the clock to $seconds"
    printf '%s\n' "$entropy" >/dev/urandom || fail "write /dev/urandom"
fi

mount -t 9p -o "trans=virtio,version=9p2000.L,ro,$P9_OPTS" hostroot /lower \
    || fail "mount 9p hostroot (is -virtfs/-device virtio-9p with mount_tag=hostroot given?)"

# Writable root. overlayfs needs upper and work on the same tmpfs (/rw, mounted above).
if [ "$ROOT_MODE" = overlay ] && mount -t overlay \
        -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work pfh-root /newroot; then
    :
else
    echo "pfh-init: overlay root unavailable, using read-only 9p root + tmpfs dirs"
    mount -o bind /lower /newroot || fail "bind host root"
    for d in tmp var/tmp; do
        if [ -d "/newroot/$d" ]; then
            mount -t tmpfs -o mode=1777 pfh-tmp "/newroot/$d" || fail "mount tmpfs /$d"
        fi
    done
    for d in run root home; do
        if [ -d "/newroot/$d" ]; then
            mount -t tmpfs -o mode=0755 pfh-tmp "/newroot/$d" || fail "mount tmpfs /$d"
        fi
    done
fi
if [ ! -f "/newroot$SHELL_BIN" ] || [ ! -x "/newroot$SHELL_BIN" ]; then
    fail "no executable $SHELL_BIN in the new root"
fi

# /dev moves with what is mounted on it (devpts).
for d in proc sys dev; do
    mount --move "/$d" "/newroot/$d" || fail "move /$d"
done

# PID 1 stays this busybox script (outside the chroot), so the shell exiting
# or being killed never panics the kernel, and poweroff -f is synchronous.
# setsid -c makes /dev/ttyS0 the shell's controlling tty (job control,
# Ctrl-C reaches the foreground command).
# The shell announces itself from its start-up file ($ENV), once it owns the
# terminal: input sent after PFH-READY is never lost.
cd /newroot || fail "cd /newroot"
[ -d /newroot/run ] || mkdir /newroot/run || fail "mkdir /run"
if [ -n "$SAVE_TAG" ]; then
    # No cache=loose here: what the guest writes must be on the host when the step ends.
    mkdir -p /newroot/run/pfh-save || fail "mkdir /run/pfh-save"
    mount -t 9p -o "trans=virtio,version=9p2000.L,rw,msize=512000" "$SAVE_TAG" /newroot/run/pfh-save \
        || fail "mount 9p $SAVE_TAG on /run/pfh-save"
fi
# No job control (set +m): a command stays in the shell's process group, so that busybox's setsid
# (which pfharness starts each step under) makes its session without forking.
printf '%s\n' "PS1=''" "PS2=''" "set +m" "echo PFH-READY" >/newroot/run/pfh-shellrc \
    || fail "write /run/pfh-shellrc"
# The serial line is opened once, read-write, as the shell's stdin, stdout
# and stderr (as getty does).
setsid -c env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root TERM=dumb PWD=/ ENV=/run/pfh-shellrc \
    chroot /newroot "$SHELL_BIN" -i <>/newroot/dev/ttyS0 >&0 2>&0
echo "pfh-init: shell exited with status $?, powering off"
poweroff -f
