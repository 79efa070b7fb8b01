"""The sandbox a brought Makefile runs in, proven with hostile Makefiles (real bwrap, no kernel needed):
writes outside the build directory, the network, a loop, forked children, a flood of output. Each is
contained, reported, and nothing outside the build directory changes."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import uuid
from pathlib import Path

import pytest

from pfharness import assets, proc
from pfharness.errors import SetupError
from pfharness.kmod import sandbox


def _bwrap_works() -> bool:
    bwrap = shutil.which("bwrap")
    return bwrap is not None and proc.run([bwrap, "--ro-bind", "/", "/", "--unshare-all", "true"]).returncode == 0


pytestmark = pytest.mark.skipif(not _bwrap_works(), reason="bubblewrap cannot make namespaces here")


def _make(tmp_path: Path, recipe: str, limits: sandbox.Limits | None = None) -> sandbox.SandboxRun:
    build = tmp_path / "build"
    build.mkdir(exist_ok=True)
    lines = "".join(f"\t{ln}\n" for ln in recipe.strip().splitlines())
    (build / "Makefile").write_text(f"all:\n{lines}")
    return sandbox.run(
        sandbox.bwrap_argv(["make", "--no-print-directory", "--silent"], build), limits or sandbox.Limits()
    )


def _processes_with(token: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if token.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_writes_outside_the_build_directory_fail_and_change_nothing(tmp_path):
    token = uuid.uuid4().hex
    home = Path.home() / f"pfh-{token}"
    elsewhere = tmp_path / f"beside-{token}"
    ran = _make(
        tmp_path,
        f"""
        -touch /tmp/{token}
        -touch {home}
        -echo x > /etc/pfh-{token}
        -touch {elsewhere}
        touch inside-{token}
        """,
    )
    assert ran.returncode == 0, ran.log
    # /root and /etc are read-only; /tmp (where this test's build directory is) is a tmpfs of the sandbox's own,
    # so the writes to /tmp and beside the build directory land there and vanish with it
    assert ran.log.count("Read-only file system") == 2, ran.log
    assert not Path(f"/tmp/{token}").exists() and not home.exists() and not Path(f"/etc/pfh-{token}").exists()
    assert not elsewhere.exists()
    assert (tmp_path / "build" / f"inside-{token}").is_file()


def test_there_is_no_network_not_even_the_hosts_loopback(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3); print('CONNECTED')"
        ran = _make(tmp_path, f'-python3 -c "{probe}"\n-getent hosts deb.debian.org && echo RESOLVED')
        with pytest.raises(TimeoutError):
            listener.accept()
    assert "CONNECTED" not in ran.log and "RESOLVED" not in ran.log, ran.log
    assert "Connection refused" in ran.log, ran.log


def test_a_loop_with_forked_children_is_killed_at_the_time_limit(tmp_path):
    token = f"{os.getpid()}.{uuid.uuid4().int % 1000}"
    ran = _make(tmp_path, f"for i in 1 2 3 4 5 6; do (sleep {token} &); done; while :; do :; done", sandbox.Limits(1.0))
    assert ran.timed_out and not ran.output_cut and ran.returncode == -9
    assert 1.0 <= ran.seconds < 10, ran.seconds
    assert "time limit" in ran.limit_note and "[pfharness: killed after 1 s]" in ran.log
    assert _processes_with(f"sleep\0{token}") == []


def test_a_flood_of_output_is_cut_and_stopped(tmp_path):
    ran = _make(tmp_path, "yes 0123456789abcdef | head -c 100000000", sandbox.Limits(60.0, 1 << 20))
    assert ran.output_cut and not ran.timed_out and ran.seconds < 30
    assert len(ran.log) < (1 << 20) + 200 and ran.log.endswith(f"[pfharness: output cut at {1 << 20} bytes]\n")
    assert "output limit" in ran.limit_note


def test_a_quiet_build_runs_to_its_end(tmp_path):
    ran = _make(tmp_path, "echo $(HOME) $$PWD", sandbox.Limits(30.0))
    build = str((tmp_path / "build").resolve())
    assert ran.returncode == 0 and not ran.limit_note
    assert f"{build} {build}" in ran.log  # HOME and PWD are the build directory, so $(PWD) Makefiles work


def test_no_capability_is_left_even_for_root(tmp_path):
    ran = _make(tmp_path, "grep CapEff /proc/self/status\n-insmod /nonexistent.ko")
    assert "CapEff:\t0000000000000000" in ran.log, ran.log


def test_a_sandbox_bwrap_cannot_make_is_a_setup_error_not_a_build_failure():
    argv = sandbox.bwrap_argv(["true"], Path("/nonexistent-pfh-build-dir"))
    with pytest.raises(SetupError, match="bubblewrap cannot make the build sandbox here"):
        sandbox.run(argv)


def test_a_build_root_is_read_only_too_and_builds_outside_tmp(tmp_path):
    root = assets.cache_dir() / "buildroots" / "sid"
    if not (root / "usr" / "bin" / "make").is_file():
        pytest.skip("no sid build root in the cache (made when first building for 7.2)")
    build = assets.cache_dir() / f"test-sandbox-{uuid.uuid4().hex}"  # not under /tmp: its parents are made
    build.mkdir(parents=True)
    try:
        (build / "Makefile").write_text("all:\n\t-touch /etc/pfh-x /usr/pfh-x\n\ttouch inside\n")
        ran = sandbox.run(sandbox.bwrap_argv(["make", "--silent"], build, root=root))
        assert ran.returncode == 0, ran.log
        assert ran.log.count("Read-only file system") == 2, ran.log
        assert not (root / "etc" / "pfh-x").exists() and (build / "inside").is_file()
    finally:
        shutil.rmtree(build)
        with contextlib.suppress(OSError):
            (root / build.relative_to("/")).rmdir()  # the mount point bwrap made in the build root
