#!/bin/bash
# Build Debian's 6.1 kernel sources (package linux-source-6.1) with the kernel's
# self-checks (KASAN, lockdep, UBSAN, DEBUG_ATOMIC_SLEEP, DEBUG_LIST, DEBUG_VM,
# kmemleak, debug objects, KFENCE, lockup detectors) and what the pfharness VM
# needs built in (virtio PCI, 9p, overlayfs, tmpfs, devtmpfs, 8250 console, kprobes,
# modules), and install it in the layout pfharness.kernels.discover()
# reads:
#
#   $CACHE/kernels/<release>/boot/vmlinuz-<release>       the bzImage
#   $CACHE/kernels/<release>/lib/modules/<release>/       modules, modules.dep, modules.builtin
#   $CACHE/kernels/<release>/lib/modules/<release>/build  -> the built tree (for M=... builds)
#   $CACHE/kernels/src/linux-source-<version>/            the built tree itself
#
# CACHE is ${PFHARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pfharness}.
# <release> is <upstream version>-pfh-debug, e.g. 6.1.192-pfh-debug; the script prints it
# as its last line of output.
#
# Idempotent: packages are installed only when missing, the sources unpacked once per
# package version, and a stamp (hash of the sources' version, the compiler and the
# configuration below) skips configure, build and install when nothing changed.
# A changed configuration rebuilds incrementally in the same tree.
#
# Environment: PFHARNESS_CACHE (see above), JOBS (make -j, default 2),
# FORCE=1 (rebuild and reinstall even when the stamp matches), CONFIGURE_ONLY=1 (stop
# after writing and checking .config).
# Builds run under `nice -n 19` (other jobs share this machine).
set -euo pipefail

readonly LOCALVERSION="-pfh-debug"
readonly CC_BIN="gcc-12"  # the compiler Debian's 6.1 kernels and headers are built with
readonly SRC_PACKAGE="linux-source-6.1"
readonly SRC_TARBALL="/usr/src/${SRC_PACKAGE}.tar.xz"
readonly LAYOUT_VERSION="3"  # bump when the install layout below changes
JOBS="${JOBS:-2}"
CACHE="${PFHARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pfharness}"
KERNELS="$CACHE/kernels"

# The configuration, applied with scripts/config on top of `make defconfig` and
# `make kvm_guest.config`. Every line is checked after `make olddefconfig`:
# an option Kconfig refused to set as asked fails the build.
#   NAME=y / NAME=n / NAME=<value> / NAME="string"
CONFIG_OPTIONS=(
    # --- self-checks ---
    KASAN=y KASAN_GENERIC=y KASAN_INLINE=y KASAN_VMALLOC=y  # B and C vmalloc their buffers
    PROVE_LOCKING=y DEBUG_ATOMIC_SLEEP=y
    DEBUG_LIST=y DEBUG_VM=y
    DEBUG_OBJECTS=y DEBUG_OBJECTS_FREE=y DEBUG_OBJECTS_TIMERS=y DEBUG_OBJECTS_WORK=y
    DEBUG_OBJECTS_RCU_HEAD=y
    UBSAN=y UBSAN_BOUNDS=y UBSAN_SHIFT=y UBSAN_DIV_ZERO=y UBSAN_TRAP=n UBSAN_SANITIZE_ALL=y
    KFENCE=y
    DEBUG_KMEMLEAK=y DEBUG_KMEMLEAK_AUTO_SCAN=n DEBUG_KMEMLEAK_DEFAULT_OFF=n  # scan on demand only
    SOFTLOCKUP_DETECTOR=y DETECT_HUNG_TASK=y
    SCHED_STACK_END_CHECK=y
    # no debug info: it would triple the build time; KALLSYMS_ALL names every symbol in a splat
    DEBUG_INFO_NONE=y
    # --- what pfharness and its modules use ---
    MODULES=y MODULE_UNLOAD=y KPROBES=y KRETPROBES=y KALLSYMS=y KALLSYMS_ALL=y
    FTRACE=y FUNCTION_TRACER=y DYNAMIC_FTRACE=y KPROBES_ON_FTRACE=y  # kprobes placed as on Debian
    MEMCG=y                                                     # the modules read mm->owner
    PREEMPT_VOLUNTARY=y PREEMPT_DYNAMIC=y                      # as Debian
    TRANSPARENT_HUGEPAGE=y TRANSPARENT_HUGEPAGE_ALWAYS=y        # as Debian (touch_pages madvises)
    # 4-level page tables, as Debian's kernel runs under pfharness: its PVH boot skips the
    # decompressor, which is what turns on 5-level paging. Booted as a bzImage on QEMU's
    # `-cpu max` (which has LA57), a 5-level kernel puts exec's temporary stack at the top
    # of the 56-bit space and every plot's page range changes.
    X86_5LEVEL=n
    IKCONFIG=y IKCONFIG_PROC=y                                  # /proc/config.gz in the guest
    # --- what the VM needs, built in ---
    # No PVH entry: QEMU's PVH boot (-kernel vmlinux) runs xen_prepare_pvh() before the KASAN
    # shadow is mapped, and its KASAN-checked memcmp() faults: the guest triple-faults with no
    # output. Without the PVH note pfharness boots the bzImage (kernel_image.cached_vmlinux
    # declines and vm.prepare_boot falls back to it).
    PVH=n
    PCI=y VIRTIO=y VIRTIO_PCI=y
    NET=y NET_9P=y NET_9P_VIRTIO=y NETWORK_FILESYSTEMS=y 9P_FS=y 9P_FS_POSIX_ACL=y
    OVERLAY_FS=y TMPFS=y TMPFS_POSIX_ACL=y DEVTMPFS=y UNIX=y INET=y
    SERIAL_8250=y SERIAL_8250_CONSOLE=y
    BLK_DEV_INITRD=y RD_GZIP=y
    # --- not needed in the VM; off to shorten the build ---
    DRM=n SOUND=n USB_SUPPORT=n WLAN=n WIRELESS=n CFG80211=n NETFILTER=n ETHERNET=n
    ATA=n MD=n NFS_FS=n AGP=n HID=n INPUT_MOUSE=n INPUT_JOYSTICK=n INPUT_TABLET=n
    INPUT_TOUCHSCREEN=n I2C_I801=n DEBUG_WX=n SECURITY_SELINUX=n AUDIT=n BPF_SYSCALL=n PERF_EVENTS_INTEL_UNCORE=n
    LOCALVERSION="\"$LOCALVERSION\"" LOCALVERSION_AUTO=n
)

log() { printf 'build-debug-kernel: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_root_for_apt() {
    [ "$(id -u)" -eq 0 ] || die "packages $* are missing; run this script as root (it installs them with apt-get)"
}

install_packages() {
    local packages=("$SRC_PACKAGE" "$CC_BIN" make bc bison flex libelf-dev libssl-dev xz-utils kmod perl python3)
    local missing=() p
    for p in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        need_root_for_apt "${missing[@]}"
        log "installing ${missing[*]}"
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    fi
}

# Unpack the tarball into $KERNELS/src/linux-source-<version> once per package version.
unpack_sources() {
    local version="$1" tree="$2" tmp
    if [ -f "$tree/.pfh-unpacked" ]; then
        return
    fi
    [ -f "$SRC_TARBALL" ] || die "$SRC_TARBALL is missing after installing $SRC_PACKAGE"
    log "unpacking $SRC_TARBALL ($version) into $tree"
    mkdir -p "$(dirname "$tree")"
    rm -rf "$tree"
    tmp="$(mktemp -d "$(dirname "$tree")/.unpack.XXXXXX")"
    tar -xJf "$SRC_TARBALL" -C "$tmp"
    mv "$tmp/$SRC_PACKAGE" "$tree"
    rmdir "$tmp"
    touch "$tree/.pfh-unpacked"
}

kmake() {
    nice -n 19 make -C "$TREE" CC="$CC_BIN" HOSTCC="$CC_BIN" "$@"
}

# scripts/config arguments for one NAME=VALUE item.
config_args() {
    local name="${1%%=*}" value="${1#*=}"
    case "$value" in
        y) printf '%s\n' --enable "$name" ;;
        n) printf '%s\n' --disable "$name" ;;
        \"*\") value="${value#\"}"; printf '%s\n' --set-str "$name" "${value%\"}" ;;
        *) printf '%s\n' --set-val "$name" "$value" ;;
    esac
}

configure() {
    local item args=()
    log "configuring: defconfig + kvm_guest.config + ${#CONFIG_OPTIONS[@]} options"
    kmake -s defconfig >&2
    kmake -s kvm_guest.config >&2
    for item in "${CONFIG_OPTIONS[@]}"; do
        mapfile -t -O "${#args[@]}" args < <(config_args "$item")
    done
    "$TREE/scripts/config" --file "$TREE/.config" "${args[@]}"
    # Twice: an option enabled in the first pass can reveal others (KASAN_INLINE under KASAN).
    kmake -s olddefconfig >&2
    "$TREE/scripts/config" --file "$TREE/.config" "${args[@]}"
    kmake -s olddefconfig >&2
    check_config
}

# Every requested option must have the requested value in the final .config.
check_config() {
    local item name value got bad=()
    for item in "${CONFIG_OPTIONS[@]}"; do
        name="${item%%=*}" value="${item#*=}"
        got="$(grep -E "^(CONFIG_${name}=|# CONFIG_${name} is not set)" "$TREE/.config" || true)"
        if [ "$value" = n ]; then
            case "$got" in "" | "# CONFIG_${name} is not set") ;; *) bad+=("$name: wanted n, got '$got'") ;; esac
        elif [ "$got" != "CONFIG_${name}=${value}" ]; then
            bad+=("$name: wanted $value, got '${got:-unset (dependency missing?)}'")
        fi
    done
    if [ "${#bad[@]}" -gt 0 ]; then
        printf '  %s\n' "${bad[@]}" >&2
        die "Kconfig did not accept ${#bad[@]} requested option(s) (see above)"
    fi
}

install_kernel() {
    local release="$1" dest="$KERNELS/$1" staging
    staging="$(mktemp -d "$KERNELS/.install-$release.XXXXXX")"
    # The trap expands $staging now, on purpose: it is local to this function.
    # shellcheck disable=SC2064
    trap "rm -rf '$staging'" EXIT
    mkdir -p "$staging/boot"
    cp "$TREE/arch/x86/boot/bzImage" "$staging/boot/vmlinuz-$release"
    cp "$TREE/System.map" "$staging/boot/System.map-$release"
    cp "$TREE/.config" "$staging/boot/config-$release"
    kmake -s modules_install INSTALL_MOD_PATH="$staging" INSTALL_MOD_STRIP=1 DEPMOD=/sbin/depmod >&2
    # External modules (make -C .../build M=...) are built with the kernel's compiler, as with
    # Debian's headers: Debian's top Makefile includes .kernelvariables, where CC is set.
    # $(CROSS_COMPILE) is for make to expand, not the shell.
    # shellcheck disable=SC2016
    printf 'CC = $(CROSS_COMPILE)%s\n' "$CC_BIN" >"$TREE/.kernelvariables"
    ln -sfn "$TREE" "$staging/lib/modules/$release/build"
    ln -sfn "$TREE" "$staging/lib/modules/$release/source"
    [ -f "$staging/lib/modules/$release/modules.dep" ] || die "modules_install wrote no modules.dep"
    [ -f "$staging/lib/modules/$release/modules.builtin" ] || die "modules_install wrote no modules.builtin"
    rm -rf "$dest.old"
    if [ -e "$dest" ]; then mv "$dest" "$dest.old"; fi
    mv "$staging" "$dest"
    trap - EXIT
    rm -rf "$dest.old"
}

main() {
    local version stamp_want stamp_file release start
    install_packages
    version="$(dpkg-query -W -f='${Version}' "$SRC_PACKAGE")"
    TREE="$KERNELS/src/${SRC_PACKAGE}_${version}"
    stamp_want="$(
        {
            printf '%s\n' "$LAYOUT_VERSION" "$version" "$("$CC_BIN" --version | head -n1)" "$LOCALVERSION"
            printf '%s\n' "${CONFIG_OPTIONS[@]}"
        } | sha256sum | cut -d' ' -f1
    )"
    stamp_file="$TREE/.pfh-build-stamp"
    if [ "${FORCE:-0}" != 1 ] && [ -f "$stamp_file" ]; then
        release="$(sed -n 2p "$stamp_file")"
        if [ "$(sed -n 1p "$stamp_file")" = "$stamp_want" ] &&
            [ -f "$KERNELS/$release/boot/vmlinuz-$release" ] &&
            [ -f "$KERNELS/$release/lib/modules/$release/modules.dep" ] &&
            [ -f "$KERNELS/$release/lib/modules/$release/build/Module.symvers" ] &&
            [ -f "$TREE/.kernelvariables" ]; then
            log "up to date: $KERNELS/$release"
            printf '%s\n' "$release"
            return
        fi
    fi
    unpack_sources "$version" "$TREE"
    rm -f "$stamp_file"
    configure
    if [ "${CONFIGURE_ONLY:-0}" = 1 ]; then
        log "configured $TREE/.config (CONFIGURE_ONLY=1: not building)"
        return
    fi
    log "building in $TREE with $CC_BIN, make -j$JOBS (nice 19)"
    start="$(date +%s)"
    kmake -j"$JOBS" bzImage modules >&2
    # Only the build writes include/config/auto.conf, which `make kernelrelease` needs to see
    # CONFIG_LOCALVERSION; the release is read from what the build itself recorded.
    release="$(cat "$TREE/include/config/kernel.release")"
    case "$release" in *"$LOCALVERSION") ;; *) die "built release '$release' does not end in $LOCALVERSION" ;; esac
    log "built $release in $(( $(date +%s) - start )) s"
    mkdir -p "$KERNELS"
    install_kernel "$release"
    printf '%s\n%s\n' "$stamp_want" "$release" >"$stamp_file"
    log "installed $KERNELS/$release"
    printf '%s\n' "$release"
}

main "$@"
