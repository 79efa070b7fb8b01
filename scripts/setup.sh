#!/usr/bin/env bash
# Installs what pfharness needs on a Debian 12 machine, idempotently:
# Debian packages (only the missing ones) and a virtualenv with the package.
# Fast when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential kmod          # gcc, make; modinfo/insmod/rmmod
  linux-headers-amd64           # kbuild headers of Debian's kernel
  linux-image-amd64             # the kernel the VM boots
  qemu-system-x86               # the VM
  busybox-static cpio           # the VM's initramfs
  sysbench iperf3               # workloads of the demo and the study
  linux-perf bpftrace           # the peers the benchmarks compare with
  python3-venv
  shellcheck                    # make lint: the shell scripts
  linux-source-6.1              # scripts/checkpatch.pl for the modules' style test
  pahole                        # BTF of modules for kernels with DEBUG_INFO_BTF_MODULES (6.12, 7.2)
  chromium                      # grade's HTML page: its test opens it headless
  libc6-dbg                     # pfharness sites: libc's and ld.so's own function names (debug files by build id)
  mmdebstrap bubblewrap         # pfharness kernels fetch 7.2: sid's build root (KERNELS.md)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating the virtualenv .venv"
  "$PY" -m venv .venv
fi
# Reinstall only when pyproject.toml changed since the last install. The extras: the test tools,
# matplotlib for pictures (pfharness[plot]; make demo and make test both want it), Dask's distributed
# for grade --scheduler (pfharness[cluster]; make test starts a local cluster), and pyarrow for
# records.parquet (pfharness[parquet]; its tests want it).
if [ ! -f .venv/.pfharness-installed ] || [ pyproject.toml -nt .venv/.pfharness-installed ]; then
  echo "setup: installing pfharness into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test,plot,cluster,parquet]'
  touch .venv/.pfharness-installed
fi
# The package's compiled bytecode, which an editable install never writes (and nothing writes when
# PYTHONDONTWRITEBYTECODE is set, as on some machines): every command would compile its modules
# again, about 0.05 s of each run's start. Stale files are only recompiled in memory, never wrong.
.venv/bin/python -m compileall -q pfharness >/dev/null
