"""The reconciliation line (results/reconcile.py): read from a recorded B transcript (tests/data/run_b.log,
touch_pages: 98 recorded, 148 faults before the load) with the module's "reconcile" line added as B prints it."""

from __future__ import annotations

import json
from pathlib import Path

from pfharness.results import output_format, text, transcript
from pfharness.results.module_output import Reconcile

DATA = Path(__file__).parent / "data"


def with_reconcile_line(tmp_path: Path, **values: int) -> Path:
    """run_b.log with a "reconcile" kernel log line after the "faults" line, in the module's format."""
    shape = output_format.LINES["reconcile"]
    line = shape.template.format(**values)
    out = []
    for ln in (DATA / "run_b.log").read_text().split("\n"):  # not splitlines(): the notes start with \x1e
        out.append(ln)
        if "pf_probe_B: faults completed=" in ln:
            prefix = ln.split("kmsg ", 1)[0]
            out.append(f"{prefix}kmsg 6,383,11035570,-;pf_probe_B: {line}")
    path = tmp_path / "run.log"
    path.write_text("\n".join(out))
    return path


def result_of(path: Path):
    [result] = transcript.parse_transcript(path)
    return result


def test_kernel_count_equal_to_recorded_plus_pre_arm(tmp_path):
    v = {"tgid": 124, "exited": 1, "kernel_faults": 98 + 148, "seen_at_exit": 98, "untraced_children": 0}
    result = result_of(with_reconcile_line(tmp_path, **v))
    assert result.report.reconcile == Reconcile(124, True, 246, 98, 0)
    rec = result.reconciliation()
    assert (rec.recorded, rec.pre_arm, rec.after_count, rec.unexplained) == (98, 148, 0, 0)
    lines = text.summary_lines(result)
    assert (
        "reconcile:       kernel counted 246 faults for pid 124, recorded 98 "
        "(+ 148 before the module was armed: pre_exec_faults): equal"
    ) in lines
    assert not any(ln.startswith("untraced:") for ln in lines)
    data = json.loads(json.dumps(text.json_object(result)))
    assert data["reconcile"]["kernel_faults"] == 246 and data["reconcile"]["unexplained"] == 0


def test_faults_after_the_count_a_child_and_a_gap_are_each_said(tmp_path):
    # 98 seen, 90 of them when the count was taken: 8 after it; the kernel counted 5 more than explained.
    v = {"tgid": 124, "exited": 1, "kernel_faults": 90 + 148 + 5, "seen_at_exit": 90, "untraced_children": 1}
    lines = text.summary_lines(result_of(with_reconcile_line(tmp_path, **v)))
    [line] = [ln for ln in lines if ln.startswith("reconcile:")]
    assert "- 8 recorded after the kernel's count was taken, at exit" in line and line.endswith("+5 not explained")
    assert "untraced:        1 child process was created and not traced: use --follow" in lines


def test_a_process_still_running_has_no_count(tmp_path):
    v = {"tgid": 124, "exited": 0, "kernel_faults": 0, "seen_at_exit": 0, "untraced_children": 3}
    lines = text.summary_lines(result_of(with_reconcile_line(tmp_path, **v)))
    assert "reconcile:       pid 124 had not exited when the module was unloaded: no kernel count" in lines
    assert "untraced:        3 child processes were created and not traced: use --follow" in lines


def test_an_older_transcript_has_no_reconcile_line():
    result = result_of(DATA / "run_b.log")
    assert result.reconciliation() is None and result.to_json()["reconcile"] is None
    assert not any(ln.startswith(("reconcile:", "untraced:")) for ln in text.summary_lines(result))


def with_tree_line(tmp_path: Path, **values: int) -> Path:
    """run_b.log with a follow=1 "reconcile_tree" line in the module's format."""
    line = output_format.LINES["reconcile_tree"].template.format(**values)
    path = with_reconcile_line(tmp_path, tgid=0, exited=0, kernel_faults=0, seen_at_exit=0, untraced_children=0)
    text_ = path.read_text().replace(
        "reconcile tgid=0 exited=0 kernel_faults=0 seen_at_exit=0 untraced_children=0", line
    )
    path.write_text(text_)
    return path


def test_follow_sums_the_processes_that_exited_and_says_which_still_ran(tmp_path):
    v = {"processes": 5, "exited": 3, "root_exited": 1, "kernel_faults": 98 + 148 - 4, "seen_at_exit": 98}
    result = result_of(with_tree_line(tmp_path, **v, remote_untraced=4))
    rec = result.reconciliation()
    assert (rec.traced, rec.processes, rec.pre_arm, rec.remote, rec.unexplained) == (5, 3, 148, 4, 0)
    lines = text.summary_lines(result)
    assert (
        "reconcile:       kernel counted 242 faults for the 3 processes that exited, recorded 98 "
        "(+ 148 before the module was armed: pre_exec_faults; - 4 by untraced processes in its memory, "
        "counted in theirs): equal"
    ) in lines
    assert "                 2 of 5 traced processes still ran at unload: not counted" in lines
    assert json.loads(json.dumps(text.json_object(result)))["reconcile"]["traced"] == 5


def test_follow_without_the_first_process_adds_no_pre_arm_faults(tmp_path):
    v = {"processes": 2, "exited": 1, "root_exited": 0, "kernel_faults": 40, "seen_at_exit": 38}
    rec = result_of(with_tree_line(tmp_path, **v, remote_untraced=0)).reconciliation()
    assert (rec.pre_arm, rec.unexplained) == (0, 2)
    v = {"processes": 2, "exited": 0, "root_exited": 0, "kernel_faults": 0, "seen_at_exit": 0}
    lines = text.summary_lines(result_of(with_tree_line(tmp_path, **v, remote_untraced=0)))
    assert (
        "reconcile:       none of the 2 traced processes had exited when the module was unloaded: no kernel count"
        in lines
    )
