"""The one definition of the host <-> guest step protocol: what vm/run_step.sh is told and what it says.

- the step's command line: StepCommand.argv() builds run_step.sh's argv from a typed request;
- its events: one dataclass per event ("TOKEN EVENT key=value ..." on the protocol channel), parsed by
  parse_event() into typed values (results/protocol.py takes a step's lines apart with it);
- the token, the line format (strip_token) and the end marker on the workload's output streams;
- the VM's virtio-serial ports, the directory vm/init.sh links them in, and the busy-port message the
  console shell prints when one is still held; the save mount and the kernel parameters vm/init.sh reads;
- the descriptors of --target host: the protocol socket on the script's standard input, kept on fd 4.

The shell scripts cannot import this: tests/test_step_protocol_contract.py reads vm/run_step.sh and
vm/init.sh and checks that they use exactly what is defined here (events and their keys, options,
ports, marker, mount). A change here without the same change there fails that test.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

from .output_format import PROC_FILES

SCRIPT = "run_step.sh"  # in the data files' vm/ (assets.vm_file)

# ---------------------------------------------------------------------------------------------
# The token and the line format
# ---------------------------------------------------------------------------------------------
TOKEN_PATTERN = r"[0-9a-f]{16,64}"  # what a token looks like (run_step.sh takes hex digits only)
TOKEN_RE = re.compile(TOKEN_PATTERN)
KMSG = "kmsg"  # "TOKEN kmsg <record in /dev/kmsg format>": a kernel log record between kmsg-begin and kmsg-end
_EVENT_RE = re.compile(r"([a-z-]+)((?: [a-z_]+=\S*)*)[ \t]*")


def new_token() -> str:
    """A step's token: 128 random bits, hex (what run_step.sh's --token accepts)."""
    return secrets.token_hex(16)


def strip_token(line: str, token: str) -> str | None:
    """The line without its token, or None when it does not carry `token` ("TOKEN EVENT ...")."""
    prefix = token + " "
    return line[len(prefix) :] if token and line.startswith(prefix) else None


#: What run_step.sh writes on each of the workload's output streams when the step ends.
END_MARKER_PREFIX = b"\x1epfh-end-"
END_MARKER_SUFFIX = b"\x1e"


def end_marker(token: str) -> bytes:
    return END_MARKER_PREFIX + token.encode() + END_MARKER_SUFFIX


# ---------------------------------------------------------------------------------------------
# The events: "TOKEN NAME key=value ..." (one line each; NAME and keys as below, values without blanks)
# ---------------------------------------------------------------------------------------------
def _int(value: str | None) -> int | None:
    return int(value) if value is not None and re.fullmatch(r"-?\d{1,12}", value) else None


def _flag(value: str | None) -> bool:
    return value != "0"  # hold=0 is the only "no"; an event without the key means the default, held


def _names(value: str | None) -> tuple[str, ...]:
    return () if value in (None, "", "none") else tuple(value.split(","))


#: How a field's value is read, by the type the event declares for it (a string: annotations are not evaluated
#: here); tests/test_step_protocol_contract.py reads every event back, so a type missing here fails there.
_READERS: dict[str, Callable[[str | None], Any]] = {
    "int | None": _int,
    "str | None": lambda v: v,
    "bool": _flag,
    "tuple[str, ...]": _names,
}


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    return str(value)


@dataclass(frozen=True)
class StepEvent:
    """One event run_step.sh reports; NAME is its first word, the dataclass fields are its keys."""

    NAME: ClassVar[str] = ""

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_values(cls, values: dict[str, str]) -> StepEvent:
        return cls(**{f.name: _READERS[str(f.type)](values.get(f.name)) for f in fields(cls)})

    def line(self) -> str:
        """The event as run_step.sh writes it, without the token (a key whose value is None is left out)."""
        words = [self.NAME]
        words += [f"{f.name}={_show(v)}" for f in fields(self) if (v := getattr(self, f.name)) is not None]
        return " ".join(words)


@dataclass(frozen=True)
class StatusEvent(StepEvent):
    """An event that carries an exit status."""

    status: int | None = None


@dataclass(frozen=True)
class Pid(StepEvent):
    """The workload's process exists (held before its exec, or started: --no-hold)."""

    NAME = "pid"
    pid: int | None = None  # the module's tpid; with --no-hold or held, the id of the workload's session too
    hold: bool = True
    prefaults: int | None = None  # its faults before the exec, when held ("unknown" otherwise)


@dataclass(frozen=True)
class Insmod(StatusEvent):
    NAME = "insmod"


@dataclass(frozen=True)
class OracleInsmod(StatusEvent):
    """--oracle-ko: pfharness's own recorder loaded beside the module (before it, for the same pid)."""

    NAME = "oracle-insmod"


@dataclass(frozen=True)
class WorkloadBegin(StepEvent):
    NAME = "workload-begin"


@dataclass(frozen=True)
class WorkloadEnd(StatusEvent):
    NAME = "workload-end"


@dataclass(frozen=True)
class Saved(StepEvent):
    """--save-dir: which procfs files (PROC_FILES) of which module were copied, and how long it took; with
    --oracle-ko the oracle's (after the module was unloaded), else the module's."""

    NAME = "saved"
    module: str | None = None  # the module's name: /proc/<module>/ the files came from
    files: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    centiseconds: int | None = None


@dataclass(frozen=True)
class Rmmod(StatusEvent):
    NAME = "rmmod"


@dataclass(frozen=True)
class OracleRmmod(StatusEvent):
    """--oracle-ko: the oracle unloaded (after the module, and after its files were saved)."""

    NAME = "oracle-rmmod"


@dataclass(frozen=True)
class KmsgBegin(StepEvent):
    """The kernel log records since the workload started follow ("TOKEN kmsg <record>" lines)."""

    NAME = "kmsg-begin"


@dataclass(frozen=True)
class KmsgLost(StepEvent):
    """The kernel log overwrote records before they were read."""

    NAME = "kmsg-lost"


@dataclass(frozen=True)
class KmsgEnd(StepEvent):
    NAME = "kmsg-end"


@dataclass(frozen=True)
class Error(StepEvent):
    """run_step.sh could not do its job; `what` is one of ERRORS."""

    NAME = "error"
    what: str | None = None
    state: str | None = None  # what=hold: the state the workload's process was in


@dataclass(frozen=True)
class StepEnd(StatusEvent):
    """The last line of every step: nothing after it counts."""

    NAME = "step-end"


#: Every event, by name.
EVENTS: dict[str, type[StepEvent]] = {
    e.NAME: e
    for e in (
        Pid,
        OracleInsmod,
        Insmod,
        WorkloadBegin,
        WorkloadEnd,
        Saved,
        Rmmod,
        OracleRmmod,
        KmsgBegin,
        KmsgLost,
        KmsgEnd,
        Error,
        StepEnd,
    )
}
#: What an `error` event's `what` can be: the command was not found, or the script failed itself.
NOT_FOUND = "not-found"
ERRORS = ("usage", "cwd", NOT_FOUND, "kmsg", "hold")
#: The module's procfs files --save-dir copies, those the module has (/proc/<module>/<file>).
SAVED_FILES = PROC_FILES

E = TypeVar("E", bound=StepEvent)


def parse_event(line: str) -> StepEvent | None:
    """One protocol line (token removed) as its typed event; None for a kmsg line or anything else."""
    m = _EVENT_RE.fullmatch(line)
    kind = EVENTS.get(m.group(1)) if m else None
    if m is None or kind is None:
        return None
    return kind.from_values(dict(kv.split("=", 1) for kv in m.group(2).split()))


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------
PID_PARAM = "tpid"  # the module parameter run_step.sh gives the workload's pid unless --pid-param names another
#: Every option run_step.sh takes, as StepCommand.argv() writes them.
OPTIONS = (
    "--token",
    "--proto",
    "--proto-fd",
    "--kmsg-fd",
    "--busybox",
    "--cwd",
    "--ko",
    "--param",
    "--pid-param",
    "--pid-value",
    "--no-hold",
    "--save-dir",
    "--oracle-ko",
    "--oracle-param",
)


@dataclass(frozen=True)
class StepCommand:
    """One run of run_step.sh: its options, typed. Paths are as the machine that runs it sees them."""

    token: str  # every protocol line carries it
    command: tuple[str, ...]  # the workload's argv
    proto: str | None = None  # the protocol channel is this file (the VM's port: port_path(PROTO_PORT)) ...
    proto_fd: int | None = None  # ... or this inherited descriptor (--target host: HOST_PROTO_FD); else stdout
    kmsg_fd: int | None = None  # the kernel log from this inherited descriptor (the VM: GUEST_KMSG_FD); else opened
    busybox: str | None = None  # busybox's path (the VM's harness knows it); else looked up along PATH
    cwd: str | None = None  # the workload's directory
    ko: str | None = None  # the module to load (None: the command runs untraced)
    params: tuple[str, ...] = ()  # module parameters, NAME=VALUE (checked by step.check_params)
    pid_param: str = PID_PARAM  # the module's parameter that gets the workload's pid
    hold: bool = True  # hold the workload before its exec until the module is loaded
    save_dir: str | None = None  # where to copy the module's procfs files (SAVED_FILES) before unloading it
    oracle_ko: str | None = None  # pfharness's own recorder, loaded first for the same pid (its files are saved)
    oracle_params: tuple[str, ...] = ()  # its parameters, NAME=VALUE
    pid_value: int | None = None  # load the module with pid_param=<this> instead of the workload's pid

    def argv(self, script: str) -> list[str]:
        """The command line that runs `script` (run_step.sh's path) with these options."""
        argv = ["/bin/sh", script, "--token", self.token]
        if self.proto is not None:
            argv += ["--proto", self.proto]
        if self.proto_fd is not None:
            argv += ["--proto-fd", str(self.proto_fd)]
        if self.kmsg_fd is not None:
            argv += ["--kmsg-fd", str(self.kmsg_fd)]
        if self.busybox is not None:
            argv += ["--busybox", self.busybox]
        if self.cwd is not None:
            argv += ["--cwd", self.cwd]
        if self.ko is not None:
            argv += ["--ko", self.ko]
        for p in self.params:
            argv += ["--param", p]
        if self.pid_param != PID_PARAM:
            argv += ["--pid-param", self.pid_param]
        if self.pid_value is not None:
            argv += ["--pid-value", str(self.pid_value)]
        if not self.hold:
            argv.append("--no-hold")
        if self.save_dir is not None:
            argv += ["--save-dir", self.save_dir]
        if self.oracle_ko is not None:
            argv += ["--oracle-ko", self.oracle_ko]
        for p in self.oracle_params:
            argv += ["--oracle-param", p]
        return [*argv, "--", *self.command]


#: --target host: the protocol socket is the script's standard input (a shell names only descriptors
#: 0-9, and its input is otherwise unused); the script keeps it on SCRIPT_PROTO_FD, gives the workload
#: /dev/null as input and neither descriptor.
HOST_PROTO_FD = 0
SCRIPT_PROTO_FD = 4
#: The VM's shell holds this descriptor open on /dev/kmsg, read up to its start (vm/init.sh): steps read
#: on from it (--kmsg-fd) instead of opening the log and skipping every record already in it.
GUEST_KMSG_FD = 5
#: The user-space kernel log record "STEP_MARK TOKEN" that run_step.sh writes before the workload can
#: run: a step's kernel records are those after the first such record with its token (when it has one).
STEP_MARK = "pfh-step-begin"

# ---------------------------------------------------------------------------------------------
# The VM: ports, mounts and the kernel parameters vm/init.sh reads
# ---------------------------------------------------------------------------------------------
PROTO_PORT = "pfh.proto"  # run_step.sh's protocol channel
OUT_PORT = "pfh.out"  # the workload's standard output ...
ERR_PORT = "pfh.err"  # ... and error
PORTS = (PROTO_PORT, OUT_PORT, ERR_PORT)
PORT_DIR = "/dev/virtio-ports"  # where vm/init.sh links each port by its name (what udev would do)
SAVE_MOUNT = "/run/pfh-save"  # where vm/init.sh mounts the one host directory the guest may write

#: The kernel parameters vm/init.sh reads.
P9_PARAM = "pfh.9p"  # =OPTS: the host root's 9p mount options
ROOT_PARAM = "pfh.root"  # =overlay|ro: how the root is made writable (pfharness leaves the default)
SAVE_PARAM = "pfh.save"  # =TAG: mount the 9p export TAG read-write on SAVE_MOUNT
PORTS_PARAM = "pfh.ports"  # =A,B,...: wait for these virtio-serial ports and link them under PORT_DIR
MM_PARAM = "pfh.mm"  # =KEY:VALUE,...: memory-management settings to write at boot (mm_settings.py)
SNAP_PARAM = "pfh.snap"  # =1: stop at SNAP_POINT (before the 9p mounts) until the host sends the resume line
INIT_PARAMS = (P9_PARAM, ROOT_PARAM, SAVE_PARAM, PORTS_PARAM, MM_PARAM, SNAP_PARAM)

#: The snapshot point (guest/snapshot.py): with SNAP_PARAM, vm/init.sh prints SNAP_POINT on the console
#: once the modules are loaded and the ports linked, and reads one line from PROTO_PORT: the host
#: snapshots the guest meanwhile, and every guest restored from it reads the line its own run sends,
#: "SNAP_RESUME SECONDS HEX": the host's wall clock (whole seconds since the epoch, rounded) and fresh
#: random bytes for the guest's entropy pool. Then init.sh mounts the 9p root and goes on as after a boot.
SNAP_POINT = "PFH-SNAPSHOT-POINT"
SNAP_RESUME = "PFH-RESUME"


def resume_line(seconds: int, entropy_hex: str) -> str:
    """The line vm/init.sh reads at the snapshot point."""
    return f"{SNAP_RESUME} {seconds} {entropy_hex}"


#: A virtio port opens once: while the previous step's last holder still releases it, the console
#: shell's redirect fails with this and the step never starts; the VM session tries again.
PORT_BUSY = re.compile(
    b"cannot create "
    + re.escape(PORT_DIR.encode())
    + b"/(?:"
    + b"|".join(re.escape(p.encode()) for p in PORTS)
    + b"): Device or resource busy"
)
BUSY_TRIES = 5
BUSY_PAUSE = 0.2  # seconds, times the attempt's number


def port_path(name: str) -> str:
    """A port's device in the guest."""
    return f"{PORT_DIR}/{name}"


def output_redirect() -> str:
    """The console shell's redirection of a step's output streams to their ports."""
    return f" >{port_path(OUT_PORT)} 2>{port_path(ERR_PORT)}"
