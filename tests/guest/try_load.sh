#!/bin/sh
# Test helper, run in the guest: load a module with the given parameters,
# unload it if it loaded, and print the load status and this run's kernel
# log records (between kmsg markers).
#   try_load.sh MODULE.ko [PARAM=VALUE ...]
ko=$1
shift
exec 3</dev/kmsg
dd bs=65536 iflag=nonblock <&3 >/dev/null 2>&1
insmod "$ko" "$@"
status=$?
echo "insmod_status=$status"
if [ "$status" -eq 0 ]; then
	name=${ko##*/}
	rmmod "${name%.ko}"
	echo "rmmod_status=$?"
fi
echo "##PFH## kmsg-begin"
dd bs=65536 iflag=nonblock <&3 2>/dev/null
echo "##PFH## kmsg-end"
