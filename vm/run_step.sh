#!/bin/sh
# One traced run, on the machine where the module is loaded (the VM's guest,
# or the host with --target host). POSIX sh (dash, busybox); needs root,
# insmod/rmmod, dd, sed and setsid (busybox's applets when it is
# installed, except dd for the kernel log: busybox's has no iflag=nonblock).
#
#   run_step.sh --token TOKEN [--proto FILE | --proto-fd N] [--kmsg-fd N] [--busybox PATH] [--cwd DIR] [--ko FILE.ko]
#               [--param NAME=VALUE ...] [--pid-param NAME] [--pid-value N] [--no-hold] [--save-dir DIR]
#               [--oracle-ko FILE.ko [--oracle-param NAME=VALUE ...]] -- CMD [ARG ...]
#
# With --ko: create the workload's process, held (stopped) before it execs
# CMD; load the module with tpid=<its pid> (--pid-param NAME: NAME=<its pid>)
# and the --param values (--pid-value N: NAME=N instead, a pid that is not the
# workload's, e.g. one no process has: the module check's missing-pid step); let it
# exec; wait for it; unload the module; report the kernel log records that
# appeared meanwhile. --no-hold starts CMD first and loads the module after,
# as the course's shell script does (its first faults are lost). Without
# --ko CMD just runs. --save-dir DIR: after the workload ends and before the
# module is unloaded, copy /proc/<module>/records, regions and processes
# (those that exist) into DIR, and say which with the event "saved".
# --kmsg-fd N: read the kernel log from the inherited descriptor N (5-9), already
# open on /dev/kmsg and read up to some point (the VM's shell holds one from its
# boot): nothing is skipped, and the host drops what precedes this step's mark
# (below). Without it the script opens /dev/kmsg and skips every record in it.
# Either way, before the workload can run, the script writes the record
# "pfh-step-begin TOKEN" into the kernel log (step_protocol.STEP_MARK); the host
# keeps the records after the first such record.
# --oracle-ko FILE.ko: pfharness's own recorder, loaded FIRST with tpid=<pid>
# and the --oracle-param values (so it sees every fault), then the --ko
# module; the --ko module is unloaded first, then the oracle's procfs files
# are saved (--save-dir: the oracle's, not the module's), then the oracle is
# unloaded. Its events are oracle-insmod and oracle-rmmod; "saved" names the
# module its files came from.
#
# Two channels, never mixed:
# - the protocol: every line is "TOKEN EVENT [key=value ...]", the kernel log
#   records "TOKEN kmsg <record in /dev/kmsg format>", written to --proto FILE
#   (the VM's virtio port pfh.proto) or to the inherited descriptor N, 0-9
#   (--proto-fd: the host's harness passes a socket as standard input, 0;
#   unlike a pipe, a socket cannot be opened again through /proc/PID/fd);
#   without either, to the standard output (for trying the script by hand).
#   The workload never has it open: the harness believes nothing else.
# - the workload's own output: this script's standard output and error, which
#   the workload inherits and which are never parsed. When the step ends, each
#   gets the bytes "\036pfh-end-TOKEN\036", so the reader knows it has all.
# The workload has no controlling terminal, so it cannot change the console's
# settings. With --ko it runs in this script's session, for which the script
# starts itself again under setsid -w when it is not a session leader or has a
# terminal (pfharness starts it as one): held (the default), a subshell of this
# script (no program started: $! is the pid the module gets) stops itself and
# then execs CMD; with --no-hold it is started directly, as the course's `$* &`
# does (no wrapper's faults before its exec). Without --ko it is started under
# setsid, in a session of its own. It runs in DIR
# (--cwd; default: the directory the script was started in), with standard
# input /dev/null. When it exits, every other process left in its session
# (what it started) is killed.

# Sets state, sid and tty to the state letter, the session id and the
# controlling terminal (0: none) of process $1 (the first, fourth and fifth
# fields after "(comm) " in /proc/$1/stat; no command substitution: no
# subshell per process).
session_of() {
	state=
	sid=
	tty=
	stat=
	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	# Split on purpose: what follows "comm) " is a state letter and numbers.
	# shellcheck disable=SC2086
	set -- ${stat##*) }
	state=$1
	sid=$4
	tty=$5
}

# With --ko the workload runs in this script's own session; without, it gets
# one of its own.
ko_arg=0
for arg; do
	case $arg in
	--) break ;;
	--ko) ko_arg=1 ;;
	esac
done
if [ "$ko_arg" = 1 ] && [ -z "${PFH_STEP_SESSION-}" ] && { ! session_of $$ || [ "$sid" != $$ ] || [ "$tty" != 0 ]; }; then
	# util-linux's setsid by its path (busybox's applet lacks -w: wait for
	# the forked child and exit with its status).
	PFH_STEP_SESSION=1 exec /usr/bin/setsid -w /bin/sh "$0" "$@"
fi
unset PFH_STEP_SESSION

# A module parameter is one NAME=VALUE word of plain characters (the rule
# pfharness/step.py checks too): $params is split on spaces unquoted below.
check_param() {
	case $1 in
	[a-z_]*=?*) ;;
	*) return 1 ;;
	esac
	case ${1%%=*} in
	*[!a-z0-9_]*) return 1 ;;
	esac
	case ${1#*=} in
	*[!A-Za-z0-9_.-]*) return 1 ;;
	esac
}

token=
proto=
session=
proto_fd=
kmsg_fd=
cwd=
ko=
params=
pid_param=tpid
pid_value=
oracle=
oracle_params=
hold=1
save_dir=
busybox=
usage=
while [ $# -gt 0 ]; do
	case "$1" in
	--token | --proto | --cwd | --ko | --oracle-ko | --pid-param | --busybox)
		if [ $# -lt 2 ] || [ -z "$2" ]; then
			usage="$1 needs a value"
			shift
			continue
		fi
		case "$1" in
		--token) token=$2 ;;
		--proto) proto=$2 ;;
		--cwd) cwd=$2 ;;
		--ko) ko=$2 ;;
		--oracle-ko) oracle=$2 ;;
		--busybox) busybox=$2 ;;
		--pid-param)
			if check_param "$2=0"; then
				pid_param=$2
			else
				usage="--pid-param $2: not a parameter name (a-z, 0-9, _)"
			fi
			;;
		esac
		shift 2
		;;
	--pid-value)
		case ${2-} in
		'' | *[!0-9]*) usage="--pid-value needs a process id" ;;
		*) pid_value=$2 ;;
		esac
		shift
		[ $# -gt 0 ] && shift
		;;
	--proto-fd | --kmsg-fd)
		case ${2-} in
		[0-9]) if [ "$1" = --proto-fd ]; then proto_fd=$2; else kmsg_fd=$2; fi ;;
		*) usage="$1 needs a descriptor number, 0-9" ;;
		esac
		case $1$2 in
		--kmsg-fd[0-4]) usage="--kmsg-fd needs a descriptor from 5 to 9 (0-4 are the script's own)" ;;
		esac
		shift
		[ $# -gt 0 ] && shift
		;;
	--param | --oracle-param)
		if [ $# -lt 2 ]; then
			usage="$1 needs NAME=VALUE"
			shift
			continue
		fi
		if ! check_param "$2"; then
			usage="$1 $2: not NAME=VALUE of letters, digits, _ . -"
		elif [ "$1" = --param ]; then
			params="$params $2"
		else
			oracle_params="$oracle_params $2"
		fi
		shift 2
		;;
	--no-hold) hold=0; shift ;;
	--save-dir)
		if [ $# -lt 2 ] || [ ! -d "$2" ]; then
			usage="--save-dir needs an existing DIR"
			shift
			continue
		fi
		save_dir=$2
		shift 2
		;;
	--) shift; break ;;
	*) usage="unknown option $1"; shift ;;
	esac
done

# busybox's applets are static: under emulation each starts in about 8 ms,
# against 25-120 ms for the dynamically linked coreutils, procps and kmod
# programs (measured in the guest). Either works. ($bb is a command word
# below: empty, it leaves the plain program name.) Never for what starts the
# workload: busybox runs its own applet for a name it knows (ls, sh, ...),
# not the program the user named; util-linux's setsid and the system's sh
# run that. --busybox PATH names it (the VM's harness does: a look-up along
# PATH costs a round trip to the host over 9p for each directory that lacks
# it, about 15 ms in the guest); else it is looked up.
if [ -n "$busybox" ] && [ -x "$busybox" ]; then
	bb=$busybox
elif command -v busybox >/dev/null 2>&1; then
	bb=busybox
else
	bb=
fi

# The token is the harness's: hex digits, so it is one word in every line.
case $token in
'' | *[!0-9a-f]*)
	echo "run_step.sh: --token needs a hex token (made by the harness)" >&2
	exit 2
	;;
esac

if [ -n "$proto_fd" ]; then
	if ! exec 4>&"$proto_fd"; then
		echo "run_step.sh: no protocol descriptor $proto_fd" >&2
		exit 2
	fi
	# Only fd 4 stays open (the workload gets neither): $proto_fd is digits.
	# The host's harness passes the socket as standard input: /dev/null then.
	if [ "$proto_fd" = 0 ]; then
		exec </dev/null
	elif [ "$proto_fd" != 4 ]; then
		eval "exec $proto_fd>&-"
	fi
elif [ -n "$proto" ]; then
	if ! exec 4>"$proto"; then
		echo "run_step.sh: cannot open the protocol channel $proto" >&2
		exit 2
	fi
else
	exec 4>&1
fi

mark() {
	printf '%s %s\n' "$token" "$*" >&4
}

finish() {
	# The end of the workload's output streams, then of the step.
	printf '\036pfh-end-%s\036' "$token"
	printf '\036pfh-end-%s\036' "$token" >&2
	mark step-end "status=$1"
	exit "$1"
}

usage_error() {
	echo "run_step.sh: $*" >&2
	mark error what=usage
	finish 2
}

[ -z "$usage" ] || usage_error "$usage"

# The caller's kernel log descriptor moves to 3 (the workload gets neither).
if [ -n "$kmsg_fd" ]; then
	if ! exec 3<&"$kmsg_fd"; then
		mark error what=kmsg
		finish 1
	fi
	eval "exec $kmsg_fd<&-"
fi
if [ -n "$oracle" ] && [ -z "$ko" ]; then
	usage_error "--oracle-ko needs --ko (the module it is the oracle of)"
fi
if [ $# -eq 0 ]; then
	usage_error "no command after --"
fi

# The caller's PATH comes first; the system directories follow, for insmod
# and rmmod (a user's PATH often lacks /sbin).
PATH=$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

if [ -n "$cwd" ] && ! cd "$cwd"; then
	mark error what=cwd
	finish 2
fi
if ! command -v "$1" >/dev/null 2>&1; then
	mark error what=not-found
	finish 127
fi

# Page faults (minflt + majflt) in /proc/PID/stat fields from "state" on:
#   state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt ...
faults_in_stat() {
	shift 7
	echo $(($1 + $3))
}

# Report the kernel log records that arrived since the last drain of fd 3.
# First the quick way: write an end mark with a nonce made now (the workload
# is gone and cannot know it) and let busybox's sed (static: it starts in a
# few milliseconds) forward records until it reads that mark, which it then
# also writes to fd 7: the command substitution's output says it got there.
# (The pad record after the mark is read, not forwarded.)
# sed stops early when a read fails: EPIPE, the log overwrote records we had
# not read yet. Then the slow way, dd in non-blocking mode until the log is
# empty, which says kmsg-lost at each EPIPE and goes on with the oldest record
# still there (dd's error message is caught by the substitution, fd 5 its
# output, fd 1 the pipe to sed: no file for it).
drain_kmsg() {
	mark kmsg-begin
	nonce=
	read -r nonce 2>/dev/null </proc/sys/kernel/random/uuid
	reached=
	tries=0
	# sed reads one line ahead before it acts on one (for its $ address): a second record follows the mark.
	if [ -n "$nonce" ] && printf '<14>%s %s\n' pfh-step-end "$nonce" 2>/dev/null >/dev/kmsg &&
		printf '<14>%s\n' pfh-step-end-pad 2>/dev/null >/dev/kmsg; then
		reached=$({ $bb sed -n "s/^/$token kmsg /p
/;pfh-step-end $nonce\$/{
w /dev/fd/7
q
}" <&3 >&4 2>/dev/null; } 7>&1)
		if [ -z "$reached" ]; then
			mark kmsg-lost
			tries=1
		fi
	fi
	while [ -z "$reached" ] && dd_error=$({ dd bs=65536 iflag=nonblock <&3 2>&5 | $bb sed "s/^/$token kmsg /" >&4; } 5>&1)
		[ -z "$reached" ] && [ "$tries" -lt 1000 ]; do
		case $dd_error in
		*"Broken pipe"*) ;;
		*) break ;;
		esac
		mark kmsg-lost
		tries=$((tries + 1))
	done
	mark kmsg-end
}

# Sets cs to the centiseconds since boot, from /proc/uptime ("12345.67 ..."),
# with no leading zero (shell arithmetic would read "08" as a bad octal
# number). A variable, not output: no subshell to fork.
uptime_cs() {
	read -r up _ </proc/uptime
	cs=${up%.*}${up#*.}
	while [ "${cs#0}" != "$cs" ] && [ -n "${cs#0}" ]; do
		cs=${cs#0}
	done
}

# Copy the procfs files (those it has) of module $1 into $save_dir while it
# is still loaded. PFH_PROC_DIR (default /proc) is set only by
# tests/test_shell_scripts.py, which runs this script with fake modules.
save_proc_files() {
	saved=
	failed=
	uptime_cs
	save_start=$cs
	for f in records regions processes; do
		src=${PFH_PROC_DIR:-/proc}/$1/$f
		[ -e "$src" ] || continue
		$bb rm -f "$save_dir/$f"
		# Whole 1 MiB blocks (iflag=fullblock): a procfs read may return
		# less, and every write is a round trip to the host over 9p.
		if $bb dd if="$src" of="$save_dir/$f" bs=1048576 iflag=fullblock 2>/dev/null; then
			saved=$saved${saved:+,}$f
		else
			failed=$failed${failed:+,}$f
		fi
	done
	uptime_cs
	mark saved "module=$1" "files=${saved:-none}" "failed=${failed:-none}" "centiseconds=$((cs - save_start))"
}

# Unload the oracle (--oracle-ko), if there is one; its status in
# $oracle_status.
unload_oracle() {
	[ -n "$oracle" ] || return 0
	$rmmod "$oracle_name" >/dev/null 2>&1
	oracle_status=$?
	mark oracle-rmmod "status=$oracle_status"
}

# Wait for the workload; then kill what is left in its session (what it
# started and left behind would hold the output channels). The session's id
# is this script's with --ko, else the workload's (setsid made it the leader).
# SIGKILL takes effect when the process next runs: wait (at most about 5 s)
# until each has exited, so that none still holds an output port when the
# step ends (a virtio port opens only once: the next step could not open it).
reap() {
	wait "$pid"
	status=$?
	killed=
	if [ -n "$bb" ]; then
		# busybox's ps reads /proc in one static program, where the shell's read of
		# every /proc/N/stat takes a system call per byte (0.06-0.2 s under emulation).
		in_session=
		# Split on purpose: ps prints numbers (a header first, which matches no session).
		# shellcheck disable=SC2046
		set -- $($bb ps -o pid,sid)
		while [ $# -ge 2 ]; do
			[ "$2" != "${session:-$pid}" ] || in_session="$in_session $1"
			shift 2
		done
	else
		in_session=
		for stat_file in /proc/[0-9]*/stat; do
			p=${stat_file#/proc/}
			p=${p%/stat}
			if session_of "$p" && [ "$sid" = "${session:-$pid}" ]; then
				in_session="$in_session $p"
			fi
		done
	fi
	for p in $in_session; do
		if [ "$p" != $$ ]; then
			kill -9 "$p" 2>/dev/null && killed="$killed $p"
		fi
	done
	waited=0
	for p in $killed; do
		while [ "$waited" -lt 500 ] && session_of "$p" && [ "$state" != Z ]; do
			waited=$((waited + 1))
			$bb sleep 0.01
		done
	done
}

if [ -z "$ko" ]; then
	mark workload-begin
	setsid "$@" </dev/null 3<&- 4>&- &
	pid=$!
	reap
	mark workload-end "status=$status"
	finish "$status"
fi

modname=${ko##*/}
modname=${modname%.ko}
oracle_name=${oracle##*/}
oracle_name=${oracle_name%.ko}

# insmod's and rmmod's own messages are not the workload's: the module's
# reasons are in the kernel log records.
insmod="$bb insmod" rmmod="$bb rmmod"

if [ -z "$kmsg_fd" ] && ! exec 3</dev/kmsg; then
	mark error what=kmsg
	finish 1
fi

if [ "$hold" = 1 ]; then
	# The child stops itself before exec; it runs CMD only once the module is
	# armed, so none of its faults is lost. A subshell: no program to start
	# before it stops (its pid, which $$ does not give, from /proc/self).
	(
		read -r self _ </proc/self/stat && kill -STOP "$self" && exec "$@"
		exit 126
	) </dev/null 3<&- 4>&- &
	pid=$!
	session=$$
fi
# Skip the records already in the log: only this run's lines are collected.
# In the background, while the workload starts; waited for before any insmod.
# With --kmsg-fd nothing is skipped (the host drops what precedes the mark).
if [ -n "$kmsg_fd" ]; then
	skip=
else
	dd bs=65536 iflag=nonblock <&3 >/dev/null 2>&1 &
	skip=$!
fi

prefaults=
if [ "$hold" = 1 ]; then
	tries=0
	while :; do
		stat=
		read -r stat 2>/dev/null <"/proc/$pid/stat"
		state=${stat##*) }
		state=${state%% *}
		if [ "$state" = T ]; then
			# Split on purpose: what follows "comm) " is space-separated
			# numbers after a one-letter state, so no word is a glob.
			# shellcheck disable=SC2086
			prefaults=$(faults_in_stat ${stat##*) })
			break
		fi
		if [ -z "$stat" ] || [ "$state" = Z ] || [ "$tries" -ge 2000 ]; then
			mark error what=hold "state=$state"
			kill -KILL "$pid" 2>/dev/null
			wait "$pid"
			finish 1
		fi
		tries=$((tries + 1))
		[ "$tries" -gt 50 ] && $bb sleep 0.005
	done
else
	# Started before the module is loaded, as the course's script does.
	mark workload-begin
	"$@" </dev/null 3<&- 4>&- &
	pid=$!
	session=$$
fi
[ -z "$skip" ] || wait "$skip"
# The mark the host keeps the kernel log records after (a user-space record: never the kernel's).
printf '<14>%s %s\n' pfh-step-begin "$token" 2>/dev/null >/dev/kmsg
mark pid "pid=$pid" "hold=$hold" "prefaults=${prefaults:-unknown}"

# Split on purpose: $params and $oracle_params hold only NAME=VALUE words
# that passed check_param (no blanks, no glob characters), one argument each.
# The oracle first, so that it sees every fault of the workload.
if [ -n "$oracle" ]; then
	# Split on purpose (above).
	# shellcheck disable=SC2086
	$insmod "$oracle" "tpid=$pid" $oracle_params >/dev/null 2>&1
	status=$?
	mark oracle-insmod "status=$status"
	if [ "$status" -ne 0 ]; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid"
		drain_kmsg
		finish 3
	fi
fi
# Split on purpose (above).
# shellcheck disable=SC2086
$insmod "$ko" "$pid_param=${pid_value:-$pid}" $params >/dev/null 2>&1
status=$?
mark insmod "status=$status"
if [ "$status" -ne 0 ]; then
	kill -KILL "$pid" 2>/dev/null
	wait "$pid"
	unload_oracle
	drain_kmsg
	finish 3
fi

if [ "$hold" = 1 ]; then
	mark workload-begin
	kill -CONT "$pid"
fi
reap
mark workload-end "status=$status"

# Without an oracle the module's own files are saved; with one, the oracle's,
# after the module is gone (it cannot change them any more).
[ -z "$save_dir" ] || [ -n "$oracle" ] || save_proc_files "$modname"

$rmmod "$modname" >/dev/null 2>&1
rmmod_status=$?
mark rmmod "status=$rmmod_status"
[ -z "$save_dir" ] || [ -z "$oracle" ] || save_proc_files "$oracle_name"
unload_oracle
drain_kmsg
[ "$rmmod_status" -eq 0 ] || finish 4
[ "${oracle_status:-0}" -eq 0 ] || finish 4
finish 0
