#!/bin/sh
# Test helper: make a zombie (a child that exited and that its parent never
# waits for), then try to load the module for it.
#   zombie_load.sh MODULE.ko
rm -f /tmp/pfh-zombie
python3 -c '
import os, time
pid = os.fork()
if pid == 0:
    os._exit(0)
with open("/tmp/pfh-zombie.tmp", "w") as f:
    f.write(str(pid))
os.rename("/tmp/pfh-zombie.tmp", "/tmp/pfh-zombie")
time.sleep(5)
' &
parent=$!
tries=0
while :; do
	z=$(cat /tmp/pfh-zombie 2>/dev/null)
	if [ -n "$z" ]; then
		read -r stat <"/proc/$z/stat"
		state=${stat##*) }
		[ "${state%% *}" = Z ] && break
	fi
	tries=$((tries + 1))
	[ "$tries" -lt 1000 ] || { echo "no zombie"; exit 1; }
	sleep 0.01
done
echo "zombie=$z"
sh "$(dirname "$0")/try_load.sh" "$1" "tpid=$z"
kill "$parent"
wait "$parent" 2>/dev/null
exit 0
