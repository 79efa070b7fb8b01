#!/bin/sh
# Test helper: load and unload the module N times in a row for this shell.
#   load_unload_loop.sh MODULE.ko N
ko=$1
n=$2
name=${ko##*/}
exec 3</dev/kmsg
dd bs=65536 iflag=nonblock <&3 >/dev/null 2>&1
ok=0
i=0
while [ "$i" -lt "$n" ]; do
	busybox insmod "$ko" "tpid=$$" && busybox rmmod "${name%.ko}" && ok=$((ok + 1))
	i=$((i + 1))
done
echo "cycles_ok=$ok"
echo "##PFH## kmsg-begin"
dd bs=65536 iflag=nonblock <&3 2>/dev/null
echo "##PFH## kmsg-end"
