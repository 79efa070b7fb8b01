"""Unpacking a hand-in as hostile input (pfharness/grade/unpack.py): each hostile tarball is made here, in
the test, and unpacked for real; the finding ids are checked, and that nothing was written outside the
student's directory (a sentinel sibling and the whole tmp tree are compared before and after). No VM."""

from __future__ import annotations

import gzip
import io
import os
import random
import stat
import tarfile
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from pfharness import assets
from pfharness.errors import PfhError, UsageError
from pfharness.grade.members import Limits
from pfharness.grade.names import student_of
from pfharness.grade.submission_ids import Sub
from pfharness.grade.unpack import unpack
from pfharness.kmod import handin

GOOD = {
    "pf_probe_A.c": b"/* A */\n",
    "pf_probe_B.c": b"/* B */\n",
    "Makefile": b"obj-m += pf_probe_A.o pf_probe_B.o\n",
    "README": b"readme\n",
    "report.txt": b"report\n",
}
DEFAULT = Limits()
FAST = 1.0  # CPU seconds: a bomb is refused well within this (0.15 s on this machine when idle)


def reg(name: str, data: bytes = b"x\n") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    return info, data


def special(name: str, kind: bytes, link: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, None


def good(top: str = "hw3/") -> list[tuple[tarfile.TarInfo, bytes | None]]:
    return [reg(top + name, data) for name, data in GOOD.items()]


def make_tar(path: Path, members, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def tree(root: Path, leave_out: Path) -> dict[str, tuple[int, bytes]]:
    """Every path under root (except under leave_out): its mode and, for a file, its bytes."""
    found = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(top) / name
            if p == leave_out or leave_out in p.parents:
                continue
            st = p.lstat()
            found[str(p)] = (st.st_mode, p.read_bytes() if stat.S_ISREG(st.st_mode) else b"")
    return found


@pytest.fixture
def hand_in(tmp_path):
    """unpack(tarball, tmp/dest) with the whole tmp tree outside dest checked unchanged (a sentinel
    directory beside dest included); returns (Unpacked, dest, seconds)."""
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / "keep.txt").write_text("untouched\n")

    calls = iter(range(1000))

    def run(tarball: Path, limits: Limits = DEFAULT, submitted: str | None = None):
        dest = tmp_path / "dest" / f"{tarball.name}-{next(calls)}"
        before = tree(tmp_path, tmp_path / "dest")
        start = time.process_time()  # CPU seconds: the machine running the suite may be busy with others
        got = unpack(tarball, dest, limits=limits, submitted=submitted)
        seconds = time.process_time() - start
        assert tree(tmp_path, tmp_path / "dest") == before
        assert (sentinel / "keep.txt").read_text() == "untouched\n"
        for p in dest.rglob("*"):  # only regular files and directories, all under dest
            assert stat.S_ISREG(p.lstat().st_mode) or stat.S_ISDIR(p.lstat().st_mode), p
            assert dest.resolve() in p.resolve().parents
        return got, dest, seconds

    return run


def ids(unpacked) -> list[str]:
    return [f.id for f in unpacked.findings]


def finding(unpacked, sub: Sub):
    return next(f for f in unpacked.findings if f.id == sub.value)


def test_a_correct_hand_in_is_unpacked_with_one_level_flattened(tmp_path, hand_in):
    tarball = make_tar(tmp_path / "alice.tar.gz", [special("hw3", tarfile.DIRTYPE), *good()])
    got, dest, _ = hand_in(tarball)
    assert ids(got) == ["nested-directory"]
    assert got.root == str(dest / "hw3")
    assert got.student == "alice" and got.tarball == "alice.tar.gz"
    assert got.missing == () and got.near_misses == {}
    assert {n: (Path(got.root) / p).read_bytes() for n, p in got.files.items()} == GOOD
    import hashlib

    assert got.digest == hashlib.sha256(tarball.read_bytes()).hexdigest()


def test_the_projects_own_dist_tarball_unpacks_whole(tmp_path, hand_in):
    files = handin.handin_files(assets.study_file("report.txt"), "6.1.0-57-amd64")
    tarball = tmp_path / "pfh.tar.gz"
    handin._write_tar(tarball, files, 1_700_000_000)
    got, _, _ = hand_in(tarball)
    assert ids(got) == ["nested-directory"]
    assert set(got.files) == {*GOOD, "pf_probe_C.c"}
    assert (Path(got.root) / "report.txt").read_text() == files["report.txt"]


def test_files_at_the_top_need_no_flattening(tmp_path, hand_in):
    got, dest, _ = hand_in(make_tar(tmp_path / "bob.tgz", good("./")))
    assert ids(got) == [] and got.root == str(dest) and got.student == "bob"


def test_a_partly_hostile_archive_keeps_its_good_members(tmp_path, hand_in):
    outside = tmp_path / "outside"
    absolute = f"/etc/pfh-unpack-test-{uuid.uuid4().hex}"
    members = [
        *good(),
        reg("hw3/../../outside/evil.c"),
        reg("../evil2.c"),
        reg(absolute),
        reg(str(outside / "abs.c")),
        special("hw3/passwd", tarfile.SYMTYPE, "/etc/passwd"),
        special("hw3/up", tarfile.SYMTYPE, "../../outside/x"),
        special("hw3/shadow", tarfile.LNKTYPE, "/etc/shadow"),
        special("hw3/hard-up", tarfile.LNKTYPE, "../outside/x"),
        special("hw3/null", tarfile.CHRTYPE),
        special("hw3/disk", tarfile.BLKTYPE),
        special("hw3/pipe", tarfile.FIFOTYPE),
        special("hw3/etc", tarfile.SYMTYPE, "/etc"),  # the classic: a link, then a file "through" it
        reg(f"hw3/etc/{Path(absolute).name}", b"through\n"),
    ]
    try:
        got, dest, _ = hand_in(make_tar(tmp_path / "mallory.tar.gz", members))
        assert not Path(absolute).exists()
    finally:
        Path(absolute).unlink(missing_ok=True)
    assert not outside.exists()
    assert ids(got) == [
        "path-traversal", "absolute-path", "link-outside", "device-file", "fifo", "nested-directory",
    ]  # fmt: skip
    assert finding(got, Sub.PATH_TRAVERSAL).evidence == ("hw3/../../outside/evil.c", "../evil2.c")
    assert finding(got, Sub.LINK_OUTSIDE).evidence == (
        "hw3/passwd -> /etc/passwd", "hw3/up -> ../../outside/x", "hw3/shadow -> /etc/shadow",
        "hw3/hard-up -> ../outside/x", "hw3/etc -> /etc",
    )  # fmt: skip
    assert finding(got, Sub.DEVICE_FILE).evidence == ("hw3/null", "hw3/disk")
    assert (dest / "hw3" / "etc" / Path(absolute).name).read_bytes() == b"through\n"  # a real directory
    assert sorted(p.name for p in (dest / "hw3").iterdir()) == sorted([*GOOD, "etc"])
    assert got.missing == ()


def test_links_inside_become_copies_of_the_file_they_name(tmp_path, hand_in):
    members = [
        *good(),
        special("hw3/chain", tarfile.SYMTYPE, "sub/report-link.txt"),  # a link to a link that comes later
        special("hw3/loop1", tarfile.SYMTYPE, "loop2"),
        special("hw3/loop2", tarfile.SYMTYPE, "loop1"),
        special("hw3/Readme.copy", tarfile.LNKTYPE, "hw3/README"),
        special("hw3/sub/report-link.txt", tarfile.SYMTYPE, "../report.txt"),
        special("hw3/to-dir", tarfile.SYMTYPE, "sub"),
        special("hw3/nowhere", tarfile.SYMTYPE, "missing.c"),
    ]
    got, dest, _ = hand_in(make_tar(tmp_path / "carol.tar.gz", members))
    assert finding(got, Sub.LINK_INSIDE).evidence == (
        "hw3/Readme.copy -> hw3/README (copied)", "hw3/sub/report-link.txt -> ../report.txt (copied)",
        "hw3/chain -> sub/report-link.txt (copied)",
    )  # fmt: skip
    assert finding(got, Sub.LINK_BROKEN).evidence == (
        "hw3/loop1 -> loop2 (not a file in the archive)", "hw3/loop2 -> loop1 (not a file in the archive)",
        "hw3/to-dir -> sub (not a file in the archive)", "hw3/nowhere -> missing.c (not a file in the archive)",
    )  # fmt: skip
    assert (dest / "hw3" / "chain").read_bytes() == GOOD["report.txt"]
    copy = dest / "hw3" / "sub" / "report-link.txt"
    assert copy.read_bytes() == GOOD["report.txt"] and not copy.is_symlink() and copy.stat().st_nlink == 1
    assert (dest / "hw3" / "Readme.copy").stat().st_nlink == 1
    assert not (dest / "hw3" / "to-dir").exists() and not (dest / "hw3" / "nowhere").exists()


@pytest.mark.parametrize(
    ("members", "limits", "expected"),
    [
        ([special(f"hw3/f{n}.c", tarfile.REGTYPE) for n in range(10_000)], Limits(), Sub.TOO_MANY_MEMBERS),
        ([special("hw3/huge.bin", tarfile.REGTYPE)], Limits(), Sub.MEMBER_TOO_LARGE),  # declared 1 GiB below
        ([reg(f"hw3/f{n}.bin", bytes(4096)) for n in range(8)], Limits(total_bytes=10_000), Sub.TOO_MUCH_DATA),
    ],
    ids=["10000-members", "1GiB-member", "total-size"],
)
def test_a_tar_bomb_stops_early_and_fast(tmp_path, hand_in, members, limits, expected):
    if expected == Sub.MEMBER_TOO_LARGE:  # a header declaring 1 GiB, and no data: nothing may wait for it
        info = members[0][0]
        info.size = 1 << 30
        raw = b"".join(i.tobuf(tarfile.GNU_FORMAT) for i, _ in good()[:1]) + bytes(512) + info.tobuf() + bytes(1024)
        tarball = tmp_path / "bomb.tar.gz"
        tarball.write_bytes(gzip.compress(raw))
    else:  # headers alone, joined (tarfile's addfile takes a second for 10,000)
        tarball = tmp_path / "bomb.tar.gz"
        tarball.write_bytes(
            gzip.compress(
                b"".join(
                    i.tobuf() + (data or b"").ljust(-(-len(data or b"") // 512) * 512, b"\0") for i, data in members
                ),
                1,
            )
        )
    got, dest, seconds = hand_in(tarball, limits)
    assert seconds < FAST
    assert expected.value in ids(got)
    written = [p for p in dest.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in written) <= limits.total_bytes
    assert len(written) <= limits.members
    assert "nothing after it was unpacked" in finding(got, expected).message


def test_a_zip_of_many_members_is_refused_before_it_is_parsed(tmp_path, hand_in):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as z:
        for n in range(600):
            z.writestr(f"f{n}.c", b"")
    got, dest, seconds = hand_in(path)
    assert ids(got) == ["zip-not-tar", "too-many-members", "missing-file"] and seconds < FAST
    assert finding(got, Sub.TOO_MANY_MEMBERS).evidence == ("600 members declared",)
    assert list(dest.iterdir()) == []


def test_a_huge_header_is_cut_off_by_the_decompressed_cap(tmp_path, hand_in):
    """A pax header whose path is 4 MiB long: tarfile would read it whole; the cap stops it first."""
    info, data = reg("hw3/" + "a" * (4 << 20))
    with tarfile.open(tmp_path / "pax.tar.gz", "w:gz", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
    got, _, seconds = hand_in(tmp_path / "pax.tar.gz", Limits(total_bytes=1 << 20, members=10))
    assert ids(got) == ["too-much-data", "empty-archive", "missing-file"] and seconds < FAST
    assert finding(got, Sub.TOO_MUCH_DATA).evidence[0].startswith("more than")


def test_a_deep_member_is_skipped_and_the_rest_kept(tmp_path, hand_in):
    deep = "hw3/" + "d/" * 40 + "deep.c"
    got, dest, _ = hand_in(make_tar(tmp_path / "dave.tar.gz", [*good(), reg(deep)]))
    assert ids(got) == ["too-deep", "nested-directory"]
    assert finding(got, Sub.TOO_DEEP).evidence == (deep,)
    assert not (dest / "hw3" / "d").exists() and got.missing == ()


def test_long_and_clashing_names(tmp_path, hand_in):
    members = [
        *good(),
        reg("hw3/" + "n" * 300),
        reg("hw3/README", b"second\n"),
        reg("hw3/Makefile/inner"),
        special("hw3/report.txt", tarfile.DIRTYPE),
    ]
    got, dest, _ = hand_in(make_tar(tmp_path / "erin.tar.gz", members))
    assert ids(got) == ["bad-name", "duplicate-member", "nested-directory"]
    assert finding(got, Sub.DUPLICATE_MEMBER).evidence == (
        "hw3/README (the later one kept)",
        "hw3/Makefile/inner: hw3/Makefile is a file, not a directory",
        "hw3/report.txt: a file of that name came before",
    )
    assert (dest / "hw3" / "README").read_bytes() == b"second\n"


def test_a_zip_is_unpacked_with_the_same_checks(tmp_path, hand_in):
    path = tmp_path / "frank.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in GOOD.items():
            z.writestr(f"hw3/{name}", data)
        z.writestr("../escape.c", b"x")
        z.writestr("hw3\\..\\..\\win.c", b"x")
        z.writestr("C:\\Windows\\evil.c", b"x")
        link = zipfile.ZipInfo("hw3/passwd")
        link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "/etc/passwd")
        fifo = zipfile.ZipInfo("hw3/pipe")
        fifo.create_system, fifo.external_attr = 3, (stat.S_IFIFO | 0o644) << 16
        z.writestr(fifo, b"")
    got, dest, _ = hand_in(path)
    assert ids(got) == ["zip-not-tar", "path-traversal", "absolute-path", "link-outside", "fifo", "nested-directory"]
    assert finding(got, Sub.ABSOLUTE_PATH).evidence == ("C:/Windows/evil.c",)
    assert finding(got, Sub.PATH_TRAVERSAL).evidence == ("../escape.c", "hw3/../../win.c")
    assert got.missing == () and sorted(p.name for p in (dest / "hw3").iterdir()) == sorted(GOOD)


@pytest.mark.parametrize(
    ("content", "evidence"),
    [
        (random.Random(23).randbytes(5000), "binary data starting"),
        (gzip.compress(b"my report, gzip'd alone\n" * 40), "gzip data holding text"),
        (b"%PDF-1.4\n" + bytes(600), "a PDF document"),
        (b"PK\x03\x04" + random.Random(1).randbytes(300), "a damaged zip"),
        (b"\x1f\x8b" + random.Random(2).randbytes(300), "damaged gzip data"),
    ],
    ids=["random-bytes", "gzip-of-text", "pdf", "bad-zip", "bad-gzip"],
)
def test_what_is_not_a_tarball_is_named(tmp_path, hand_in, content, evidence):
    path = tmp_path / "gina.tar.gz"
    path.write_bytes(content)
    got, dest, _ = hand_in(path)
    assert ids(got) == ["not-a-tarball", "missing-file"]
    assert finding(got, Sub.NOT_A_TARBALL).evidence[0].startswith(evidence)
    assert got.root is None and got.files == {} and len(got.missing) == 5
    assert list(dest.rglob("*")) == []


@pytest.mark.parametrize(
    ("content", "evidence"),
    [
        (b"", "a file of 0 bytes"),
        (gzip.compress(b""), "0 members, none a file"),
        (gzip.compress(bytes(10240)), "0 members, none a file"),  # what `tar czf x.tgz --files-from /dev/null` makes
    ],
    ids=["zero-bytes", "gzip-of-nothing", "tar-of-nothing"],
)
def test_an_empty_archive(tmp_path, hand_in, content, evidence):
    path = tmp_path / "hank.tgz"
    path.write_bytes(content)
    got, _, _ = hand_in(path)
    assert ids(got) == ["empty-archive", "missing-file"]
    assert finding(got, Sub.EMPTY_ARCHIVE).evidence == (evidence,)
    assert got.root is None


def test_directories_only_is_empty_too(tmp_path, hand_in):
    got, _, _ = hand_in(make_tar(tmp_path / "ivy.tgz", [special("hw3", tarfile.DIRTYPE)]))
    assert ids(got) == ["empty-archive", "missing-file"] and got.root is None


@pytest.mark.parametrize(("mode", "kind"), [("w", "tar"), ("w:bz2", "bzip2"), ("w:xz", "xz")])
def test_a_tar_not_gzipped_is_unpacked_with_a_note(tmp_path, hand_in, mode, kind):
    got, _, _ = hand_in(make_tar(tmp_path / "jack.tar", good(), mode))
    assert ids(got) == ["not-gzipped", "nested-directory"]
    assert finding(got, Sub.NOT_GZIPPED).evidence == (f"{kind} archive",) and got.missing == ()


def test_a_truncated_archive_keeps_what_came_before(tmp_path, hand_in):
    big = [reg(f"hw3/data{n}.bin", random.Random(n).randbytes(20_000)) for n in range(4)]
    whole = make_tar(tmp_path / "whole.tar", [*good(), *big], "w").read_bytes()
    path = tmp_path / "kate.tar.gz"
    path.write_bytes(gzip.compress(whole)[: len(gzip.compress(whole)) * 3 // 4])
    got, dest, _ = hand_in(path)
    assert "corrupt-archive" in ids(got)
    assert got.missing == () and (dest / "hw3" / "data0.bin").stat().st_size == 20_000


def test_garbage_never_raises_and_never_writes_outside(tmp_path, hand_in):
    """Bytes flipped at random in a hostile tarball: every result is an Unpacked, never a traceback."""
    base = make_tar(
        tmp_path / "base.tar.gz",
        [*good(), reg("../x"), special("hw3/l", tarfile.SYMTYPE, "/etc/passwd"), special("hw3/p", tarfile.FIFOTYPE)],
    ).read_bytes()
    plain = gzip.decompress(base)
    rng = random.Random(2326)
    for n in range(60):
        data = bytearray(plain if n % 2 else base)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path = tmp_path / "fuzz.tar.gz"
        path.write_bytes(bytes(data[: rng.randint(1, len(data))] if n % 3 == 0 else data))
        got, _, _ = hand_in(path)
        assert got.student == "fuzz" and all(f.message for f in got.findings)


def test_the_submitted_time(tmp_path, hand_in):
    path = make_tar(tmp_path / "lena.tar.gz", good())
    os.utime(path, (1_583_452_740, 1_583_452_740))
    assert hand_in(path)[0].submitted == "2020-03-05T23:59:00+00:00"
    assert hand_in(path, submitted="2020-03-05T23:59:00-05:00")[0].submitted == "2020-03-06T04:59:00+00:00"
    with pytest.raises(UsageError, match="not a time"):
        unpack(path, tmp_path / "other", submitted="yesterday")


def test_harness_failures_are_errors_not_findings(tmp_path):
    with pytest.raises(PfhError, match="cannot read the hand-in"):
        unpack(tmp_path / "absent.tar.gz", tmp_path / "d1")
    path = make_tar(tmp_path / "m.tar.gz", good())
    (tmp_path / "d2").mkdir()
    (tmp_path / "d2" / "old").write_text("x")
    with pytest.raises(PfhError, match="not empty"):
        unpack(path, tmp_path / "d2")


def test_a_full_disk_is_the_harnesss_failure(tmp_path, monkeypatch):
    """ENOSPC while writing is pfharness's to retry, never a finding against the student."""
    import errno

    from pfharness.grade import extract

    path = make_tar(tmp_path / "olga.tar.gz", good())

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(extract.os, "open", full)
    with pytest.raises(PfhError, match=r"No space left on device.*free disk space"):
        unpack(path, tmp_path / "dest")


def test_an_oversized_file_is_not_opened(tmp_path, hand_in):
    path = make_tar(tmp_path / "nina.tar.gz", good())
    got, _, _ = hand_in(path, Limits(archive_bytes=100))
    assert ids(got) == ["archive-too-large", "missing-file"] and got.root is None


@pytest.mark.parametrize(
    ("filename", "student"),
    [
        ("alice.tar.gz", "alice"),
        ("alice.tgz", "alice"),
        ("alice.tar", "alice"),
        ("Alice.TAR.GZ", "Alice"),
        ("bob smith (2).tar.gz", "bob_smith_2"),
        ("..hidden.tgz", "hidden"),
        ("../../x.tar.gz", "x"),
        ("ünïcode.zip", "n_code"),
        (".tar.gz", "tar"),
        ("$$$.tgz", "student"),
        ("a" * 100 + ".tgz", "a" * 64),
    ],
)
def test_the_students_name_is_safe(filename, student):
    assert student_of(filename) == student


def test_every_submission_finding_is_documented():
    text = (Path(__file__).resolve().parent.parent / "docs" / "grade.md").read_text()
    section = text.split("## Submission findings", 1)[1].split("\n## ", 1)[0]
    assert [s.value for s in Sub if f"| `{s.value}` |" not in section] == []
