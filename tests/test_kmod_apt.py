"""pfharness.kmod.apt and pfharness.kmod.spec: the machine's apt sources, pfharness's own apt
configuration, kernel package names and dependencies, and what a kernel request names. No network."""

from __future__ import annotations

import pytest

from pfharness.errors import KernelNotFound, SetupError
from pfharness.kmod import apt
from pfharness.kmod import spec as kspec

# A made-up archive (the .invalid top-level domain never resolves).
MAIN = "http://archive.invalid/debian"
SECURITY = "http://archive.invalid/debian-security"

SOURCES = f"""\
Types: deb
# a comment
URIs: {MAIN}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {SECURITY}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


# ----------------------------------------------------------------- deb822 sources


def test_deb822_stanzas_and_archive_uris():
    stanzas = apt.parse_deb822(SOURCES)
    assert len(stanzas) == 2
    assert stanzas[0]["Suites"] == "bookworm bookworm-updates"
    assert apt.archive_uris_from_stanzas(stanzas) == {"main": MAIN, "security": SECURITY}


def test_deb822_skips_disabled_and_source_stanzas():
    text = (
        f"Types: deb-src\nURIs: http://src.invalid/debian\nSuites: bookworm\n\n"
        f"Types: deb\nURIs: http://off.invalid/debian\nSuites: bookworm\nEnabled: no\n\n"
        f"Types: deb\nURIs: {MAIN}/\nSuites: sid\n"
    )
    assert apt.archive_uris_from_stanzas(apt.parse_deb822(text)) == {"main": MAIN}


def test_system_archive_uris_reads_sources_and_list_files(tmp_path):
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(SOURCES)
    assert apt.system_archive_uris((d,)) == {"main": MAIN, "security": SECURITY}
    one_line = tmp_path / "sources.list"
    one_line.write_text(f"# old style\ndeb [signed-by=/k.gpg] {MAIN} bookworm main\n")
    assert apt.system_archive_uris((one_line,)) == {"main": MAIN}
    with pytest.raises(SetupError, match="no Debian archive"):
        apt.system_archive_uris((tmp_path / "nothing",))


def test_messages_never_name_the_archive_host():
    text = f"Err:1 {MAIN} sid InRelease; E: Failed to fetch {SECURITY}/dists/x"
    out = apt.redact(text, [MAIN, SECURITY])
    assert "archive.invalid" not in out and "<archive>/debian" in out


def test_own_apt_configuration_never_uses_the_systems(tmp_path):
    own = apt.Apt(tmp_path, "bookworm", {"main": MAIN, "security": SECURITY})
    own.prepare()
    text = own.sources.read_text()
    assert "Suites: bookworm\n" in text and "Suites: bookworm-security\n" in text
    assert text.count(f"Signed-By: {apt.KEYRING}") == 2
    opts = own.options()
    values = dict(o.split("=", 1) for o in opts[1::2])
    for key in ("Dir::Etc::SourceList", "Dir::Etc::SourceParts", "Dir::State", "Dir::State::status", "Dir::Cache"):
        assert values[key].startswith(str(tmp_path / "apt" / "bookworm")), key
    assert (tmp_path / "apt" / "bookworm" / "state" / "status").read_text() == ""
    with pytest.raises(SetupError, match="no security archive"):
        apt.Apt(tmp_path, "bookworm", {"main": MAIN}).sources_text()


# ----------------------------------------------------------------- specs and packages


@pytest.mark.parametrize(
    "spec, series, flavour, release",
    [
        ("5.10", "5.10", "amd64", None),
        ("6.1", "6.1", "amd64", None),
        ("6.1-rt", "6.1", "rt-amd64", None),
        ("6.12", "6.12", "amd64", None),
        ("7.2", "7.2", "amd64", None),
        ("6.12.48+deb12-amd64", None, "amd64", "6.12.48+deb12-amd64"),
        ("6.1.0-56-rt-amd64", None, "amd64", "6.1.0-56-rt-amd64"),
    ],
)
def test_parse_spec(spec, series, flavour, release):
    s = kspec.parse_spec(spec)
    assert (s.series, s.flavour, s.release) == (series, flavour, release)


@pytest.mark.parametrize("bad", ["", "6", "latest", "6.1-foo", "6.1.0-56-arm64", "../6.1.0-56-amd64"])
def test_bad_spec_names_what_is_accepted(bad):
    with pytest.raises(KernelNotFound, match=r"6\.1-rt") as e:
        kspec.parse_spec(bad)
    assert "\n" not in str(e.value)


def test_series_matches_only_its_own_releases_and_flavour():
    six_one, rt, six_twelve = kspec.parse_spec("6.1"), kspec.parse_spec("6.1-rt"), kspec.parse_spec("6.12")
    assert six_one.matches("6.1.0-56-amd64")
    assert not six_one.matches("6.12.117+deb12-amd64")
    assert not six_one.matches("6.1.0-56-rt-amd64") and not six_one.matches("6.1.0-56-cloud-amd64")
    assert rt.matches("6.1.0-56-rt-amd64") and not rt.matches("6.1.0-56-amd64")
    assert six_twelve.matches("6.12.117+deb12-amd64")
    assert kspec.parse_spec("7.2").matches("7.2.13+deb14-amd64")
    assert kspec.parse_spec("5.10").matches("5.10.0-32-amd64")


def test_series_and_releases_map_to_distributions():
    assert [kspec.parse_spec(s).dists()[0] for s in ("5.10", "6.1", "6.1-rt", "6.12", "7.2")] == [
        "bullseye",
        "bookworm",
        "bookworm",
        "bookworm",
        "sid",
    ]
    assert kspec.guess_dist("6.12.48+deb12-amd64") == "bookworm"
    assert kspec.guess_dist("6.12.48+deb13-amd64") == "trixie"
    assert kspec.guess_dist("5.10.0-32-amd64") == "bullseye"
    assert kspec.guess_dist("7.2.13+deb14-amd64") == "sid"
    assert set(kspec.parse_spec("6.1.0-1-amd64").dists()) == set(kspec.DISTS)  # exact releases: all, best guess first
    assert kspec.parse_spec("9.9").dists() == list(kspec.DISTS)


def test_releases_need_image_and_headers_newest_first():
    names = [
        "linux-image-6.1.0-47-amd64",
        "linux-image-6.1.0-50-amd64",
        "linux-image-6.1.0-56-amd64",
        "linux-image-6.1.0-9-amd64",
        "linux-image-amd64",
        "linux-image-6.1.0-50-amd64-unsigned",
        "linux-headers-6.1.0-50-amd64",
        "linux-headers-6.1.0-9-amd64",
        "linux-headers-6.1.0-56-amd64",
        "linux-image-6.12-amd64",
    ]
    assert apt.releases_in(names, names) == ["6.1.0-56-amd64", "6.1.0-50-amd64", "6.1.0-9-amd64"]


def test_depends_kernel_parts_and_compiler():
    sid = (
        "gcc-16-for-host, linux-base (>= 4.12~), linux-base-7.2.13+deb14-amd64 (= 7.2.13-1), "
        "linux-headers-7.2.13+deb14-common (= 7.2.13-1), linux-kbuild-7.2.13+deb14"
    )
    assert apt.kernel_parts(sid) == [
        ("linux-base-7.2.13+deb14-amd64", "7.2.13-1"),
        ("linux-headers-7.2.13+deb14-common", "7.2.13-1"),
        ("linux-kbuild-7.2.13+deb14", None),
    ]
    assert apt.compiler_of(sid) == "gcc-16-for-host"
    bookworm = (
        "linux-headers-6.1.0-56-common (= 6.1.192-2), linux-kbuild-6.1 (= 6.1.192-2), "
        "linux-compiler-gcc-12-x86 (>= 6.1.192-2)"
    )
    assert apt.kernel_parts(bookworm) == [
        ("linux-headers-6.1.0-56-common", "6.1.192-2"),
        ("linux-kbuild-6.1", "6.1.192-2"),
    ]
    assert apt.compiler_of(bookworm) == "gcc-12"
    image = (
        "dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, "
        "linux-modules-7.2.13+deb14-amd64 (= 7.2.13-1)"
    )
    assert apt.kernel_parts(image) == [("linux-modules-7.2.13+deb14-amd64", "7.2.13-1")]
