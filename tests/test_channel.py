"""The harness's side of a step's channels (pfharness/channel.py), fed by hand: only lines with the
step's token count, the output is passed on live and byte-exact, its end marker never shown."""

from __future__ import annotations

import io
import random

from pfharness.channel import StepChannel
from pfharness.results import notes, transcript
from pfharness.results.step_protocol import end_marker, new_token


def channel(sink=lambda fd, data: None):
    buffer = io.BytesIO()
    token = new_token()
    t = notes.Transcript(buffer)
    t.note(notes.step_note("B", "vm", ["x"], token))
    return StepChannel(token, t, sink), buffer


def test_only_lines_with_the_token_count_and_partial_lines_wait():
    ch, _ = channel()
    t = ch.token
    ch.proto(f"{t} pid pid=5 hold=1\n{'0' * 32} step-end status=0\nstep-end status=0\n{t} workload-".encode())
    assert not ch.complete
    ch.proto(f"end status=3\n{t} step-end status=0\n".encode())
    result = ch.finish()
    assert result.complete and result.rejected == 2
    assert result.data.proto_lines == ("pid pid=5 hold=1", "workload-end status=3", "step-end status=0")


def test_output_goes_on_live_byte_exact_and_the_end_marker_is_never_shown(tmp_path):
    shown: list[tuple[int, bytes]] = []
    ch, buffer = channel(lambda fd, data: shown.append((fd, data)))
    marker = end_marker(ch.token)
    payload = bytes(range(256)) * 50 + b"\x1epfh-end-not-the-token\x1e" + marker[:-1] + b"!"
    stream = payload + marker
    rng = random.Random(7)
    i = 0
    while i < len(stream):  # arbitrary chunking, the marker split across chunks
        n = rng.randrange(1, 700)
        ch.output(1, stream[i : i + n])
        i += n
    ch.output(2, b"err" + marker[:5])
    assert b"".join(d for fd, d in shown if fd == 1) == payload  # everything but the marker, already shown
    assert not ch.wait_outputs(0.01)  # stderr's marker has not come yet
    ch.output(2, marker[5:])
    assert ch.wait_outputs(0.01)
    ch.proto(f"{ch.token} step-end status=0\n".encode())
    result = ch.finish()
    assert result.outputs_ended and result.data.output == (payload + b"err").decode(errors="replace")
    assert b"".join(d for fd, d in shown if fd == 2) == b"err"
    # the transcript gives back the same step
    ch.output(1, b"after the end: dropped")
    path = tmp_path / "t.log"
    path.write_bytes(buffer.getvalue())
    [parsed] = transcript.parse_transcript(path)
    assert parsed.workload_output == result.data.output and parsed.complete
