#!/bin/sh
# Test helper: a pid that a traced process leaves behind must not bring an
# unrelated process into a follow=1 trace.
#   pid_reuse.sh MODULE.ko TOUCH_PAGES
# The traced root (a shell) runs a child, TOUCH_PAGES 40, and reaps it. Then
# this script, which is not a descendant of the root, sets
# /proc/sys/kernel/ns_last_pid so that its own next child, TOUCH_PAGES 300,
# gets the child's pid (again and again until it does, bounded). Only then is the root let go and the module
# unloaded. Prints child=, unrelated=, the statuses and the kernel log.
ko=$1
touch=$2
name=${ko##*/}
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
mkfifo "$dir/go" || exit 1
exec 3</dev/kmsg
dd bs=65536 iflag=nonblock <&3 >/dev/null 2>&1
# The root: stops itself until the module is loaded; the builtins echo and
# read create no process, so no descendant of the root takes a pid meanwhile.
sh -c 'kill -STOP $$; "$1" 40 >/dev/null & c=$!; wait $c; echo "$c" >"$2/child"; read -r x <"$2/go"' \
	root "$touch" "$dir" &
root=$!
tries=0
while :; do
	read -r stat <"/proc/$root/stat"
	state=${stat##*) }
	[ "${state%% *}" = T ] && break
	tries=$((tries + 1))
	[ "$tries" -lt 2000 ] || { echo "root never stopped"; exit 1; }
done
insmod "$ko" "tpid=$root" follow=1
echo "insmod_status=$?"
kill -CONT "$root"
tries=0
until [ -s "$dir/child" ]; do
	tries=$((tries + 1))
	[ "$tries" -lt 20000 ] || { echo "no child pid"; exit 1; }
	sleep 0.01
done
read -r child <"$dir/child"
echo "child=$child"
echo "root=$root"
# Another process (a kernel thread, a process of the guest's own) may take the
# pid between the write to ns_last_pid and the fork: each attempt starts a
# shell that runs TOUCH_PAGES 300 under the same pid (exec) only when it got
# the child's pid, and exits 99 at once otherwise. Bounded: 200 attempts.
attempt=0
while :; do
	attempt=$((attempt + 1))
	[ "$attempt" -le 200 ] || { echo "pid $child never came back to this script"; exit 1; }
	tries=0
	while [ -e "/proc/$child" ] && [ "$tries" -lt 100 ]; do
		tries=$((tries + 1))
		sleep 0.01
	done
	echo $((child - 1)) >/proc/sys/kernel/ns_last_pid
	sh -c '[ "$$" = "$1" ] || exit 99; exec "$2" 300' reuse "$child" "$touch" >"$dir/unrelated.out" &
	unrelated=$!
	wait "$unrelated"
	status=$?
	if [ "$status" -ne 99 ] || [ "$unrelated" = "$child" ]; then
		break
	fi
done
echo "attempts=$attempt"
echo "unrelated=$unrelated"
echo "unrelated_status=$status"
cat "$dir/unrelated.out"
echo go >"$dir/go"
wait "$root"
echo "root_status=$?"
rmmod "${name%.ko}"
echo "rmmod_status=$?"
echo "##PFH## kmsg-begin"
dd bs=65536 iflag=nonblock <&3 2>/dev/null
echo "##PFH## kmsg-end"
