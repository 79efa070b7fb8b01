#!/bin/sh
# Test helper: load the module for a program that faults hard, unload it
# while the program is still faulting, then let the program finish.
#   unload_while_faulting.sh MODULE.ko PROGRAM [ARG ...]
ko=$1
shift
name=${ko##*/}
exec 3</dev/kmsg
dd bs=65536 iflag=nonblock <&3 >/dev/null 2>&1
"$@" >/dev/null &
pid=$!
insmod "$ko" "tpid=$pid" || exit 1
sleep 0.3
if kill -0 "$pid" 2>/dev/null; then echo "still_running_at_rmmod=1"; fi
rmmod "${name%.ko}"
echo "rmmod_status=$?"
wait "$pid"
echo "workload_status=$?"
echo "##PFH## kmsg-begin"
dd bs=65536 iflag=nonblock <&3 2>/dev/null
echo "##PFH## kmsg-end"
