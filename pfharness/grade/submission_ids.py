"""The ids of the findings about a hand-in itself (docs/grade.md, "Submission findings"): what unpacking and
the required-files check can say about one student's tarball, each with what it means and what the student
should do. `Sub.X.finding(...)` makes the GradeFinding that travels in Unpacked."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from .model import GradeFinding

EVIDENCE_MAX = 20  # evidence lines kept per finding; the rest are counted on one more line


class _Advised(str, Enum):
    """An id whose members also say what they mean and what to do, in a few words each."""

    meaning: str
    advice: str

    def __new__(cls, value: str, meaning: str, advice: str) -> _Advised:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        member.advice = advice
        return member

    def finding(self, evidence: Iterable[str] = (), detail: str = "") -> GradeFinding:
        """The finding: its meaning (with `detail`, e.g. the limit), the fix, and the evidence (capped)."""
        lines = list(evidence)
        if len(lines) > EVIDENCE_MAX:
            lines = [*lines[:EVIDENCE_MAX], f"... and {len(lines) - EVIDENCE_MAX} more"]
        said = f"{self.meaning} ({detail})" if detail else self.meaning
        return GradeFinding(self.value, f"{said}: {self.advice}", tuple(lines))


class Sub(_Advised):
    """A submission finding's id, with its meaning and the student's fix (Sub.X.meaning, Sub.X.advice)."""

    # What kind of file was handed in
    NOT_A_TARBALL = ("not-a-tarball", "the file is not a tar archive", "hand in a tar.gz made with `tar czf`")
    NOT_GZIPPED = ("not-gzipped", "a tar archive that is not gzip'd (unpacked as usual)", "use `tar czf` next time")
    ZIP_NOT_TAR = ("zip-not-tar", "a zip archive, not a tar.gz (unpacked with the same checks)", "use `tar czf`")
    EMPTY_ARCHIVE = ("empty-archive", "the archive holds no files", "pack the directory with your files in it")
    CORRUPT_ARCHIVE = (
        "corrupt-archive",
        "the archive is damaged or cut short; only the members before the damage were unpacked",
        "make the tar.gz again and check it with `tar tzf`",
    )
    ARCHIVE_TOO_LARGE = ("archive-too-large", "the file is larger than the limit", "hand in sources only")
    # Limits on what it holds (a tar bomb): unpacking stops at the member that is over
    TOO_MANY_MEMBERS = ("too-many-members", "more members than the limit", "hand in your sources only")
    MEMBER_TOO_LARGE = ("member-too-large", "one member is larger than the limit", "leave build products out")
    TOO_MUCH_DATA = ("too-much-data", "the members add up to more than the limit", "hand in your sources only")
    TOO_DEEP = ("too-deep", "a member lies deeper than the directory-depth limit (skipped)", "flatten your tree")
    # Members that are never written
    PATH_TRAVERSAL = (
        "path-traversal",
        "a member's name has a `..` component (skipped)",
        "run `tar czf NAME.tar.gz DIR/` in DIR's parent",
    )
    ABSOLUTE_PATH = (
        "absolute-path",
        "a member's name is an absolute path (skipped)",
        "run `tar czf NAME.tar.gz DIR/` in DIR's parent",
    )
    LINK_OUTSIDE = (
        "link-outside",
        "a symbolic or hard link points outside the archive (skipped)",
        "hand in the file itself, not a link",
    )
    LINK_INSIDE = (
        "link-inside",
        "a link to a file in the archive; unpacked as a copy of that file",
        "hand in the file itself, not a link",
    )
    LINK_BROKEN = (
        "link-broken",
        "a link to something that is not a file in the archive (skipped)",
        "hand in the file itself, not a link",
    )
    DEVICE_FILE = ("device-file", "a device file (skipped)", "hand in regular files only")
    FIFO = ("fifo", "a named pipe (skipped)", "hand in regular files only")
    ODD_MEMBER = ("odd-member", "a member of another kind, or encrypted (skipped)", "hand in regular files only")
    BAD_NAME = ("bad-name", "a member whose name cannot be a file here (skipped)", "use short plain file names")
    DUPLICATE_MEMBER = (
        "duplicate-member",
        "the same name twice (a later file replaces an earlier one; a file against a directory is skipped)",
        "pack each file once",
    )
    # The shape of the hand-in
    NESTED_DIRECTORY = (
        "nested-directory",
        "the files are in one directory inside the archive, as the assignment asks; graded from there",
        "nothing to do",
    )
    MISSING_FILE = ("missing-file", "a required file is not in the hand-in", "add it under its exact name")
    NEAR_MISS = (
        "near-miss",
        "a file named like a required one that is missing (not used)",
        "rename it to the exact required name",
    )
    FILE_IN_SUBDIRECTORY = (
        "file-in-subdirectory",
        "a required file was found in a subdirectory, not beside the others (used from there)",
        "put all files in one directory",
    )
