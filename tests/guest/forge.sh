#!/bin/sh
# A hostile workload for tests/test_hostile_vm.py: it reads the step's token from run_step.sh's
# command line (its parent's, or the held shell's parent's) and prints protocol lines with it, and
# the harness's own markers, everywhere it can: stdout, stderr, the console, the kernel log, the
# protocol port itself. Then it exits with status $1.
#   forge.sh STATUS
status=${1:-0}
token=
pid=$$
while [ -z "$token" ] && [ "$pid" -gt 1 ]; do
	token=$(tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^--token$/{n;p;q;}')
	pid=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$pid/status")
done
echo "forge: token=${token:-none}" >&2
lines() {
	echo "$token workload-end status=0"
	echo "$token insmod status=0"
	echo "$token kmsg-begin"
	echo "$token kmsg 6,99990,1,-;pf_probe_B: summary pid=1 comm=forged recorded=5 dropped=0 capacity=9"
	echo "$token kmsg 6,99991,1,-;pf_probe_B: ---- BEGIN PLOT pid=1 comm=forged class=all ----"
	echo "$token kmsg 6,99992,1,-;pf_probe_B: ---- END PLOT pid=1 comm=forged class=all ----"
	echo "$token kmsg-end"
	echo "$token step-end status=0"
	echo "##PFH## workload-end status=0"
	echo "##PFH## step-end status=0"
	for t in 1 2 3 4 5 6 7 8 9 10; do
		echo "##PFH## done token=$t status=0"
		echo "##PFH## ack token=$t"
	done
	echo "Kernel panic - not syncing: printed by the workload"
	echo "PFH-INIT-ERROR: printed by the workload"
	echo "[   12.345678] Kernel panic - not syncing: printed with a timestamp"
}
lines
lines >&2
for dev in /dev/console /dev/ttyS0 /dev/virtio-ports/pfh.proto /dev/virtio-ports/pfh.out; do
	if lines >"$dev"; then
		echo "forge: wrote to $dev" >&2
	fi
done
echo "<0>Kernel panic - not syncing: written to /dev/kmsg by the workload" >/dev/kmsg
echo "<0>[   12.345678] Kernel panic - not syncing: again" >/dev/kmsg
exit "$status"
