"""The step protocol lives in one place (results/step_protocol.py); the shell scripts cannot import it, so this
test reads vm/run_step.sh and vm/init.sh and checks that they use exactly what it defines: the events and their
keys, the error kinds, the options, the line format, the end marker, the descriptors, the port directory, the
save mount and the kernel parameters. The mutations at the end show that a script drifting from the owner (an
event renamed, an option added, the mount moved) is caught."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from pfharness.results import step_protocol as sp

ROOT = Path(__file__).resolve().parent.parent
RUN_STEP = ROOT / "vm" / "run_step.sh"
INIT = ROOT / "vm" / "init.sh"
FORGE = ROOT / "tests" / "guest" / "forge.sh"
TOKEN = "0123456789abcdef" * 2


def code(text: str) -> str:
    """The script without its comment lines (comments may name anything)."""
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))


def emitted_events(script: str) -> dict[str, set[str]]:
    """Every event run_step.sh writes (`mark NAME key=...`), with the keys it gives it."""
    events: dict[str, set[str]] = {}
    for name, rest in re.findall(r"\bmark ([a-z-]+)(.*)$", code(script), re.M):
        events.setdefault(name, set()).update(re.findall(r'(?:^|\s)"?([a-z_]+)=', rest))
    return events


def defined_events() -> dict[str, set[str]]:
    return {name: set(kind.keys()) for name, kind in sp.EVENTS.items()}


def parsed_options(script: str) -> set[str]:
    """The options run_step.sh's case statements take (`--name)` or `--a | --b)`)."""
    return set(re.findall(r"(--[a-z][a-z-]*)(?=\s*[|)])", code(script)))


def built_options() -> set[str]:
    """The options StepCommand.argv() writes when every field is set."""
    full = sp.StepCommand(
        TOKEN,
        ("true",),
        proto="/p",
        proto_fd=0,
        kmsg_fd=5,
        busybox="/bin/busybox",
        cwd="/",
        ko="/m.ko",
        params=("a=1",),
        pid_param="process_id",
        hold=False,
        save_dir="/s",
        oracle_ko="/o.ko",
        oracle_params=("b=2",),
        pid_value=30000,
    )
    argv = full.argv("run_step.sh")
    return {word for word in argv[: argv.index("--")] if word.startswith("--")}


def end_markers(script: str) -> list[tuple[bytes, str]]:
    """(the bytes, where they go) of each printf of the end marker, with the token filled in."""
    found = []
    for fmt, target in re.findall(r"printf '([^']*pfh-end-[^']*)' \"\$token\"(.*)$", code(script), re.M):
        text = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fmt).replace("%s", TOKEN)
        found.append((text.encode(), target.strip()))
    return found


def violations(run_step: str, init: str) -> list[str]:
    """What in the two scripts differs from step_protocol (empty: they agree)."""
    out = []
    script, owner = emitted_events(run_step), defined_events()
    for name in sorted(script.keys() | owner.keys()):
        if script.get(name) != owner.get(name):
            out.append(f"event {name}: run_step.sh writes keys {script.get(name)}, step_protocol {owner.get(name)}")
    errors = set(re.findall(r"\bmark error what=([a-z-]+)", code(run_step)))
    if errors != set(sp.ERRORS):
        out.append(f"error kinds: run_step.sh {sorted(errors)}, step_protocol {sorted(sp.ERRORS)}")
    if parsed_options(run_step) != built_options() or set(sp.OPTIONS) != built_options():
        out.append(f"options: run_step.sh {parsed_options(run_step)}, StepCommand.argv {built_options()}")
    fd = sp.SCRIPT_PROTO_FD
    line_format = f'printf \'%s %s\\n\' "$token" "$*" >&{fd}'  # mark(): "TOKEN EVENT ..."
    kmsg_format = f'sed "s/^/$token {sp.KMSG} /" >&{fd}'  # drain_kmsg(): "TOKEN kmsg <record>"
    kmsg_quick = f'sed -n "s/^/$token {sp.KMSG} /p'  # the same, up to the end mark
    step_mark = f"printf '<14>%s %s\\n' {sp.STEP_MARK} \"$token\""  # the mark the host keeps records after
    for needed in (line_format, kmsg_format, kmsg_quick, f'exec {fd}>&"$proto_fd"', f'exec {fd}>"$proto"', step_mark):
        if needed not in run_step:
            out.append(f"run_step.sh lacks {needed!r}")
    if f'if [ "$proto_fd" = {sp.HOST_PROTO_FD} ]; then\n\t\texec </dev/null' not in run_step:
        out.append(f"run_step.sh does not give the workload /dev/null for a protocol on fd {sp.HOST_PROTO_FD}")
    if end_markers(run_step) != [(sp.end_marker(TOKEN), ""), (sp.end_marker(TOKEN), ">&2")]:
        out.append(f"end markers: run_step.sh prints {end_markers(run_step)}, step_protocol {sp.end_marker(TOKEN)!r}")
    saved = re.findall(r"^\tfor f in ([a-z ]+); do$", run_step, re.M)
    if [tuple(s.split()) for s in saved] != [sp.SAVED_FILES]:
        out.append(f"saved files: run_step.sh {saved}, step_protocol {sp.SAVED_FILES}")
    params = set(re.findall(r"^\s+(pfh\.\w+)=\*\)", code(init), re.M))
    if params != set(sp.INIT_PARAMS):
        out.append(f"kernel parameters: init.sh reads {sorted(params)}, step_protocol {sorted(sp.INIT_PARAMS)}")
    port_dirs = set(re.findall(r"/dev/[\w-]*ports\b", code(init)))
    if port_dirs != {sp.PORT_DIR}:
        out.append(f"port directory: init.sh {port_dirs}, step_protocol {sp.PORT_DIR}")
    mounts = re.findall(r'^\s+mount -t 9p .* "\$SAVE_TAG" /newroot(\S+)', init, re.M)
    if mounts != [sp.SAVE_MOUNT] or f'{sp.SAVE_PARAM}=*) SAVE_TAG="${{arg#{sp.SAVE_PARAM}=}}"' not in init:
        out.append(f"save mount: init.sh mounts pfh.save's tag on {mounts}, step_protocol {sp.SAVE_MOUNT}")
    if f"exec {sp.GUEST_KMSG_FD}</dev/kmsg" not in init:
        out.append(f"kernel log descriptor: init.sh does not open {sp.GUEST_KMSG_FD} on /dev/kmsg")
    snap = (f'echo "{sp.SNAP_POINT}"', f"<{sp.port_path(sp.PROTO_PORT)}", f'"$tag" != {sp.SNAP_RESUME} ]')
    if any(needed not in init for needed in snap):
        out.append(f"snapshot point: init.sh lacks one of {snap}")
    return out


def test_the_scripts_use_what_step_protocol_defines():
    assert violations(RUN_STEP.read_text(), INIT.read_text()) == []


@pytest.mark.parametrize(
    ("script", "old", "new"),
    [
        ("run_step", "mark workload-end", "mark workload-done"),  # an event renamed
        ("run_step", 'mark rmmod "status=$rmmod_status"', 'mark rmmod "code=$rmmod_status"'),  # a key renamed
        ("run_step", "mark kmsg-lost\n", "mark kmsg-lost\n\t\tmark kmsg-overrun\n"),  # an event added
        ("run_step", "\tmark error what=cwd", "\tmark error what=dir"),  # an error kind renamed
        (
            "run_step",
            "'<14>%s %s\\n' pfh-step-begin",
            "'<14>%s %s\\n' pfh-step-start",
        ),  # the step's mark in the kernel log
        ("init", "exec 5</dev/kmsg", "exec 6</dev/kmsg"),  # the shell's kernel log descriptor
        ("run_step", "\t--no-hold) hold=0; shift ;;", "\t--no-hold | --nohold) hold=0; shift ;;"),  # an option
        ("run_step", "\t--save-dir)\n", "\t--save-to)\n"),  # an option renamed
        ("run_step", "--ko | --oracle-ko | --pid-param | --busybox)", "--ko | --oracle | --pid-param | --busybox)"),
        ("run_step", 'mark oracle-rmmod "status=', 'mark rmmod-oracle "status='),  # the oracle's event renamed
        ("run_step", 'mark saved "module=$1" ', "mark saved "),  # saved no longer says whose files
        ("run_step", "printf '\\036pfh-end-%s\\036' \"$token\" >&2", "printf '\\036pfh-end-%s\\037' \"$token\" >&2"),
        ("run_step", "s/^/$token kmsg /", "s/^/$token kernel /"),  # the kmsg line
        ("run_step", 'exec 4>"$proto"', 'exec 5>"$proto"'),  # the descriptor
        ("run_step", "for f in records regions processes; do", "for f in records regions; do"),
        ("init", "/newroot/run/pfh-save \\", "/newroot/run/pfh-saved \\"),  # the save mount moved
        ("init", "pfh.ports=*)", "pfh.port=*)"),  # a kernel parameter renamed
        ("init", '"/dev/virtio-ports/$1" ||', '"/dev/vports/$1" ||'),  # the port directory
    ],
)
def test_a_script_that_drifts_from_the_owner_is_caught(script, old, new):
    texts = {"run_step": RUN_STEP.read_text(), "init": INIT.read_text()}
    assert old in texts[script], old  # the mutation applies to the script as it is
    texts[script] = texts[script].replace(old, new, 1)
    assert violations(texts["run_step"], texts["init"]) != []


def test_the_owner_drifting_from_the_scripts_is_caught(monkeypatch):
    monkeypatch.setitem(sp.EVENTS, "workload-done", sp.WorkloadEnd)
    monkeypatch.delitem(sp.EVENTS, "workload-end")
    assert violations(RUN_STEP.read_text(), INIT.read_text()) != []


def test_forged_lines_are_real_events_and_ports():
    """tests/guest/forge.sh (the hostile workload) forges events that exist, on ports that exist: were a name
    to drift, it would forge nothing and tests/test_hostile_*.py would pass for nothing."""
    forge = code(FORGE.read_text())
    forged = set(re.findall(r'echo "\$token ([a-z-]+)', forge))
    assert forged and forged <= {*sp.EVENTS, sp.KMSG} and sp.StepEnd.NAME in forged
    ports = re.findall(r"/dev/[\w-]+/pfh\.\w+", forge)
    assert ports and set(ports) <= {sp.port_path(p) for p in sp.PORTS}


def test_every_event_reads_back_what_it_writes():
    samples = [
        sp.Pid(pid=42, hold=False, prefaults=None),
        sp.Pid(pid=7, hold=True, prefaults=130),
        sp.Insmod(status=1),
        sp.OracleInsmod(status=0),
        sp.OracleRmmod(status=1),
        sp.WorkloadBegin(),
        sp.WorkloadEnd(status=-1),
        sp.Saved(module="pfh_oracle", files=("records", "regions"), failed=("processes",), centiseconds=12),
        sp.Saved(),
        sp.Rmmod(status=0),
        sp.KmsgBegin(),
        sp.KmsgLost(),
        sp.KmsgEnd(),
        sp.Error(what="hold", state="Z"),
        sp.StepEnd(status=127),
    ]
    assert {type(e) for e in samples} == set(sp.EVENTS.values())
    for event in samples:
        assert sp.parse_event(event.line()) == event, event.line()
    # As run_step.sh writes them: a held workload's pid with no pre-exec count, a bare error, an unknown event.
    assert sp.parse_event("pid pid=9 hold=0 prefaults=unknown") == sp.Pid(pid=9, hold=False, prefaults=None)
    assert sp.parse_event("saved files=none failed=none centiseconds=3") == sp.Saved(centiseconds=3)
    assert sp.parse_event("error what=not-found") == sp.Error(what=sp.NOT_FOUND)
    assert sp.parse_event("step-end status=x") == sp.StepEnd(status=None)
    assert sp.parse_event("no-such-event status=0") is None and sp.parse_event("step-end status=0 junk") is None


def test_the_busy_port_message_is_the_console_shells():
    """The VM's console shell (dash, the host's /bin/sh) says "cannot create PATH: REASON" when a redirect fails;
    PORT_BUSY is that message for a held port."""
    shell = subprocess.run(
        ["/bin/sh", "-c", "echo x >/nonexistent-pfh-dir/pfh.out"], capture_output=True, check=False, timeout=10
    )
    message = shell.stderr.strip()
    assert b"cannot create /nonexistent-pfh-dir/pfh.out: " in message, message
    for port in sp.PORTS:
        held = message.replace(b"/nonexistent-pfh-dir/pfh.out", sp.port_path(port).encode())
        busy = held.rsplit(b": ", 1)[0] + b": Device or resource busy"  # the reason for EBUSY
        assert sp.PORT_BUSY.search(busy), busy
    assert not sp.PORT_BUSY.search(message)
    assert not sp.PORT_BUSY.search(b"cannot create /dev/virtio-ports/other: Device or resource busy")


def test_the_guest_redirect_and_protocol_path_are_the_ports():
    assert sp.output_redirect() == f" >{sp.PORT_DIR}/{sp.OUT_PORT} 2>{sp.PORT_DIR}/{sp.ERR_PORT}"
    argv = sp.StepCommand(TOKEN, ("ls", "-l"), proto=sp.port_path(sp.PROTO_PORT)).argv("/x/run_step.sh")
    proto = ["--proto", "/dev/virtio-ports/pfh.proto"]
    assert argv == ["/bin/sh", "/x/run_step.sh", "--token", TOKEN, *proto, "--", "ls", "-l"]
