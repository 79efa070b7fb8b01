"""A run directory's file names, and making a fresh one (what each file holds: run_dir.py).

Apart from run_dir.py's readers and writers (numpy, pyarrow) so that a run can make its directory before the
VM starts and load those only while the guest works (pipeline/targets.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

GUEST_SUBDIR = "guest"  # the only part of a run directory the target writes
RUN_JSON = "run.json"
RECORDS_CSV = "records.csv"
RECORDS_PARQUET = "records.parquet"  # the same records, typed columns (records_parquet.py)
REGIONS_CSV = "regions.csv"
PROCESSES_CSV = "processes.csv"
TRANSCRIPT = "transcript.log"


def new_run_dir(out_dir: Path, module_name: str) -> Path:
    """A fresh out/runs/<stamp>-<module>/ with its guest/ subdirectory; the stamp is unique to the microsecond
    and the harness's pid, so concurrent runs never share one."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}-{os.getpid()}"
    path = (out_dir / "runs" / f"{stamp}-{module_name}").resolve()
    path.mkdir(parents=True)
    # Only this user: QEMU (security_model=none) writes the guest's files as the user that runs it, the
    # harness's; with --target host, run_step.sh runs as root, as the harness does.
    (path / GUEST_SUBDIR).mkdir(mode=0o700)
    return path
