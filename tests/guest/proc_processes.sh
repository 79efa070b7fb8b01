#!/bin/sh
# Test helper: load the module with follow=1 for a held PROGRAM, let it run
# to its end, then print /proc/<module>/processes (and its mode) before the
# unload.
#   proc_processes.sh MODULE.ko PROGRAM [ARG ...]
ko=$1
shift
name=${ko##*/}
name=${name%.ko}
exec 3</dev/kmsg
dd bs=65536 iflag=nonblock <&3 >/dev/null 2>&1
sh -c 'kill -STOP $$; exec "$@"' held "$@" >/dev/null &
pid=$!
tries=0
while :; do
	read -r stat <"/proc/$pid/stat"
	state=${stat##*) }
	[ "${state%% *}" = T ] && break
	tries=$((tries + 1))
	[ "$tries" -lt 2000 ] || { echo "never stopped"; exit 1; }
done
insmod "$ko" "tpid=$pid" follow=1 || exit 1
kill -CONT "$pid"
wait "$pid"
echo "workload_status=$?"
echo "mode=$(stat -c %a "/proc/$name/processes")"
echo "##FILE-BEGIN"
cat "/proc/$name/processes"
echo "##FILE-END"
rmmod "$name"
echo "rmmod_status=$?"
echo "##PFH## kmsg-begin"
dd bs=65536 iflag=nonblock <&3 2>/dev/null
echo "##PFH## kmsg-end"
