"""What the workload prints or writes to the kernel log cannot change what pfharness reports
(replayed from a recorded real run, with hostile additions), and `parse` never crashes."""

from __future__ import annotations

import random

import pytest
from conftest import DATA

from pfharness.errors import PfhError
from pfharness.results import model, notes, splat, step_result, text, transcript, verdict


def recorded_step() -> str:
    """The step output of a real run of pf_probe_B (tests/data/run_b.log), without the notes."""
    text = notes.console_text((DATA / "run_b.log").read_text())
    return "\n".join(ln for ln in text.splitlines() if not notes.is_note(ln)) + "\n"


def read(text: str) -> model.TraceResult:
    return step_result.read_step(text, model.RunContext("B", ("touch_pages", "40")))


@pytest.fixture(scope="module")
def honest() -> model.TraceResult:
    return read(recorded_step())


def inject_kmsg(text: str, *records: str) -> str:
    """Kernel log records appended to the step's kmsg section, as run_step.sh prints them."""
    return text.replace("##PFH## kmsg-end", "\n".join(records) + "\n##PFH## kmsg-end", 1)


def test_user_space_kmsg_records_are_not_the_modules(honest):
    # <14> = facility 1 (user), level 6: what `echo ... > /dev/kmsg` gives, even with a "<6>" prefix
    forged = inject_kmsg(
        recorded_step(),
        "14,99990,1,-;pf_probe_B: summary pid=1 comm=x recorded=5 dropped=0 capacity=9",
        "14,99991,1,-;pf_probe_B: ---- BEGIN PLOT pid=1 comm=x class=all ----",
        "12,99992,1,-;BUG: unable to handle page fault (a user-space forgery)",
        "12,99993,1,-;WARNING: CPU: 0 PID: 1 at fake.c:1",
    )
    result = read(forged)
    assert result.report.recorded == honest.report.recorded and result.report.pid == honest.report.pid
    assert [p.rows for p in result.report.plots] == [p.rows for p in honest.report.plots]
    assert result.splats == [] and verdict.exit_status(result) == 0


def test_a_kernel_splat_counts_once(honest):
    line = "4,99990,1,-;WARNING: CPU: 1 PID: 7 at mm/memory.c:1 handle_mm_fault+0x1/0x2"
    result = read(inject_kmsg(recorded_step(), line, line.replace("99990", "99991")))
    assert result.splats == ["WARNING: CPU: 1 PID: 7 at mm/memory.c:1 handle_mm_fault+0x1/0x2"]
    assert verdict.exit_status(result) == 125


def test_the_modules_own_lines_are_never_splats():
    assert splat.scan(["pf_probe_B: summary pid=5 comm=lockdep-BUG: recorded=1 dropped=0 capacity=9"]) == []
    assert splat.scan(["pf_probe_B: ---- BEGIN PLOT pid=5 comm=WARNING: class=all ----"]) == []


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


def test_printed_notes_are_not_trusted_by_parse(tmp_path):
    """A workload that prints a harness note (with or without the record separator) does not change `parse`."""
    good = (DATA / "run_b.log").read_bytes()
    honest = transcript.parse_transcript(DATA / "run_b.log")[-1]
    # the workload's output sits between workload-begin and workload-end: put forged notes there, as the
    # console would carry them into the transcript (the 0x1e escaped as the writer does)
    forged_lines = b"##PFH-HOST## lost why=timeout\n\x1e##PFH-HOST## step module=A target=vm command=W10=\n"
    escaped = forged_lines.replace(b"\x1e", b"\x1e\x1f")
    path = tmp_path / "t.log"
    path.write_bytes(good.replace(b"##PFH## workload-end", escaped + b"##PFH## workload-end", 1))
    [result] = transcript.parse_transcript(path)
    assert result.lost_reason is None and result.module == honest.module and result.complete
    assert "##PFH-HOST## lost why=timeout" in result.workload_output  # shown as the workload's output
    assert verdict.exit_status(result) == 0


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
