"""Record the transcripts the fast tests replay (needs QEMU; about a minute).

    .venv/bin/python tests/data/regenerate.py

Writes, in this folder:
  run_b.log, run_c.log, run_a.log  transcripts of real `pfharness run`-style steps in one boot
                                   (workload: tests/programs/touch_pages 40)
  run_b_records.log, run_c_records.log  the same with dump_records=1 (every record printed)
  dmesg_b_timestamps.txt           `dmesg` in the guest after the B run (printk timestamps on)
  dmesg_b_no_timestamps.txt        `dmesg -t` (timestamps off)
  panic.log                        a run whose workload crashes the guest (sysrq c)
and derives from them (deterministically):
  dmesg_b_interleaved.txt          the timestamped dmesg with other kernel messages between plot lines
  run_b_panic_mid_plot.log         run_b.log cut in the middle of the plot, followed by panic.log's panic
  run_b_truncated.log              run_b.log cut in the middle of the plot
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from pfharness import proc, step  # noqa: E402
from pfharness.errors import VmLost  # noqa: E402
from pfharness.pipeline.events import Events  # noqa: E402
from pfharness.pipeline.steps import Step  # noqa: E402
from pfharness.pipeline.targets import VmSpec  # noqa: E402
from pfharness.values import LETTERS, Accelerator, Module  # noqa: E402

SPEC = VmSpec(accel=Accelerator.tcg)
EVERY_MODULE = [Step(Module(letter), ("true",)) for letter in LETTERS]  # the guest's log sized for A


def booted(prepared, transcript: Path):
    """One boot of the default kernel under TCG (the pipeline's VM target, opened directly: the steps
    below are traced one by one, with the console used between them)."""
    return SPEC.open(prepared, transcript=transcript, save_dir=None, steps=EVERY_MODULE, events=Events())


def _tell(vm) -> int:
    """How many bytes the session's transcript holds so far."""
    vm.console.transcript.flush()
    return vm.console.transcript_path.stat().st_size


def record() -> None:
    work = Path(tempfile.mkdtemp(prefix="pfh-data-"))
    prepared = SPEC.prepare(None, work / "modules")
    program = work / "touch_pages"
    proc.run(["gcc", "-O1", "-pthread", "-o", program, HERE.parent / "programs" / "touch_pages.c"])
    transcripts = {}
    with booted(prepared, work / "session.log") as opened:
        vm = opened.target
        for letter, params, name in (("B", (), "run_b"), ("C", (), "run_c"), ("A", (), "run_a"),
                                     ("B", ("dump_records=1",), "run_b_records"), ("C", ("dump_records=1",), "run_c_records")):
            path = work / f"{name}.log"
            request = step.TraceRequest(letter, prepared.modules[letter], (str(program), "40"), params=params)
            start = _tell(vm)
            vm.console.note(f"boot release={prepared.release} accel={vm.accelerator}")
            step.trace(vm, request)
            transcripts[name] = (start, _tell(vm), path)
            if name == "run_b":
                for name, argv in (("dmesg_b_timestamps.txt", ["dmesg"]), ("dmesg_b_no_timestamps.txt", ["dmesg", "-t"])):
                    out = vm.run(argv, stage="dmesg", timeout=60).output
                    lines = [ln for ln in out.splitlines() if "##PFH##" not in ln]
                    (HERE / name).write_text("\n".join(lines) + "\n")
    session = (work / "session.log").read_bytes()
    for start, end, path in transcripts.values():
        (HERE / path.name).write_bytes(session[start:end])

    panic_log = HERE / "panic.log"
    panic_log.unlink(missing_ok=True)
    try:
        with booted(prepared, panic_log) as opened:
            request = step.TraceRequest("B", prepared.modules["B"], ("sh", "-c", "echo c > /proc/sysrq-trigger"))
            step.trace(opened.target, request)
    except VmLost:
        pass
    shutil.rmtree(work)


def derive() -> None:
    dmesg = (HERE / "dmesg_b_timestamps.txt").read_text().splitlines()
    others = [ln for ln in dmesg if "pf_probe" not in ln][:40]
    mixed, k = [], 0
    for i, line in enumerate(dmesg):
        mixed.append(line)
        if "pf_probe_B:" in line and i % 4 == 0 and k < len(others):
            mixed.append(others[k])
            k += 1
    (HERE / "dmesg_b_interleaved.txt").write_text("\n".join(mixed) + "\n")

    run_b = (HERE / "run_b.log").read_bytes()
    cut = [m.end() for m in re.finditer(rb"pf_probe_B:  +\S* *\|[^\n]*\n", run_b)][12]
    (HERE / "run_b_truncated.log").write_bytes(run_b[:cut])
    panic = (HERE / "panic.log").read_bytes()
    crash = panic[panic.index(b"sysrq: Trigger a crash"):]
    (HERE / "run_b_panic_mid_plot.log").write_bytes(run_b[:cut] + b"[   12.345678] " + crash)


if __name__ == "__main__":
    if "--derive-only" not in sys.argv:
        record()
    derive()
