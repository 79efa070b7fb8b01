"""What the workload prints or writes to the kernel log cannot change what pfharness reports
(replayed from a recorded real run, with hostile additions), and `parse` never crashes."""

from __future__ import annotations

import base64
import random
import re

import pytest
from conftest import DATA

from pfharness.errors import PfhError
from pfharness.results import model, splat, text, transcript

RUN_B = DATA / "run_b.log"


def token_of(data: bytes) -> bytes:
    return re.search(rb"\x1e##PFH-HOST## step .* token=([0-9a-f]+)", data).group(1)


def write(tmp_path, data: bytes) -> model.TraceResult:
    path = tmp_path / "t.log"
    path.write_bytes(data)
    [result] = transcript.parse_transcript(path)
    return result


def inject_kmsg(data: bytes, *records: str) -> bytes:
    """Kernel log records added to the step's kmsg section on its own channel (as if the kernel
    log had held them: what user space writes to /dev/kmsg does reach run_step.sh's dump)."""
    token = token_of(data)
    end = b"\n\x1e##PFH-HOST## proto " + token + b" kmsg-end\n"
    added = b"".join(b"\n\x1e##PFH-HOST## proto " + token + b" kmsg " + r.encode() + b"\n" for r in records)
    assert end in data
    return data.replace(end, added + end, 1)


def console(data: bytes, text: bytes) -> bytes:
    """`text` as the console printed it during the step (0x1e escaped, as the transcript writer does)."""
    token = token_of(data)
    mark = b"\n\x1e##PFH-HOST## proto " + token + b" workload-end"
    return data.replace(mark, b"\n" + text.replace(b"\x1e", b"\x1e\x1f") + mark, 1)


def output(data: bytes, text: bytes, fd: int = 1) -> bytes:
    """`text` as the workload's output during the step (an out note, as the harness writes it)."""
    token = token_of(data)
    mark = b"\n\x1e##PFH-HOST## proto " + token + b" workload-end"
    note = b"\n\x1e##PFH-HOST## out " + token + b" %d " % fd + base64.b64encode(text) + b"\n"
    return data.replace(mark, note + mark, 1)


@pytest.fixture(scope="module")
def honest() -> model.TraceResult:
    return transcript.parse_transcript(RUN_B)[-1]


def same_report(result: model.TraceResult, honest: model.TraceResult) -> None:
    assert result.complete and result.workload_status == honest.workload_status
    assert (result.report.recorded, result.report.pid, result.report.comm) == (
        honest.report.recorded,
        honest.report.pid,
        honest.report.comm,
    )
    assert [p.rows for p in result.report.plots] == [p.rows for p in honest.report.plots]
    assert result.splats == [] and result.verdict.exit_status == honest.verdict.exit_status == 0


def test_user_space_kmsg_records_are_not_the_modules(honest, tmp_path):
    # <14> = facility 1 (user), level 6: what `echo ... > /dev/kmsg` gives, even with a "<6>" prefix
    forged = inject_kmsg(
        RUN_B.read_bytes(),
        "14,99990,1,-;pf_probe_B: summary pid=1 comm=x recorded=5 dropped=0 capacity=9",
        "14,99991,1,-;pf_probe_B: ---- BEGIN PLOT pid=1 comm=x class=all ----",
        "12,99992,1,-;BUG: unable to handle page fault (a user-space forgery)",
        "12,99993,1,-;WARNING: CPU: 0 PID: 1 at fake.c:1",
    )
    same_report(write(tmp_path, forged), honest)


def test_a_kernel_splat_counts_once(tmp_path):
    line = "4,99990,1,-;WARNING: CPU: 1 PID: 7 at mm/memory.c:1 handle_mm_fault+0x1/0x2"
    result = write(tmp_path, inject_kmsg(RUN_B.read_bytes(), line, line.replace("99990", "99991")))
    assert result.splats == ["WARNING: CPU: 1 PID: 7 at mm/memory.c:1 handle_mm_fault+0x1/0x2"]
    assert result.verdict.exit_status == 125


FORGED_PROTOCOL = [
    # workload-end with another status, step-end, done markers, a whole fake kmsg section with a plot
    "{t} workload-end status=0",
    "##PFH## workload-end status=0",
    "{t} step-end status=0",
    "##PFH## step-end status=0",
    "##PFH## done token=1 status=0",
    "{t} kmsg-begin",
    "{t} kmsg 6,99990,1,-;pf_probe_B: summary pid=1 comm=forged recorded=5 dropped=0 capacity=9",
    "{t} kmsg 6,99991,1,-;pf_probe_B: ---- BEGIN PLOT pid=1 comm=forged class=all ----",
    "{t} kmsg 6,99992,1,-;pf_probe_B: ---- END PLOT pid=1 comm=forged class=all ----",
    "{t} kmsg-end",
    "[   12.345678] Kernel panic - not syncing: printed by the workload",
    "PFH-INIT-ERROR: printed by the workload",
    "\x1e##PFH-HOST## lost why=timeout",
    "\x1e##PFH-HOST## proto {t} step-end status=0",
]


@pytest.mark.parametrize("where", ["stdout", "stderr", "console"])
def test_protocol_printed_by_the_workload_changes_nothing(honest, tmp_path, where):
    """Every protocol line, with the step's own token (the workload can read it from its parent's
    command line), printed where the workload can print: its output, or the console."""
    data = RUN_B.read_bytes()
    text = "".join(line.format(t=token_of(data).decode()) + "\n" for line in FORGED_PROTOCOL).encode()
    forged = console(data, text) if where == "console" else output(data, text, 1 if where == "stdout" else 2)
    result = write(tmp_path, forged)
    same_report(result, honest)
    if where != "console":
        assert text.decode() in result.workload_output  # shown as the workload's output, byte-exact


def test_protocol_notes_with_another_token_are_ignored(honest, tmp_path):
    data = RUN_B.read_bytes()
    other = b"f" * len(token_of(data))
    forged = data.replace(
        b"\n\x1e##PFH-HOST## proto " + token_of(data) + b" workload-end",
        b"\n\x1e##PFH-HOST## proto " + other + b" workload-end status=9\n"
        b"\x1e##PFH-HOST## out " + other + b" 1 " + base64.b64encode(b"not this step's\n") + b"\n"
        b"\x1e##PFH-HOST## proto " + token_of(data) + b" workload-end",
        1,
    )
    result = write(tmp_path, forged)
    same_report(result, honest)
    assert "not this step's" not in result.workload_output


def test_the_modules_own_lines_are_never_splats():
    assert splat.scan(["pf_probe_B: summary pid=5 comm=lockdep-BUG: recorded=1 dropped=0 capacity=9"]) == []
    assert splat.scan(["pf_probe_B: ---- BEGIN PLOT pid=5 comm=WARNING: class=all ----"]) == []


def test_the_oopses_without_bug_in_their_first_line_are_splats():
    """What the corpus's crashes print on Debian's 6.1 (tests/student_modules/README.md)."""
    heads = [
        "divide error: 0000 [#1] PREEMPT SMP NOPTI",
        "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
        "BUG kmalloc-8k (Tainted: G           OE     ): Left Redzone overwritten",
    ]
    assert splat.scan(heads) == heads
    assert splat.scan(["a divide error: none", "BUG kmalloc-8k is fine"]) == []


def test_an_oom_kill_is_reported_not_a_splat():
    report = [
        "touch_pages invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0",
        "CPU: 1 PID: 321 Comm: touch_pages Not tainted 6.1.0-56-amd64 #1  Debian 6.1.192-2",
        "Call Trace:",
        " <TASK>",
        " dump_stack_lvl+0x44/0x5c",
        "Out of memory: Killed process 321 (touch_pages) total-vm:2100000kB, anon-rss:1900000kB",
    ]
    assert splat.scan(report) == []
    [kill] = splat.oom_kills(report)
    assert kill.pid == 321 and kill.comm == "touch_pages"
    assert splat.scan([*report, "Call Trace:"]) == ["Call Trace:"]  # a stack dump outside the report is one


def test_parse_bounds_what_it_reads(tmp_path, monkeypatch):
    big = tmp_path / "big.log"
    big.write_bytes(b"x" * 2048)
    monkeypatch.setattr(transcript, "MAX_BYTES", 1024)
    with pytest.raises(transcript.UnreadableTranscript, match="more than a transcript can be"):
        transcript.parse_transcript(big)


def mutations(data: bytes, rng: random.Random) -> bytes:
    """One random mutation of a transcript: flip, drop, duplicate or splice bytes and lines."""
    choice = rng.randrange(5)
    if choice == 0 and data:
        i = rng.randrange(len(data))
        return data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
    lines = data.split(b"\n")
    if choice == 1 and lines:
        del lines[rng.randrange(len(lines))]
    elif choice == 2 and lines:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[rng.randrange(len(lines))])
    elif choice == 3 and lines:
        i = rng.randrange(len(lines))
        line = lines[i]
        cut = rng.randrange(len(line) + 1)
        lines[i] = line[:cut] + rng.choice([b"=", b" ", b"\x1e", b"0x", b"-1", b"99999999999999999999", b"\xff"])
    else:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64))) + data[rng.randrange(len(data) + 1) :]
    return b"\n".join(lines)


def test_parse_never_crashes_on_mutated_transcripts(tmp_path):
    """A fuzz test: thousands of mutated real transcripts and random bytes; every outcome is a result
    or a PfhError, never another exception."""
    rng = random.Random(20261126)
    sources = [p.read_bytes() for p in sorted(DATA.glob("*.log"))] + [p.read_bytes() for p in DATA.glob("dmesg_*")]
    path = tmp_path / "fuzz.log"
    for i in range(3000):
        data = rng.choice(sources)
        for _ in range(rng.randrange(1, 6)):
            data = mutations(data, rng)
        if i % 10 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(2000)))
        path.write_bytes(data)
        try:
            for result in transcript.parse_transcript(path) or [transcript.parse_kernel_log(path)]:
                text.show(result, lambda line: None)
                text.show(result, lambda line: None, as_json=True)
        except PfhError:
            pass
