#!/usr/bin/env bash
# The core suite on each kernel of the matrix (KERNELS.md): fetch the kernel (from the cache after
# the first time), then run the tests marked `core` with PFHARNESS_KERNEL_RELEASE set to it.
#
#   scripts/test-matrix.sh [SPEC...]      default: 5.10 6.1 6.1-rt 6.12 7.2
#
# Each kernel's pytest output is shown and kept in out/test-matrix/<release>.log; a table ends the
# output: fetch time, the -Werror build of the three modules (with a build root's one-time set-up on
# the first run: 7.2), the core suite's time and result. Exit status 0 when every kernel passed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

PY=.venv/bin/python
PFH=.venv/bin/pfharness
LOGS=out/test-matrix
mkdir -p "$LOGS"

specs=("$@")
if [ "${#specs[@]}" -eq 0 ]; then
  specs=(5.10 6.1 6.1-rt 6.12 7.2)
fi

trap 'echo "test-matrix: interrupted"; exit 130' INT TERM

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

rows=()
status=0
for spec in "${specs[@]}"; do
  echo "=== kernel $spec: fetch"
  start=$(now)
  if ! fetched=$("$PFH" kernels fetch "$spec" 2>&1); then
    echo "$fetched"
    rows+=("$(printf '%-8s %-24s %8s %8s %9s  %s' "$spec" "-" "$(since "$start")" "-" "-" "fetch failed")")
    status=1
    continue
  fi
  fetch_s=$(since "$start")
  echo "$fetched"
  release=${fetched%%:*}
  echo "=== kernel $spec ($release): build"
  start=$(now)
  if ! "$PFH" build --werror --kernel-release "$release" --out "$LOGS/build-$release"; then
    rows+=("$(printf '%-8s %-24s %8s %8s %9s  %s' "$spec" "$release" "$fetch_s" "$(since "$start")" "-" "build failed")")
    status=1
    continue
  fi
  build_s=$(since "$start")
  echo "=== kernel $spec ($release): core suite"
  log="$LOGS/$release.log"
  start=$(now)
  PFHARNESS_KERNEL_RELEASE=$release "$PY" -m pytest -ra -m core -p no:cacheprovider 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  suite_s=$(since "$start")
  result=$(grep -E '^=+ .*(passed|failed|error).* in [0-9.]+s' "$log" | tail -n 1 | sed -E 's/^=+ //; s/ in [0-9.]+s.*//')
  [ "$rc" -eq 0 ] || status=1
  rows+=("$(printf '%-8s %-24s %8s %8s %9s  %s' "$spec" "$release" "$fetch_s" "$build_s" "$suite_s" "${result:-pytest exit $rc}")")
done

echo
printf '%-8s %-24s %8s %8s %9s  %s\n' "spec" "release" "fetch s" "build s" "suite s" "core suite"
printf '%s\n' "${rows[@]}"
exit "$status"
