"""The run store: a run directory per result (results/run_dir.py has the layout), written once.

`pfharness run` keeps its one run under out/runs/<stamp>-<module>/ (the target writes straight into
its guest/); the study keeps each of its runs under <out>/runs/<workload>-<module>/, moving in what
the target wrote into the study's one save directory."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SetupError
from ..results import run_layout

if TYPE_CHECKING:
    from ..results.model import TraceResult


def new_run(out_dir: Path, module_name: str) -> Path:
    """A fresh out_dir/runs/<stamp>-<module>/ with its guest/ (where the target writes)."""
    try:
        return run_layout.new_run_dir(out_dir, module_name)
    except OSError as e:
        raise SetupError(f"cannot create a run directory under {out_dir}/runs ({e.strerror}): pass --out DIR") from None


def guest_dir(directory: Path) -> Path:
    """The part of a run directory the target writes."""
    return directory / run_layout.GUEST_SUBDIR


def keep(result: TraceResult, saved_from: Path | None = None) -> TraceResult:
    """Write the result's run directory: its guest/ (moved from `saved_from` when the target wrote
    elsewhere; anything already there is replaced), records.csv, regions.csv, processes.csv and
    run.json. Returns the result."""
    from ..results import run_dir, text  # noqa: PLC0415 - numpy and pyarrow: loaded while the guest works

    assert result.run_dir, "a result is kept in the run directory its step named"
    directory = Path(result.run_dir)
    guest = guest_dir(directory)
    if saved_from is not None and saved_from.resolve() != guest.resolve():
        shutil.rmtree(directory, ignore_errors=True)
        guest.mkdir(parents=True)
        for f in saved_from.iterdir():
            shutil.move(str(f), guest / f.name)
    if result.saved is not None:
        run_dir.write_csvs(directory, result.saved)
    run_dir.write_run_json(directory, text.json_object(result))
    return result
