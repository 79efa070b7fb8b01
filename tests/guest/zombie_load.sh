#!/bin/sh
# Test helper: make a zombie (a child that exited and was never waited for:
# its parent execs sleep, which never waits), then try to load the module for it.
#   zombie_load.sh MODULE.ko
sh -c 'true & echo $! >/tmp/pfh-zombie; exec sleep 3' &
parent=$!
tries=0
while :; do
	z=$(cat /tmp/pfh-zombie 2>/dev/null)
	if [ -n "$z" ]; then
		read -r stat <"/proc/$z/stat" 2>/dev/null
		state=${stat##*) }
		[ "${state%% *}" = Z ] && break
	fi
	tries=$((tries + 1))
	[ "$tries" -lt 500 ] || { echo "no zombie"; exit 1; }
	sleep 0.01
done
echo "zombie=$z"
sh "$(dirname "$0")/try_load.sh" "$1" "tpid=$z"
kill "$parent"
wait "$parent" 2>/dev/null
exit 0
