"""A run's directory, out/runs/<stamp>-<module>/: the files the module's procfs gave back, and what the host
writes from them (run.json, records.csv, records.parquet, regions.csv, processes.csv).

Layout:
    run.json        the --json object of the run
    records.csv     time_ns,address,page,pid,region,kind,access,major,tid,exec,huge,ip,ip_mode,service_ns
                    (one row per fault, buffer order; from tid on empty for a version-1 records file)
    records.parquet the same records as typed columns (with pyarrow, pfharness[parquet]: records_parquet.py)
    regions.csv     index,kind,start,end,faults,name
    processes.csv   pid,ppid,faults,comm (when the module keeps a process table)
    transcript.log  the console transcript (unless --transcript put it elsewhere)
    guest/          records, regions, processes: the bytes of /proc/<module>/* exactly as the module gave them

Only guest/ is written by the target (in the VM: a read-write 9p export of that one directory). Whatever
is in it is untrusted (the workload runs as root there): read with O_NOFOLLOW, regular files only,
bounded, validated by records_file. The host's own files are written beside it, where the guest cannot reach.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from . import output_format as fmt
from . import records_csv, records_parquet, records_table
from .records_file import (
    MAX_RECORDS_BYTES,
    MAX_TABLE_BYTES,
    FaultRecord,
    ProcessEntry,
    RecordsError,
    Region,
    parse_processes,
    parse_records,
    parse_regions,
    to_records,
)
from .run_layout import (  # noqa: F401 - the layout's names, where callers have always found them
    GUEST_SUBDIR,
    PROCESSES_CSV,
    RECORDS_CSV,
    RECORDS_PARQUET,
    REGIONS_CSV,
    RUN_JSON,
    TRANSCRIPT,
    new_run_dir,
)

RECORDS_CSV_HEADER = records_csv.HEADER
MAX_RUN_JSON = 64 * 1024 * 1024


@dataclass(frozen=True)
class SavedRecords:
    """What a module's procfs files held at the end of a run (regions and processes empty when absent)."""

    table: np.ndarray = field(compare=False)  # the records, records_table.DTYPE, in buffer order
    dropped: int
    regions: list[Region] = field(default_factory=list)
    processes: list[ProcessEntry] = field(default_factory=list)
    version: int = fmt.RECORDS_VERSION  # of the records file (output_format.RECORDS_VERSION; 1 is still read)

    @classmethod
    def of(
        cls,
        records: list[FaultRecord],
        dropped: int,
        regions: list[Region] | None = None,
        processes: list[ProcessEntry] | None = None,
    ) -> SavedRecords:
        """Saved records given as tuples (tests, the study's replays)."""
        return cls(records_table.from_tuples(records), dropped, regions or [], processes or [])

    @cached_property
    def records(self) -> list[FaultRecord]:
        """The records as tuples (made on first use from the array)."""
        return to_records(self.table)

    def region_name(self, index: int) -> str:
        return self.regions[index].name if index < len(self.regions) else "?"

    def region_kind(self, index: int) -> str:
        return self.regions[index].kind if index < len(self.regions) else "none"

    def summary(self) -> dict[str, int]:
        return {
            "records": len(self.table),
            "record_version": self.version,
            "dropped": self.dropped,
            "regions": len(self.regions),
            "processes": len(self.processes),
        }


def records_file_summary(saved: SavedRecords | None, error: str | None) -> dict[str, Any] | None:
    """run.json's "records_file": what came back, or why nothing did (None: the module has no such file)."""
    if saved is not None:
        return {**saved.summary(), "error": None}
    return {"error": error} if error else None


def read_untrusted(path: Path, limit: int) -> bytes | None:
    """The bytes of a regular file the target wrote, or None when it is absent. Never follows a symlink,
    never reads past `limit` (a RecordsError then)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise RecordsError(f"{path} is a symbolic link, not a file the module's procfs gave") from None
        raise RecordsError(f"cannot read {path}: {e.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RecordsError(f"{path} is not a regular file")
        if info.st_size > limit:
            raise RecordsError(f"{path} holds {info.st_size} bytes, more than {limit}: not a module's file")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise RecordsError(f"{path} grew past {limit} bytes while it was read")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def read_saved(guest_dir: Path) -> SavedRecords | None:
    """The procfs files copied into `guest_dir`, parsed; None when there is no records file."""
    data = read_untrusted(guest_dir / "records", MAX_RECORDS_BYTES)
    if data is None:
        return None
    records = parse_records(data, source=str(guest_dir / "records"))
    regions_bytes = read_untrusted(guest_dir / "regions", MAX_TABLE_BYTES)
    regions = parse_regions(_text(regions_bytes), source=str(guest_dir / "regions")) if regions_bytes else []
    processes_bytes = read_untrusted(guest_dir / "processes", MAX_TABLE_BYTES)
    processes = parse_processes(_text(processes_bytes), source=str(guest_dir / "processes")) if processes_bytes else []
    return SavedRecords(records.table, records.dropped, regions, processes, records.version)


def write_csvs(run_dir: Path, saved: SavedRecords) -> None:
    """records.csv, records.parquet (with pyarrow: records_parquet), regions.csv and (with a process table)
    processes.csv."""
    kinds = [r.kind for r in saved.regions]
    with open(run_dir / RECORDS_CSV, "wb") as f:
        records_csv.write(f, saved.table, kinds, saved.version)
    records_parquet.write(run_dir / RECORDS_PARQUET, saved.table, kinds, saved.version)
    with open(run_dir / REGIONS_CSV, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("index", "kind", "start", "end", "faults", "name"))
        w.writerows((g.index, g.kind, f"0x{g.start:x}", f"0x{g.end:x}", g.faults, g.name) for g in saved.regions)
    if saved.processes:
        with open(run_dir / PROCESSES_CSV, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(("pid", "ppid", "faults", "comm"))
            w.writerows((p.tgid, p.ppid, p.faults, p.comm) for p in saved.processes)


def write_run_json(run_dir: Path, data: dict[str, Any]) -> None:
    (run_dir / RUN_JSON).write_text(json.dumps(data, indent=2) + "\n")


@dataclass(frozen=True)
class SavedRun:
    """A run directory read back for `pfharness plot`."""

    path: Path
    info: dict[str, Any]  # run.json
    saved: SavedRecords

    @property
    def command(self) -> list[str]:
        command = self.info.get("command")
        return [str(c) for c in command] if isinstance(command, list) else []

    @property
    def kernel_release(self) -> str:
        return str(self.info.get("kernel_release") or "")

    @property
    def pid(self) -> int:
        pid = self.info.get("pid")
        return pid if isinstance(pid, int) else 0

    @property
    def comm(self) -> str:
        comm = self.info.get("comm")
        if isinstance(comm, str) and comm:
            return comm
        return os.path.basename(self.command[0])[:15] if self.command else "?"


def _no_records(path: Path, has_run_json: bool, info: dict[str, Any]) -> str:
    """Why `path` cannot be drawn: not a run at all, or a run of a module that saves no records."""
    if not has_run_json:
        return (
            f"{path} is not a run directory: it has no {RUN_JSON} and no {GUEST_SUBDIR}/records; a run directory "
            "is what `pfharness run` leaves, out/runs/<stamp>-<module>/"
        )
    module = info.get("module")
    if module in ("pf_probe_A", "A"):
        return f"{path} is a run of pf_probe_A, which saves no records: run again with --module B (or C)"
    return f"{path} is a run directory without {GUEST_SUBDIR}/records: the run saved no records (see its {RUN_JSON})"


def load_run(path: Path) -> SavedRun:
    """A saved run directory (made by `pfharness run`), or a RecordsError that says what is missing."""
    if not path.is_dir():
        raise RecordsError(f"{path} is not a run directory: pass one of out/runs/<stamp>-<module>/")
    raw = read_untrusted(path / RUN_JSON, MAX_RUN_JSON)
    info: dict[str, Any] = {}
    if raw is not None:
        try:
            loaded = json.loads(raw)
        except ValueError as e:
            raise RecordsError(f"{path / RUN_JSON} is not JSON ({e})") from None
        if isinstance(loaded, dict):
            info = loaded
    saved = read_saved(path / GUEST_SUBDIR)
    if saved is None:
        raise RecordsError(_no_records(path, raw is not None, info))
    return SavedRun(path, info, saved)
