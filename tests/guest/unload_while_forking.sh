#!/bin/sh
# Test helper: load the module with follow=1 for a shell that creates
# processes as fast as it can, unload it while it does, then stop the shell.
#   unload_while_forking.sh MODULE.ko
ko=$1
name=${ko##*/}
exec 3</dev/kmsg
dd bs=65536 iflag=nonblock <&3 >/dev/null 2>&1
sh -c 'while :; do /bin/true; (:); done' >/dev/null &
pid=$!
insmod "$ko" "tpid=$pid" follow=1 || exit 1
sleep 1
if kill -0 "$pid" 2>/dev/null; then echo "still_running_at_rmmod=1"; fi
rmmod "${name%.ko}"
echo "rmmod_status=$?"
kill "$pid"
wait "$pid"
echo "##PFH## kmsg-begin"
dd bs=65536 iflag=nonblock <&3 2>/dev/null
echo "##PFH## kmsg-end"
