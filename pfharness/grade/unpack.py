"""Unpacking one hand-in as hostile input: `unpack(tarball, dest)` -> Unpacked.

The kind of file is told by its bytes (a gzip'd tar as the assignment asks; a plain, bzip2'd or xz'd tar
and a zip are unpacked too, each with a finding; anything else is `not-a-tarball`). Members are read in
order and each is checked before anything is written (members.py): only regular files and directories
are written, into `dest` and nowhere else (extract.py); links inside the archive become copies of the
file they name, after the other members; every member refused becomes evidence of a named finding
(submission_ids.Sub, docs/grade.md), and the members that pass are still unpacked. At the first member
over a limit (their count, one's size, the total) unpacking stops. A single directory holding everything
is the root (one level flattened); then the required files are looked for (required.py)."""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
from collections.abc import Generator, Iterator
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from ..errors import PfhError, UsageError
from . import archive
from .extract import Refused, Writer
from .members import (
    DIRECTORY,
    FILE,
    HARDLINK,
    KIND_FINDING,
    SYMLINK,
    Limits,
    Member,
    MiB,
    check_name,
    link_target,
    over_limit,
    parts,
)
from .model import GradeFinding, Unpacked
from .names import student_of
from .required import JUNK_DIRS, JUNK_FILES, find_required
from .submission_ids import Sub
from .times import iso_utc, parse_time

__all__ = ["Limits", "unpack"]

ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, *archive.READ_ERRORS)
DEFAULT_LIMITS = Limits()
HEADER_SLACK = 4096  # bytes of headers (pax, long names) allowed per member in the decompressed stream


class _Run:
    """One archive's members going through the checks into a Writer; the findings gathered by id."""

    def __init__(self, writer: Writer, limits: Limits) -> None:
        self.writer, self.limits = writer, limits
        self.count = self.declared = self.files_seen = 0
        self.evidence: dict[Sub, list[str]] = {}
        self.details: dict[Sub, str] = {}
        self.links: list[tuple[tuple[str, ...], tuple[str, ...], str]] = []

    def add(self, sub: Sub, evidence: str = "", detail: str = "") -> None:
        self.evidence.setdefault(sub, [])
        if evidence:
            self.evidence[sub].append(evidence)
        if detail:
            self.details.setdefault(sub, detail)

    def consume(self, members: Iterator[Member]) -> None:
        for member in members:
            self.count += 1
            self.files_seen += member.kind == FILE
            over = over_limit(member, self.count, self.declared, self.limits)
            if over is not None:
                self.add(over[0], member.name, over[1] + "; nothing after it was unpacked")
                return
            self.declared += member.size if member.kind == FILE else 0
            self.one(member)
        self.copy_links()

    def one(self, member: Member) -> None:
        rel = parts(member.name)
        if isinstance(rel, Sub):
            self.add(rel, member.name)
        elif (why := check_name(rel, self.limits)) is not None:
            self.add(why, member.name)
        elif not rel:
            if member.kind != DIRECTORY:
                self.add(Sub.BAD_NAME, repr(member.name))
        elif member.kind in KIND_FINDING:
            self.add(KIND_FINDING[member.kind], f"{member.name} ({member.detail})" if member.detail else member.name)
        elif member.kind in (SYMLINK, HARDLINK):
            self.link(member, rel)
        else:
            self.write(member, rel)

    def write(self, member: Member, rel: tuple[str, ...]) -> None:
        try:
            if member.kind == DIRECTORY:
                self.writer.directory(rel)
            elif self.writer.file(rel, member.open() if member.open else None, member.size):
                self.add(Sub.DUPLICATE_MEMBER, f"{member.name} (the later one kept)")
        except Refused as exc:
            self.add(exc.sub, f"{member.name}: {exc}")

    def link(self, member: Member, rel: tuple[str, ...]) -> None:
        target = link_target(member, rel)
        shown = f"{member.name} -> {member.link}"
        if target is None:
            self.add(Sub.LINK_OUTSIDE, shown)
        else:
            self.links.append((rel, target, shown))

    def copy_links(self) -> None:
        """The links inside the archive, as copies of the files they name, after every other member; a link
        to a link is copied once that one is (in as many rounds as it takes)."""
        pending = self.links
        while ready := [link for link in pending if link[1] in self.writer.files]:
            pending = [link for link in pending if link[1] not in self.writer.files]
            for rel, target, shown in ready:
                if self.writer.written + self.writer.files[target].stat().st_size > self.limits.total_bytes:
                    self.add(Sub.TOO_MUCH_DATA, shown, f"over {self.limits.total_bytes:,} bytes with the copies")
                    return
                try:
                    self.writer.copy(rel, target)
                    self.add(Sub.LINK_INSIDE, f"{shown} (copied)")
                except Refused as exc:
                    self.add(exc.sub, f"{shown}: {exc}")
        for _rel, _target, shown in pending:
            self.add(Sub.LINK_BROKEN, f"{shown} (not a file in the archive)")

    def findings(self) -> list[GradeFinding]:
        return [sub.finding(lines, self.details.get(sub, "")) for sub, lines in self.evidence.items()]


def _digest(tarball: Path) -> tuple[str, int, float, bytes]:
    """sha256 (hex), size, mtime and first 512 bytes of the file; PfhError when it cannot be read."""
    sha = hashlib.sha256()
    try:
        with tarball.open("rb") as f:
            head = f.read(512)
            sha.update(head)
            while chunk := f.read(MiB):
                sha.update(chunk)
            st = tarball.stat()
    except OSError as exc:
        raise PfhError(f"cannot read the hand-in {tarball} ({exc.strerror or exc}): check the path") from exc
    return sha.hexdigest(), st.st_size, st.st_mtime, head


def _not_an_archive(tarball: Path, kind: str, head: bytes, error: Exception) -> GradeFinding:
    if kind == archive.ZIP:
        what = f"a damaged zip ({error})"
    elif kind in (archive.GZIP, archive.BZIP2, archive.XZ):
        inner = archive.inner_head(tarball, kind)
        what = f"{kind} data holding {archive.describe(inner)}" if inner else f"damaged {kind} data ({error})"
    else:
        what = archive.describe(head)
    return Sub.NOT_A_TARBALL.finding((what,))


def _members(tarball: Path, kind: str, limits: Limits) -> Generator[Member, None, None]:
    if kind == archive.ZIP:
        return archive.zip_members(tarball)
    cap = limits.total_bytes + (limits.members + 1) * HEADER_SLACK + MiB
    return archive.tar_members(tarball, kind, cap)


def _extract(tarball: Path, head: bytes, dest: Path, limits: Limits) -> tuple[list[GradeFinding], Writer | None]:
    """Findings about the archive and its members, and the Writer that unpacked it (None: nothing read)."""
    kind = archive.sniff(head)
    if kind == archive.EMPTY:
        return [Sub.EMPTY_ARCHIVE.finding(("a file of 0 bytes",))], None
    run = _Run(Writer(dest), limits)
    if kind == archive.ZIP and (entries := archive.zip_entries(tarball) or 0) > limits.members:
        run.add(Sub.TOO_MANY_MEMBERS, f"{entries} members declared", f"more than {limits.members}; none unpacked")
        return [Sub.ZIP_NOT_TAR.finding(("zip archive",)), *run.findings()], run.writer
    try:
        with closing(_members(tarball, kind, limits)) as members:
            run.consume(members)
    except archive.TooMuchData as exc:
        run.add(Sub.TOO_MUCH_DATA, str(exc), "nothing after it was unpacked")
    except ARCHIVE_ERRORS as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise PfhError(f"cannot read the hand-in {tarball} ({exc.strerror}): check the disk") from exc
        if run.count == 0 and str(exc) != "empty file":
            return [_not_an_archive(tarball, kind, head, exc)], run.writer
        if run.count:
            run.add(Sub.CORRUPT_ARCHIVE, f"after {run.count} members: {exc}")
    notice = {archive.ZIP: Sub.ZIP_NOT_TAR, archive.BZIP2: Sub.NOT_GZIPPED, archive.XZ: Sub.NOT_GZIPPED}
    found = [notice.get(kind, Sub.NOT_GZIPPED).finding((f"{kind} archive",))] if kind != archive.GZIP else []
    found += run.findings()
    if run.files_seen == 0:
        found.append(Sub.EMPTY_ARCHIVE.finding((f"{run.count} members, none a file",)))
    return found, run.writer


def _root(dest: Path, writer: Writer | None) -> tuple[Path | None, list[GradeFinding]]:
    """Where the files are: None when none was written; the single directory holding everything (one
    level flattened, `nested-directory`); else dest."""
    if writer is None or not writer.files:
        return None, []
    entries = [e for e in dest.iterdir() if e.name not in JUNK_DIRS | JUNK_FILES and not e.name.startswith("._")]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0], [Sub.NESTED_DIRECTORY.finding((entries[0].name + "/",))]
    return dest, []


def unpack(tarball: Path, dest: Path, *, limits: Limits = DEFAULT_LIMITS, submitted: str | None = None) -> Unpacked:
    """Unpack one hand-in into `dest` (made if missing; it must be empty) and find its files. A hostile or
    broken archive gives findings, never an exception; PfhError only for the harness's own failures (the
    tarball cannot be read, dest cannot be written, the disk is full) and UsageError for a bad `submitted`."""
    digest, size, mtime, head = _digest(tarball)
    when = _when(submitted) if submitted is not None else iso_utc(datetime.fromtimestamp(mtime, timezone.utc))
    if size > limits.archive_bytes:
        Writer(dest)
        findings = [Sub.ARCHIVE_TOO_LARGE.finding((f"{size:,} bytes",), f"limit {limits.archive_bytes:,} bytes")]
        writer = None
    else:
        findings, writer = _extract(tarball, head, dest, limits)
    root, nested = _root(dest, writer)
    required = find_required(root)
    return Unpacked(
        student=student_of(tarball.name),
        tarball=tarball.name,
        digest=digest,
        submitted=when,
        root=str(root) if root is not None else None,
        findings=(*findings, *nested, *required.findings),
        files=required.files,
        missing=required.missing,
        near_misses=required.near_misses,
    )


def _when(submitted: str) -> str:
    try:
        return parse_time(submitted)
    except (ValueError, OverflowError, OSError):
        raise UsageError(f"submission time {submitted!r} is not a time: write ISO 8601 (2020-03-05T23:59Z)") from None
