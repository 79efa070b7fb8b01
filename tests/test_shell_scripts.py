"""The shell scripts (vm/, scripts/, tests/guest/) checked on the host, without a VM.

shellcheck must be clean; vm/run_step.sh reports usage errors through its markers and never writes
through a fixed name in /tmp; vm/init.sh stops at the first failing step. Everything init.sh and
run_step.sh call here is a fake (scripts in a directory put first in PATH, and for busybox sh, whose
own applets win over PATH, shell functions), so nothing is mounted, loaded or powered off for real.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pfharness import proc
from pfharness.results import step_protocol as sp
from pfharness.results.protocol import StepOutput, parse_lines
from pfharness.results.step_protocol import end_marker, strip_token

ROOT = Path(__file__).resolve().parent.parent
RUN_STEP = ROOT / "vm" / "run_step.sh"
INIT = ROOT / "vm" / "init.sh"
POSIX_SCRIPTS = sorted([*(ROOT / "vm").glob("*.sh"), *(ROOT / "tests" / "guest").glob("*.sh")])
BASH_SCRIPTS = sorted((ROOT / "scripts").glob("*.sh"))
KMSG_ERR = Path("/tmp/pfh-kmsg.err")  # the fixed name run_step.sh used to write through

# The shells the scripts run under: the host's /bin/sh (dash, as in the guest's steps) and busybox's
# (by its path: the tests' PATH holds fakes).
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
TOKEN = "0123456789abcdef0123456789abcdef"
END = end_marker(TOKEN).decode()
SHELLS = {"dash": ["/bin/sh"], "busybox": [BUSYBOX, "sh"]}


def _run(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False
    )


def proto(text: str) -> list[str]:
    """The protocol lines with the test's token (token removed), in order."""
    return [line for raw in text.splitlines() if (line := strip_token(raw, TOKEN)) is not None]


def parse_step(text: str) -> StepOutput:
    return parse_lines(proto(text))


def _fake_busybox(bindir: Path, body: str) -> None:
    """A fake `busybox` whose insmod and rmmod applets run `body`; every other applet (mktemp, sed,
    dd, rm: run_step.sh takes them from busybox for speed) is the real busybox's."""
    _fake(bindir, "busybox", f'case $1 in insmod | rmmod) ;; *) exec {BUSYBOX} "$@" ;; esac\n{body}')


def _fake(bindir: Path, name: str, body: str) -> None:
    """A fake command: a /bin/sh script using only shell builtins (PATH holds only fakes)."""
    path = bindir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


# --------------------------------------------------------------------------
# (a) shellcheck
# --------------------------------------------------------------------------


def test_shellcheck_is_clean():
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed (apt-get install shellcheck)"
    assert POSIX_SCRIPTS and BASH_SCRIPTS
    for argv in (
        [shellcheck, "-s", "sh", *map(str, POSIX_SCRIPTS)],  # run by dash or busybox sh
        [shellcheck, *map(str, BASH_SCRIPTS)],  # bash, by their shebang
    ):
        result = _run(argv)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_shellcheck_disable_says_why():
    """A `# shellcheck disable=` is only allowed right under a comment giving the reason."""
    for script in [*POSIX_SCRIPTS, *BASH_SCRIPTS]:
        lines = script.read_text().splitlines()
        for i, line in enumerate(lines):
            if "shellcheck disable" in line:
                assert re.fullmatch(r"\s*# shellcheck disable=SC\d{4}", line), f"{script}:{i + 1}: {line}"
                assert i > 0 and lines[i - 1].strip().startswith("#"), f"{script}:{i + 1}: no reason above"


# --------------------------------------------------------------------------
# (b) run_step.sh: usage errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    "args",
    [
        ["--ko"],
        ["--param"],
        ["--param", "max_records=4", "--ko"],
        ["--ko", "m.ko", "--param"],
        ["--ko", ""],
        ["--param", "a b=1", "--", "true"],
        ["--param", "x=*", "--", "true"],
        ["--param", "novalue", "--", "true"],
        [],
    ],
    ids=[
        "ko-last",
        "param-last",
        "ko-last-after-param",
        "param-last-after-ko",
        "ko-empty",
        "param-blank",
        "param-glob",
        "param-no-equals",
        "no-command",
    ],
)
def test_run_step_usage_error(shell, args, tmp_path):
    result = _run([*SHELLS[shell], str(RUN_STEP), "--token", TOKEN, *args], cwd=tmp_path)
    assert result.returncode == 2, result
    assert result.stdout == f"{TOKEN} error what=usage\n{END}{TOKEN} step-end status=2\n"
    step = parse_step(result.stdout)
    assert step.complete and step.event(sp.Error) == sp.Error(what="usage")
    assert list(tmp_path.iterdir()) == []  # nothing created, nothing run


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("token", [None, "", "NOT-HEX", "0123 45"])
def test_run_step_needs_a_hex_token(shell, token, tmp_path):
    args = [] if token is None else ["--token", token]
    result = _run([*SHELLS[shell], str(RUN_STEP), *args, "--", "true"], cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == "" and "--token" in result.stderr


@pytest.mark.parametrize("shell", SHELLS)
def test_run_step_untraced_runs_the_command(shell, tmp_path):
    argv = [*SHELLS[shell], str(RUN_STEP), "--token", TOKEN, "--param", "max_records=4", "--"]
    result = _run([*argv, "sh", "-c", "echo hi; echo oops >&2; exit 7"])
    assert result.returncode == 7
    assert result.stdout == (
        f"{TOKEN} workload-begin\nhi\n{TOKEN} workload-end status=7\n{END}{TOKEN} step-end status=7\n"
    )
    assert result.stderr == f"oops\n{END}"


@pytest.mark.parametrize("shell", SHELLS)
def test_run_step_keeps_its_protocol_from_the_workload(shell, tmp_path):
    """With --proto the protocol goes there alone; the workload cannot write to it (its descriptor
    is closed for the workload), has no controlling terminal, reads /dev/null, and runs in --cwd."""
    channel = tmp_path / "proto"
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "input.txt").write_text("from the input file\n")
    script = (
        f"echo '{TOKEN} workload-end status=0'; echo '{TOKEN} step-end status=0' >&4; "
        "cat input.txt; cat; pwd; if (: </dev/tty) 2>/dev/null; then echo has-tty; else echo no-tty; fi; exit 5"
    )
    argv = [*SHELLS[shell], str(RUN_STEP), "--token", TOKEN, "--proto", str(channel), "--cwd", str(workdir), "--"]
    result = _run([*argv, "sh", "-c", script])
    assert result.returncode == 5
    assert proto(channel.read_text()) == ["workload-begin", "workload-end status=5", "step-end status=5"]
    assert result.stdout == (f"{TOKEN} workload-end status=0\nfrom the input file\n{workdir}\nno-tty\n{END}")
    assert "Bad file descriptor" in result.stderr or "bad file descriptor" in result.stderr.lower()


# --------------------------------------------------------------------------
# (c) run_step.sh: no fixed name in /tmp
# --------------------------------------------------------------------------


@pytest.fixture
def fake_modules(tmp_path) -> tuple[dict[str, str], Path]:
    """PATH with fake `busybox`, `insmod` and `rmmod` first (print, log and exit 0: no module is loaded);
    returns the environment and the log of their calls."""
    assert os.access("/dev/kmsg", os.R_OK), "the traced path reads /dev/kmsg: run the tests as root"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls.log"
    for name in ("insmod", "rmmod"):
        _fake(bindir, name, f'echo "fake {name} $*"; echo "{name} $*" >>"{calls}"; exit 0')
    _fake_busybox(bindir, f'echo "fake busybox $*"; echo "busybox $*" >>"{calls}"; exit 0')
    env = {k: v for k, v in os.environ.items() if k != "TMPDIR"}
    env["PATH"] = f"{bindir}:{env.get('PATH', '/usr/bin:/bin')}"
    return env, calls


@pytest.fixture
def planted_symlink(tmp_path):
    """A symlink at /tmp/pfh-kmsg.err to a file of the test's own; whatever was there is put back after."""
    target = tmp_path / "victim.txt"
    target.write_text("precious\n")
    saved = None
    if KMSG_ERR.is_symlink() or KMSG_ERR.exists():
        saved = tmp_path / "saved-pfh-kmsg.err"
        os.rename(KMSG_ERR, saved)
    KMSG_ERR.symlink_to(target)
    try:
        yield target
    finally:
        if KMSG_ERR.is_symlink() and KMSG_ERR.readlink() == target:
            KMSG_ERR.unlink()
        if saved is not None:
            os.rename(saved, KMSG_ERR)


def _traced(env: dict[str, str], ko: Path, *command: str) -> subprocess.CompletedProcess:
    # dash only: busybox sh would run its own insmod applet whatever PATH says.
    argv = ["/bin/sh", str(RUN_STEP), "--token", TOKEN, "--ko", str(ko), "--param", "max_records=4", "--", *command]
    return _run(argv, env=env)


def test_run_step_never_writes_through_a_planted_symlink(fake_modules, planted_symlink, tmp_path):
    env, calls = fake_modules
    ko = tmp_path / "fake_mod.ko"  # never read: insmod is a fake
    result = _traced(env, ko, "true")
    assert result.returncode == 0, result
    step = parse_step(result.stdout)
    assert step.complete and step.status(sp.StepEnd) == 0
    # drain_kmsg ran (it is where the error file is written), after the fake rmmod.
    assert f"{TOKEN} kmsg-begin\n" in result.stdout and f"{TOKEN} kmsg-end\n" in result.stdout
    pid = step.event(sp.Pid).pid
    assert calls.read_text() == f"busybox insmod {ko} tpid={pid} max_records=4\nbusybox rmmod fake_mod\n"
    assert planted_symlink.read_text() == "precious\n"
    assert KMSG_ERR.is_symlink() and KMSG_ERR.readlink() == planted_symlink


@pytest.mark.parametrize("failing", ["none", "insmod", "rmmod"])
def test_run_step_removes_its_private_file(fake_modules, tmp_path, failing):
    """dd's error message is read without a file: nothing is left in TMPDIR, whatever the exit."""
    env, _calls = fake_modules
    if failing != "none":
        bindir = Path(env["PATH"].split(":")[0])
        _fake_busybox(bindir, f'echo "{failing} failed" >&2; [ "$1" != {failing} ]')
    private = tmp_path / "private-tmp"
    private.mkdir()
    env = {**env, "TMPDIR": str(private)}
    result = _traced(env, tmp_path / "fake_mod.ko", "true")
    assert result.returncode == {"none": 0, "insmod": 3, "rmmod": 4}[failing], result
    assert f"{TOKEN} step-end status={result.returncode}\n" in result.stdout
    assert f"{TOKEN} kmsg-end\n" in result.stdout
    assert list(private.iterdir()) == []


def test_run_step_reads_the_kernel_log_from_the_given_descriptor(fake_modules, tmp_path):
    """--kmsg-fd N: the records are read on from that descriptor (nothing skipped; the VM's shell holds one
    read up to its start), the workload has neither it nor the script's copy, and the step's mark goes
    into the kernel log before the workload runs."""
    env, _calls = fake_modules
    log = tmp_path / "kmsg"
    log.write_text("6,1,100,-;pf_probe_B: left from before\n6,2,200,-;pf_probe_B: a record\n")
    workload = "for fd in 3 5; do [ -e /proc/self/fd/$fd ] && echo has-fd-$fd; done; echo ran"
    step = ["/bin/sh", str(RUN_STEP), "--token", TOKEN, "--kmsg-fd", "5", "--ko", str(tmp_path / "fake_mod.ko")]
    step += ["--", "sh", "-c", workload]
    result = _run(["/bin/sh", "-c", 'exec 5<"$0" && exec "$@"', str(log), *step], env=env)
    assert result.returncode == 0, result
    assert "ran" in result.stdout and "has-fd" not in result.stdout
    records = [r.message for r in parse_step(result.stdout).kernel_records]
    assert records == ["pf_probe_B: left from before", "pf_probe_B: a record"]  # no mark in this file: all kept
    for bad in ("3", "x"):
        refused = _run(["/bin/sh", str(RUN_STEP), "--token", TOKEN, "--kmsg-fd", bad, "--", "true"], env=env)
        assert refused.returncode == 2 and f"{TOKEN} error what=usage" in refused.stdout


def test_a_steps_kernel_records_are_those_after_its_mark():
    """What precedes the step's own mark (the shell's descriptor is read on from the last step) is dropped;
    a mark forged later (the workload knows the token: it is on the script's command line) hides nothing;
    a mark with another token, or a kernel record saying it, is not the step's."""

    def kmsg(facility: int, seq: int, text: str) -> str:
        return f"{sp.KMSG} {facility * 8 + 6},{seq},{seq * 10},-;{text}"

    mark = f"{sp.STEP_MARK} {TOKEN}"
    lines = [
        "kmsg-begin",
        kmsg(0, 1, "9pnet: before the step"),
        kmsg(0, 2, mark),  # the kernel's own record: not the mark
        kmsg(1, 3, f"{sp.STEP_MARK} {'f' * 32}"),  # another step's
        kmsg(1, 4, mark),
        kmsg(0, 5, "pf_probe_B: tracing"),
        kmsg(1, 6, mark),  # forged by the workload
        kmsg(0, 7, "pf_probe_B: summary"),
        "kmsg-end",
        "step-end status=0",
    ]
    kept = [r.seq for r in parse_lines(lines, TOKEN).kernel_records]
    assert kept == [5, 6, 7]
    assert [r.seq for r in parse_lines(lines).kernel_records] == [1, 2, 3, 4, 5, 6, 7]  # no token: all
    unmarked = [line for line in lines if not line.endswith(f"-;{mark}") or ",2,20," in line]
    assert [r.seq for r in parse_lines(unmarked, TOKEN).kernel_records] == [1, 2, 3, 5, 7]


# --------------------------------------------------------------------------
# (d) init.sh: fail-stop
# --------------------------------------------------------------------------

# Left as the shells' own builtins: they only print or test.
_BUILTINS = {"echo", "printf", "test", "[", "[[", "true", "false"}


def _busybox_applets() -> list[str]:
    return _run([BUSYBOX, "--list"]).stdout.split()


@pytest.fixture
def fake_init_commands(tmp_path) -> Path:
    """A directory of fakes for every busybox applet: each prints its name and arguments and
    succeeds; `mount` fails when one of its arguments is $FAKE_MOUNT_FAIL; `poweroff` prints
    POWEROFF and returns (as if the power-off had not happened)."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    names = set(_busybox_applets()) - _BUILTINS
    assert {"mount", "mkdir", "insmod", "setsid", "chroot", "poweroff", "stty", "ip", "cat"} <= names
    for name in names:
        if "/" in name:
            continue
        if name == "poweroff":
            body = "echo POWEROFF"
        elif name == "mount":
            body = 'echo "FAKE mount $*"\nfor a in "$@"; do [ "$a" = "$FAKE_MOUNT_FAIL" ] && exit 1; done\nexit 0'
        else:
            body = f'echo "FAKE {name} $*"'
        _fake(bindir, name, body)
    return bindir


def _prelude(bindir: Path) -> str:
    """Shell functions faking every busybox applet, each calling its fake by path. Functions come
    before everything else but special builtins, in dash and in busybox sh alike, so no real applet
    runs whatever PATH says (busybox sh even runs its own applets before searching PATH)."""
    defs = []
    for name in sorted(set(_busybox_applets()) - _BUILTINS):
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            defs.append(f'{name}() {{ "{bindir}/{name}" "$@"; }}')
    return "\n".join(defs) + "\n"


def _check_init_is_fakeable() -> None:
    """Refuse to run init.sh (as root) unless everything it may call is faked."""
    text = INIT.read_text()
    # Commands that are not busybox applets are looked up in PATH: it must be the fakes'.
    assert re.search(r"^PATH=\$\{PFH_INIT_PATH:-/bin\}$", text, re.M), "init.sh must take PATH from PFH_INIT_PATH"
    # Applets whose names cannot be shell functions must not be used.
    unfakeable = [
        n
        for n in set(_busybox_applets()) - _BUILTINS
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) and re.search(rf"(?<![\w.-]){re.escape(n)}(?![\w.-])", text)
    ]
    assert unfakeable == []


def _run_init(shell: str, bindir: Path, tmp_path: Path, mount_fail: str) -> subprocess.CompletedProcess:
    _check_init_is_fakeable()
    env = {"PFH_INIT_PATH": str(bindir), "PATH": str(bindir), "FAKE_MOUNT_FAIL": mount_fail}
    script = tmp_path / "init-with-fakes.sh"
    script.write_text(_prelude(bindir) + INIT.read_text())
    return _run([*SHELLS[shell], str(script)], env=env, cwd=tmp_path)


@pytest.mark.parametrize("shell", SHELLS)
def test_init_fakes_shadow_the_real_commands(shell, fake_init_commands, tmp_path):
    """The safety net of the tests below: every command init.sh calls resolves to a fake."""
    names = ["mount", "poweroff", "insmod", "mkdir", "setsid", "chroot", "env", "stty", "ip", "cat", "sleep"]
    script = tmp_path / "probe.sh"
    # `type` only looks the names up (nothing is run), with PATH reset as init.sh could.
    script.write_text(_prelude(fake_init_commands) + "PATH=/bin\n" + "".join(f"type {n}\n" for n in names))
    result = _run([*SHELLS[shell], str(script)], env={"PATH": str(fake_init_commands)}, cwd=tmp_path)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert len(lines) == len(names), result
    for name, line in zip(names, lines, strict=True):
        assert re.fullmatch(rf"{name} is a (shell )?function", line), line


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("mount_fail", "ran", "error"),
    [
        ("/proc", ["FAKE mount -t proc proc /proc"], "mount proc"),
        ("/sys", ["FAKE mount -t proc proc /proc", "FAKE mount -t sysfs sysfs /sys"], "mount sysfs"),
        (
            "/dev",
            ["FAKE mount -t proc proc /proc", "FAKE mount -t sysfs sysfs /sys", "FAKE mount -t devtmpfs devtmpfs /dev"],
            "mount devtmpfs",
        ),
        # All mounts "work"; this host has no /modules.order, the next thing init.sh checks.
        (
            "nothing",
            ["FAKE mount -t proc proc /proc", "FAKE mount -t sysfs sysfs /sys", "FAKE mount -t devtmpfs devtmpfs /dev"],
            "no /modules.order in the initramfs",
        ),
    ],
    ids=["proc", "sysfs", "devtmpfs", "modules-order"],
)
def test_init_stops_at_the_first_failure(shell, mount_fail, ran, error, fake_init_commands, tmp_path):  # noqa: PLR0917 - pytest fixtures and parameters
    if mount_fail == "nothing":
        assert not Path("/modules.order").exists(), "this host has a /modules.order: the case needs it absent"
    result = _run_init(shell, fake_init_commands, tmp_path, mount_fail)
    lines = result.stdout.splitlines()
    assert result.stdout.count("PFH-INIT-ERROR") == 1, result
    assert lines == [*ran, f"PFH-INIT-ERROR: {error}", "POWEROFF"], result
    assert result.returncode != 0
    # Nothing was written either (the only files are the test's own).
    assert set(tmp_path.iterdir()) == {fake_init_commands, tmp_path / "init-with-fakes.sh"}


@pytest.mark.parametrize("shell", SHELLS)
def test_run_step_protocol_on_an_inherited_socket(shell, tmp_path):
    """--proto-fd 0 (the host target's way: the socket as standard input): the protocol goes to the
    socket alone; the workload has neither it nor fd 4, reads /dev/null, and cannot open the socket
    again through /proc (as it could a pipe)."""
    import socket

    ours, theirs = socket.socketpair()
    fd = 0  # as the host target passes it: standard input
    script = (
        "read -r line && echo read-something; echo x >&4 || echo no-fd-4; "
        "grep -q 'run_step.sh' /proc/$PPID/cmdline && echo parent-is-run_step; "
        "(echo forged >/proc/$PPID/fd/4) 2>/dev/null && echo reopened-4 || echo cannot-reopen-4; exit 3"
    )
    argv = [*SHELLS[shell], str(RUN_STEP), "--token", TOKEN, "--proto-fd", str(fd), "--", "sh", "-c", script]
    result = subprocess.run(argv, stdin=theirs, capture_output=True, text=True, timeout=60, check=False)
    theirs.close()
    received = b""
    while chunk := ours.recv(65536):
        received += chunk
    ours.close()
    assert result.returncode == 3, result
    assert proto(received.decode()) == ["workload-begin", "workload-end status=3", "step-end status=3"]
    assert "read-something" not in result.stdout and "no-fd-4\n" in result.stdout  # stdin: /dev/null
    assert "parent-is-run_step\ncannot-reopen-4\n" in result.stdout


# --------------------------------------------------------------------------
# (e) run_step.sh --save-dir: the module's procfs files copied before rmmod
# --------------------------------------------------------------------------


@pytest.mark.parametrize("present", [("records", "regions"), ("records", "regions", "processes"), ()])
def test_run_step_saves_the_procfs_files_before_rmmod(fake_modules, tmp_path, present):
    """Files that exist under PFH_PROC_DIR/<module>/ are copied byte for byte, absent ones skipped, and the
    copies are there when (the fake) rmmod runs; "##PFH## saved" says which."""
    env, calls = fake_modules
    proc = tmp_path / "proc" / "fake_mod"
    proc.mkdir(parents=True)
    contents = {name: bytes(range(256)) * 3 + name.encode() for name in present}
    for name, data in contents.items():
        (proc / name).write_bytes(data)
    save = tmp_path / "save"
    save.mkdir()
    (save / "records").symlink_to(tmp_path / "victim")  # planted: replaced, never written through
    bindir = Path(env["PATH"].split(":")[0])
    _fake_busybox(bindir, f'echo "$* sees: $(ls "{save}" | tr "\\n" " ")" >>"{calls}"; exit 0')
    env = {**env, "PFH_PROC_DIR": str(tmp_path / "proc")}
    ko = str(tmp_path / "fake_mod.ko")
    result = _run(
        ["/bin/sh", str(RUN_STEP), "--token", TOKEN, "--ko", ko, "--save-dir", str(save), "--", "true"], env=env
    )
    assert result.returncode == 0, result
    step = parse_step(result.stdout)
    saved = step.event(sp.Saved)
    assert saved is not None and saved.files == tuple(present) and saved.failed == ()
    assert saved.centiseconds is not None and saved.centiseconds >= 0
    for name, data in contents.items():
        assert (save / name).read_bytes() == data
    assert not (tmp_path / "victim").exists()
    rmmod_line = calls.read_text().splitlines()[-1]
    assert rmmod_line.startswith("rmmod fake_mod sees: ")
    assert sorted(rmmod_line.split("sees: ")[1].split()) == sorted(present or ["records"])


def test_run_step_save_dir_must_exist(tmp_path):
    result = _run(["/bin/sh", str(RUN_STEP), "--token", TOKEN, "--save-dir", str(tmp_path / "nope"), "--", "true"])
    assert result.returncode == 2 and f"{TOKEN} error what=usage\n" in result.stdout


@pytest.mark.parametrize("hold", [True, False])
def test_run_step_puts_the_workload_in_a_session_and_kills_what_it_leaves(fake_modules, tmp_path, hold):
    """With a module the workload runs in the script's own session (the script starts itself again under
    setsid when it is not a session leader): held, as a subshell of the script that stops itself; with
    --no-hold started directly. Either way no wrapper's faults come before its exec, it has no terminal,
    and what it leaves running is killed when it exits."""
    env, _calls = fake_modules
    script = 'read -r s </proc/self/stat; echo "stat: $s"; sleep 30 & echo "left=$!"'
    argv = ["/bin/sh", str(RUN_STEP), "--token", TOKEN, "--ko", str(tmp_path / "fake_mod.ko")]
    argv += ([] if hold else ["--no-hold"]) + ["--", "sh", "-c", script]
    result = _run(argv, env=env)
    assert result.returncode == 0, result
    stat = re.search(r"^stat: (\d+) \(sh\) \S+ (\d+) (\d+) (\d+) ", result.stdout, re.M)
    assert stat is not None, result.stdout
    pid, ppid, _pgrp, session = (int(x) for x in stat.groups())
    assert pid == parse_step(result.stdout).event(sp.Pid).pid
    assert session == ppid != pid  # the (re-started) script's session; the script is its parent
    # Gone (or a zombie, its descriptors closed) by the time the step ended: the script waits for what it
    # killed, so nothing still holds an output port (in the VM the next step opens the same ports).
    left = int(re.search(r"^left=(\d+)$", result.stdout, re.M).group(1))
    assert left not in proc.session_members(session)


# --------------------------------------------------------------------------
# (f) run_step.sh --oracle-ko: pfharness's recorder beside the module
# --------------------------------------------------------------------------


def _oracle_step(env: dict[str, str], tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = ["/bin/sh", str(RUN_STEP), "--token", TOKEN, "--ko", str(tmp_path / "fake_mod.ko"), "--param", "a=1"]
    argv += ["--oracle-ko", str(tmp_path / "pfh_oracle.ko"), "--oracle-param", "max_records=8", *extra]
    return _run([*argv, "--", "true"], env=env)


def test_run_step_loads_the_oracle_first_and_unloads_it_last(fake_modules, tmp_path):
    """The oracle is loaded before the module with the same tpid and its own parameters; the module is unloaded
    first; then the ORACLE's procfs files (not the module's) are saved, and the oracle is unloaded after."""
    env, calls = fake_modules
    procdir = tmp_path / "proc"
    for name in ("fake_mod", "pfh_oracle"):
        (procdir / name).mkdir(parents=True)
        (procdir / name / "records").write_bytes(f"records of {name}\n".encode())
    (procdir / "pfh_oracle" / "regions").write_text("regions of pfh_oracle\n")
    save = tmp_path / "save"
    save.mkdir()
    bindir = Path(env["PATH"].split(":")[0])
    _fake_busybox(bindir, f'echo "$* sees: $(ls "{save}" | tr "\\n" " ")" >>"{calls}"; exit 0')
    env = {**env, "PFH_PROC_DIR": str(procdir)}
    result = _oracle_step(env, tmp_path, "--save-dir", str(save))
    assert result.returncode == 0, result
    step = parse_step(result.stdout)
    pid = step.event(sp.Pid).pid
    assert [line.split(" sees:")[0] for line in calls.read_text().splitlines()] == [
        f"insmod {tmp_path}/pfh_oracle.ko tpid={pid} max_records=8",
        f"insmod {tmp_path}/fake_mod.ko tpid={pid} a=1",
        "rmmod fake_mod",
        "rmmod pfh_oracle",
    ]
    lines = calls.read_text().splitlines()
    assert lines[2].endswith("sees: ") and sorted(lines[3].split("sees: ")[1].split()) == ["records", "regions"]
    assert step.event(sp.Saved) == sp.Saved(
        module="pfh_oracle", files=("records", "regions"), centiseconds=step.event(sp.Saved).centiseconds
    )
    assert (save / "records").read_bytes() == b"records of pfh_oracle\n"
    names = [type(e).__name__ for e in step.events if not isinstance(e, sp.KmsgBegin | sp.KmsgEnd)]
    assert names == [
        "Pid", "OracleInsmod", "Insmod", "WorkloadBegin", "WorkloadEnd", "Rmmod", "Saved", "OracleRmmod", "StepEnd"
    ]  # fmt: skip
    assert step.status(sp.OracleInsmod) == step.status(sp.OracleRmmod) == step.status(sp.Insmod) == 0


@pytest.mark.parametrize(
    ("failing", "status", "events", "unloaded"),
    [
        ("pfh_oracle.ko", 3, ["OracleInsmod"], []),  # no oracle: the module is never loaded
        ("fake_mod.ko", 3, ["OracleInsmod", "Insmod", "OracleRmmod"], ["pfh_oracle"]),  # the oracle is unloaded
        ("pfh_oracle", 4, ["OracleInsmod", "Insmod", "WorkloadBegin", "WorkloadEnd", "Rmmod", "OracleRmmod"], None),
    ],
    ids=["oracle-insmod", "module-insmod", "oracle-rmmod"],
)
def test_run_step_oracle_failures(fake_modules, tmp_path, failing, status, events, unloaded):  # noqa: PLR0917 - pytest parameters
    env, calls = fake_modules
    bindir = Path(env["PATH"].split(":")[0])
    # Fails for the one call whose last-but-... argument names `failing` (insmod's first, rmmod's only argument).
    _fake_busybox(bindir, f'echo "$1 $2" >>"{calls}"; case $2 in *{failing}) exit 1 ;; esac; exit 0')
    result = _oracle_step(env, tmp_path)
    assert result.returncode == status, result
    step = parse_step(result.stdout)
    kinds = [type(e).__name__ for e in step.events]
    assert [k for k in kinds if k not in {"Pid", "KmsgBegin", "KmsgEnd", "StepEnd"}] == events
    assert step.complete and f"{TOKEN} kmsg-end\n" in result.stdout
    if unloaded is not None:
        assert [ln.split()[1] for ln in calls.read_text().splitlines() if ln.startswith("rmmod")] == unloaded


@pytest.mark.parametrize(
    "args",
    [["--oracle-ko", "o.ko"], ["--ko", "m.ko", "--oracle-param", "x=*"], ["--ko", "m.ko", "--oracle-ko"]],
    ids=["oracle-without-ko", "oracle-param-glob", "oracle-ko-last"],
)
def test_run_step_oracle_usage_errors(args, tmp_path):
    result = _run(["/bin/sh", str(RUN_STEP), "--token", TOKEN, *args, "--", "true"], cwd=tmp_path)
    assert result.returncode == 2 and result.stdout.startswith(f"{TOKEN} error what=usage\n"), result
