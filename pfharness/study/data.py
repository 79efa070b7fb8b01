"""figures.json: what a study measured, per run (the figures, the facts, the process table) and across
runs (the comparisons the findings make), each number computed from the saved records."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..results.model import process_table_json
from . import experiments, facts
from .model import Study, StudyRun

#: Fixed quantities the findings name (the test finds them here like every other number).
CONSTANTS = {
    "page_kib": 4,
    "huge_page_mib": 2,
    "huge_page_pages": 512,
    "fault_around_kib": 64,  # the kernel's default fault_around_bytes (mm/memory.c), 64 KiB
    "window_pct": 10,  # the first and the last 10 % of a run's span
    "sysbench_block_kib": 1,  # sysbench memory's default --memory-block-size (the sysbench-memory workload)
}


def run_entry(run: StudyRun) -> dict[str, Any]:
    saved = run.result.saved
    return {
        "workload": run.workload.key,
        "title": run.workload.title,
        "kind": run.workload.kind,
        "tag": run.workload.tag,
        "trend": run.workload.trend,
        "module": run.module,
        "command": list(run.workload.command),
        "workload_status": run.result.workload_status,
        "seconds": round(run.seconds, 2),
        "figures": run.figures.as_dict(),
        "facts": facts.compute(saved).as_dict() if saved is not None else None,
        "processes": process_table_json(run.result.report),
    }


def build(study: Study) -> dict[str, Any]:
    """figures.json's contents for `study`."""
    from .findings import derive, paragraphs  # noqa: PLC0415 - findings reads this module's output

    data: dict[str, Any] = {
        "date": study.date,
        "pfharness": __version__,
        "kernel_release": study.kernel_release,
        "accelerator": study.accelerator,
        "smp": study.smp,
        "transcript": study.transcript,
        "memory": study.memory,
        "constants": CONSTANTS,
        "runs": [run_entry(r) for r in study.runs],
    }
    data["derived"] = derive(data)
    data["derived"]["quoted"] = {**paragraphs(data)[1], **experiments.rows(data)[1]}
    return data
