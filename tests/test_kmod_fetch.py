"""pfharness.kmod.fetch: Debian kernels fetched into the cache.

The unit tests need no network (fake trees, fake apt answers). Those marked `network`
really fetch from the Debian archive named in this machine's apt sources; with
`kbuild` too they also build the modules against what they fetched.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pfharness import assets, proc
from pfharness.errors import KernelNotFound, SetupError
from pfharness.guest import initramfs
from pfharness.kernel import HOST_TOOLCHAIN, BuildRoot, Toolchain
from pfharness.kmod import apt, arrange, kbuild, kernels, toolchain
from pfharness.kmod import fetch as kf
from pfharness.kmod import spec as kspec

# A made-up archive (the .invalid top-level domain never resolves).
MAIN = "http://archive.invalid/debian"
SECURITY = "http://archive.invalid/debian-security"


def test_not_found_is_one_line_naming_the_request_and_what_exists():
    msg = kf.not_found_message(
        kspec.parse_spec("6.1.0-999-amd64"), {"bookworm": ["6.1.0-56-amd64", "6.1.0-50-amd64"], "sid": []}
    )
    assert "\n" not in msg
    assert "6.1.0-999-amd64" in msg and "bookworm+bookworm-security: 6.1.0-56-amd64, 6.1.0-50-amd64" in msg
    assert "sid: none" in msg
    many = kf.not_found_message(kspec.parse_spec("6.1"), {"bookworm": [f"6.1.0-{n}-amd64" for n in range(40)]})
    assert "(40 in all)" in many and "a 6.1 kernel (amd64)" in many


def _fake_apt(monkeypatch, offered: dict[str, list[str]]):
    """Apt with no network: update does nothing, pkgnames answers from `offered`."""
    monkeypatch.setattr(kf, "system_archive_uris", lambda *a: {"main": MAIN, "security": SECURITY})
    monkeypatch.setattr(apt.Apt, "update", lambda self, max_age=0: None)

    def pkgnames(self, prefix):
        rels = offered.get(self.dist, [])
        return sorted([f"linux-image-{r}" for r in rels] + [f"linux-headers-{r}" for r in rels])

    monkeypatch.setattr(apt.Apt, "pkgnames", pkgnames)


def test_fetch_of_a_release_no_suite_has_lists_what_exists(tmp_path, monkeypatch):
    _fake_apt(monkeypatch, {"bookworm": ["6.1.0-56-amd64", "6.12.117+deb12-amd64"], "sid": ["7.2.13+deb14-amd64"]})
    with pytest.raises(KernelNotFound) as e:
        kf.fetch("6.1.0-999-amd64", tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "6.1.0-999-amd64" in msg and "6.1.0-56-amd64" in msg and "7.2.13+deb14-amd64" in msg
    with pytest.raises(KernelNotFound, match=r"a 7\.3 kernel .*sid: 7\.2\.13\+deb14-amd64"):
        kf.fetch("7.3", tmp_path)


def test_network_failure_without_lists_is_a_setup_error(tmp_path, monkeypatch):
    monkeypatch.setattr(kf, "system_archive_uris", lambda *a: {"main": MAIN, "security": SECURITY})
    calls = []

    def fake_run(argv, **kw):
        calls.append(argv)
        return proc.Completed(
            tuple(argv),
            100,
            f"Err:1 {MAIN} bullseye InRelease\n  Could not resolve host\n"
            f"E: Failed to fetch {MAIN}/dists/bullseye/InRelease\n",
            "",
        )

    monkeypatch.setattr(proc, "run", fake_run)
    with pytest.raises(SetupError) as e:
        kf.fetch("5.10", tmp_path)
    msg = str(e.value)
    assert "bullseye" in msg and "archive.invalid" not in msg and "\n" not in msg
    assert calls and calls[0][-1] == "update"


# ----------------------------------------------------------------- the unpacked tree


def test_absolute_symlinks_become_relative_inside_the_root(tmp_path):
    root = tmp_path / "k"
    link = root / "lib" / "modules" / "R" / "build"
    assert arrange.relative_target(root, link, "/usr/src/linux-headers-R") == "../../../usr/src/linux-headers-R"
    assert arrange.relative_target(root, link, "../x") is None
    (root / "usr" / "lib" / "linux-kbuild-6.1" / "scripts").mkdir(parents=True)
    hdr = root / "usr" / "src" / "linux-headers-R"
    hdr.mkdir(parents=True)
    (hdr / "scripts").symlink_to("/usr/lib/linux-kbuild-6.1/scripts")
    (hdr / "rel").symlink_to("scripts")
    assert arrange.rewrite_absolute_symlinks(root) == 1
    assert os.readlink(hdr / "scripts") == "../../lib/linux-kbuild-6.1/scripts"
    assert (hdr / "scripts").resolve() == (root / "usr/lib/linux-kbuild-6.1/scripts").resolve()
    assert os.readlink(hdr / "rel") == "scripts"


def test_headers_makefile_names_the_tree_it_is_in(tmp_path):
    src = tmp_path / "cache" / "usr" / "src"
    common, flavour = src / "linux-headers-R-common", src / "linux-headers-R-amd64"
    common.mkdir(parents=True)
    flavour.mkdir(parents=True)
    (common / "Makefile").write_text("all:\n\t@echo included out=$(KBUILD_OUTPUT)\n")
    original = "KBUILD_OUTPUT=/usr/src/linux-headers-R-amd64\ninclude /usr/src/linux-headers-R-common/Makefile\n"
    text = arrange.rewrite_makefile_paths(original)
    assert "/usr/src/" not in text and arrange.rewrite_makefile_paths(text) == text
    assert arrange.rewrite_makefile_paths("include foo\n") == "include foo\n"
    (flavour / "Makefile").write_text(text)
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    r = proc.run(["make", "-s", "-C", flavour], merge_stderr=True)
    assert r.returncode == 0, r.stdout
    assert f"included out={flavour.resolve()}" in r.stdout


def _fake_debian_tree(root: Path, release: str, merged_usr: bool) -> None:
    """What dpkg-deb -x leaves of image + headers packages (bookworm layout, or sid's /usr/lib/modules)."""
    mods = root / ("usr/lib/modules" if merged_usr else "lib/modules") / release
    (mods / "kernel" / "fs").mkdir(parents=True)
    (mods / "kernel" / "fs" / "x.ko.xz").write_bytes(b"")
    if merged_usr:
        (mods / "vmlinuz").write_bytes(b"image")
        (mods / "System.map").write_text("ffffffff81000000 T _text\n")
        (mods / "build").symlink_to(f"../../../src/linux-headers-{release}")
        (mods / "source").symlink_to(f"../../../src/linux-headers-{release}-common")
    else:
        (root / "boot").mkdir()
        (root / "boot" / f"vmlinuz-{release}").write_bytes(b"image")
        (mods / "build").symlink_to(f"/usr/src/linux-headers-{release}")
    hdr = root / "usr" / "src" / f"linux-headers-{release}"
    hdr.mkdir(parents=True)
    (root / "usr" / "src" / f"linux-headers-{release}-common").mkdir()
    (hdr / "Makefile").write_text(f"include /usr/src/linux-headers-{release}-common/Makefile\n")
    (root / "usr" / "lib" / "linux-kbuild-X" / "scripts").mkdir(parents=True)
    (hdr / "scripts").symlink_to("/usr/lib/linux-kbuild-X/scripts")


@pytest.mark.parametrize("merged_usr", [False, True], ids=["bookworm-layout", "sid-layout"])
def test_arrange_gives_the_fixed_layout_discover_finds(tmp_path, merged_usr):
    release = "7.2.13+deb14-amd64" if merged_usr else "6.1.0-56-amd64"
    root = tmp_path / "kernels" / release
    _fake_debian_tree(root, release, merged_usr)
    headers = arrange.arrange(root, release)
    mods = root / "lib" / "modules" / release
    assert os.readlink(mods / "build") == f"../../../usr/src/linux-headers-{release}"
    assert (mods / "build").resolve() == headers.resolve()
    assert (root / "boot" / f"vmlinuz-{release}").read_bytes() == b"image"
    assert not [p for p in root.rglob("*") if p.is_symlink() and os.readlink(p).startswith("/")]
    if merged_usr:
        assert (mods / "source").resolve() == (root / "usr/src" / f"linux-headers-{release}-common").resolve()
    (mods / "modules.dep").write_text("")
    found = kernels.discover(root)
    assert [k.release for k in found] == [release] and found[0].usable
    # the tree still works after the cache moves (every link is relative)
    moved = tmp_path / "elsewhere"
    root.rename(moved)
    assert kernels.discover(moved)[0].usable


def _fake_fetched(cache: Path, release: str) -> Path:
    root = cache / "kernels" / release
    _fake_debian_tree(root, release, False)
    arrange.arrange(root, release)
    (root / "lib" / "modules" / release / "modules.dep").write_text("")
    (root / "usr" / "src" / f"linux-headers-{release}-common" / "Makefile").write_text("")
    (root / arrange.MARKER).write_text(
        json.dumps({"layout": arrange.LAYOUT_VERSION, "release": release, "dist": "bookworm", "compiler": "gcc-12"})
    )
    return root


def test_cached_exact_release_needs_no_apt(tmp_path, monkeypatch):
    _fake_fetched(tmp_path, "6.1.0-56-amd64")
    monkeypatch.setattr(kf, "system_archive_uris", lambda *a: pytest.fail("apt was consulted"))
    got = kf.fetch("6.1.0-56-amd64", tmp_path)
    k = got.kernel
    assert got.cached and k.release == "6.1.0-56-amd64" and got.seconds < 1
    assert k.headers == k.modules_dir / "build" and k.image.name == "vmlinuz-6.1.0-56-amd64"
    assert (k.origin.kind, k.origin.dist, k.origin.compiler) == ("fetched", "bookworm", "gcc-12")
    assert [x.release for x in kernels.in_cache(tmp_path)] == ["6.1.0-56-amd64"]


def test_incomplete_fetch_is_not_listed(tmp_path):
    root = _fake_fetched(tmp_path, "6.1.0-56-amd64")
    (root / "lib" / "modules" / "6.1.0-56-amd64" / "modules.dep").unlink()
    (tmp_path / "kernels" / ".6.1.0-50-amd64.123.tmp").mkdir()
    assert kernels.in_cache(tmp_path) == []
    assert kernels.cached(root) is None


def _installed(root: Path, release: str) -> Path:
    (root / "boot").mkdir(parents=True, exist_ok=True)
    (root / "boot" / f"vmlinuz-{release}").write_bytes(b"MZ")
    build = root / "lib" / "modules" / release / "build"
    build.mkdir(parents=True)
    (build / "Makefile").write_text("# kbuild\n")
    return root


def test_select_sees_fetched_kernels_by_release_and_series(tmp_path):
    host = _installed(tmp_path / "host", "6.1.0-57-amd64")
    cache = tmp_path / "cache"
    for release in ("5.10.0-32-amd64", "6.1.0-57-rt-amd64", "6.12.117+deb12-amd64", "6.12.48+deb12-amd64"):
        _fake_fetched(cache, release)
    found = kernels.available(host, cache)
    assert [(k.release, k.installed) for k in found][:2] == [("6.1.0-57-amd64", True), ("6.12.117+deb12-amd64", False)]
    assert kernels.select(None, host, cache).release == "6.1.0-57-amd64"  # the default stays the installed one
    assert kernels.select("6.12", host, cache).release == "6.12.117+deb12-amd64"  # the newest of the series
    assert kernels.select("6.12.48+deb12-amd64", host, cache).origin.root == cache / "kernels" / "6.12.48+deb12-amd64"
    assert kernels.select("6.1-rt", host, cache).release == "6.1.0-57-rt-amd64"
    assert kernels.select("6.1", host, cache).release == "6.1.0-57-amd64"  # not the -rt flavour
    five = kernels.select("5.10", host, cache)
    assert five.usable and not five.installed and five.modules_dir == five.origin.root / "lib/modules/5.10.0-32-amd64"


def test_select_of_a_series_nothing_here_has_names_what_exists_and_the_fetch(tmp_path):
    host = _installed(tmp_path / "host", "6.1.0-57-amd64")
    cache = tmp_path / "cache"
    _fake_fetched(cache, "5.10.0-32-amd64")
    with pytest.raises(KernelNotFound) as e:
        kernels.select("7.2", host, cache)
    msg = str(e.value)
    assert "\n" not in msg and "pfharness kernels fetch 7.2" in msg
    assert "installed: 6.1.0-57-amd64" in msg and "fetched: 5.10.0-32-amd64" in msg
    unknown = kernels.select("7.2.1+deb14-amd64", host, cache)  # an exact release: the package names
    with pytest.raises(KernelNotFound, match=r"pfharness kernels fetch 7\.2\.1\+deb14-amd64"):
        unknown.require_image()


def _fixdep(headers: Path, message: str) -> None:
    fixdep = headers / "scripts" / "basic" / "fixdep"
    fixdep.parent.mkdir(parents=True, exist_ok=True)
    fixdep.write_text(f"#!/bin/sh\ncat >&2 <<'EOF'\n{message}\nEOF\nexit 1\n")
    fixdep.chmod(0o755)


def test_a_fetched_kernels_toolchain_is_resolved_with_it(tmp_path, monkeypatch):
    """select() gives the toolchain with the kernel: the host's (CC=gcc-N when its compiler is missing), or
    a build root of its distribution when its kbuild tools do not run here; an installed kernel: the host's."""
    cache = tmp_path / "cache"
    root = _fake_fetched(cache, "5.10.0-32-amd64")
    monkeypatch.setattr(toolchain, "host_gcc_major", lambda: 12)
    monkeypatch.setattr(toolchain.shutil, "which", lambda name: "/usr/bin/gcc-12" if name == "gcc-12" else None)
    kernel = kernels.select("5.10", tmp_path / "nothing", cache)
    assert kernel.origin.compiler == "gcc-12" and kernel.toolchain == HOST_TOOLCHAIN  # its compiler is installed
    (root / arrange.MARKER).write_text(json.dumps({"layout": 1, "release": kernel.release, "compiler": "gcc-10"}))
    assert kernels.select("5.10", tmp_path / "nothing", cache).toolchain == Toolchain(("CC=gcc-12",))  # a newer gcc
    _fixdep(kernel.require_headers(), "fixdep: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found")
    in_root = kernels.select("5.10", tmp_path / "nothing", cache)
    assert in_root.toolchain == Toolchain(build_root=BuildRoot("bullseye", "gcc-10", root))  # guessed from 5.10.0-
    installed = kernels.select(None, _installed(tmp_path / "host", "6.1.0-57-amd64"), cache)
    assert installed.installed and installed.toolchain == HOST_TOOLCHAIN


def test_toolchain_probes_once_per_kernel(tmp_path, monkeypatch):
    """Resolving a fetched kernel runs its fixdep once; building with it runs no probe again."""
    cache = tmp_path / "cache"
    _fake_fetched(cache, "6.1.0-56-amd64")
    runs: list[list[str]] = []
    real = proc.run
    monkeypatch.setattr(proc, "run", lambda argv, **kw: runs.append([str(a) for a in argv]) or real(argv, **kw))
    [kernel] = kernels.in_cache(cache)
    _fixdep(kernel.require_headers(), "Usage: fixdep <depfile> <target> <cmdline>")
    runs.clear()
    kernel = kernels.select("6.1", tmp_path / "nothing", cache)
    assert [r for r in runs if r[0].endswith("fixdep")] == [[str(kernel.headers / "scripts/basic/fixdep")]]
    runs.clear()
    toolchain.make_argv(kernel.toolchain, tmp_path, ["modules"])
    assert runs == []


def test_make_argv_on_the_host_and_in_a_build_root(tmp_path, monkeypatch):
    root = _fake_fetched(tmp_path, "6.1.0-56-amd64")
    src = tmp_path / "src"
    src.mkdir()
    monkeypatch.setattr(toolchain.proc, "require_program", lambda name, package: f"/usr/bin/{name}")
    args = ["-C", "/k", f"M={src}", "modules"]
    assert toolchain.make_argv(Toolchain(("CC=gcc-12",)), src, args) == ["/usr/bin/make", *args, "CC=gcc-12"]
    made: list[tuple] = []
    monkeypatch.setattr(
        toolchain, "ensure_buildroot", lambda cache, dist, cc: made.append((dist, cc)) or (cache / "br" / dist, 0.0)
    )
    argv = toolchain.make_argv(Toolchain(build_root=BuildRoot("sid", "gcc-16", root)), src, args, tmp_path)
    sep = argv.index("--")
    assert argv[0] == "/usr/bin/bwrap" and argv[sep + 1 :] == ["make", *args]
    prefix = argv[:sep]
    assert ["--bind", str(tmp_path / "br" / "sid"), "/"] == prefix[1:4]
    assert ["--ro-bind", str(root.resolve()), str(root.resolve())] == prefix[10:13]
    assert ["--bind", str(src.resolve()), str(src.resolve())] == prefix[13:16]
    assert made == [("sid", "gcc-16")]  # the root is made (or found) when building, not when resolving


def test_host_make_vars_are_refused_when_kbuild_tools_need_a_newer_glibc(tmp_path, monkeypatch):
    headers = tmp_path / "headers"
    _fixdep(headers, "fixdep: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found")
    assert toolchain.host_make_vars(headers, "gcc-12") is None
    _fixdep(headers, "Usage: fixdep <depfile> <target> <cmdline>")
    host = toolchain.host_gcc_major()
    assert (toolchain.host_make_vars(headers, "gcc-12") is not None) == (host is not None and host >= 12)
    if shutil.which("gcc-12"):
        assert toolchain.host_make_vars(headers, "gcc-12") == ()
    monkeypatch.setattr(toolchain, "host_gcc_major", lambda: 12)
    if not shutil.which("gcc-10") and shutil.which("gcc-12"):
        assert toolchain.host_make_vars(headers, "gcc-10") == ("CC=gcc-12",)  # 5.10's headers name gcc-10
    if not shutil.which("gcc-16"):
        assert toolchain.host_make_vars(headers, "gcc-16-for-host") is None  # sid's 7.2: a build root


# ----------------------------------------------------------------- the real archive


@pytest.fixture(scope="module")
def cache():
    return assets.cache_dir()


@pytest.mark.network
def test_fetch_6_1_then_cached(cache):
    first = kf.fetch("6.1", cache)
    again = kf.fetch("6.1", cache)
    assert again.cached and again.kernel == first.kernel and again.seconds < 10
    exact = kf.fetch(first.kernel.release, cache)
    assert exact.cached and exact.seconds < 0.5
    found = kernels.discover(first.kernel.origin.root)
    assert [k.release for k in found] == [first.kernel.release] and found[0].usable
    assert first.kernel in kernels.in_cache(cache)


@pytest.mark.network
def test_fetch_of_a_missing_release_lists_the_suites_kernels(cache):
    with pytest.raises(KernelNotFound) as e:
        kf.fetch("6.1.0-999-amd64", cache)
    msg = str(e.value)
    assert "6.1.0-999-amd64" in msg and "bookworm" in msg and "-amd64" in msg.split("offered by", 1)[1]
    assert "\n" not in msg and "://" not in msg


@pytest.mark.network
@pytest.mark.kbuild
@pytest.mark.parametrize("spec", ["5.10", "6.1", "6.1-rt", "6.12", "7.2"])
def test_modules_build_against_each_fetched_kernel(cache, spec, tmp_path):
    k = kf.fetch(spec, cache).kernel
    assert initramfs.modules_closure(k.modules_dir, list(initramfs.DEFAULT_MODULES))
    built = kbuild.build(kbuild.BuildRequest(tmp_path, k, werror=True))
    assert "warning:" not in built.log, built.log[-4000:]
    for m in ("A", "B", "C"):
        assert built.modules[m] == tmp_path.resolve() / f"pf_probe_{m}.ko" and built.modules[m].is_file()


def test_what_is_listed_when_not_found():
    rels = [
        "7.2.13+deb14-amd64",
        "6.12.117+deb12-amd64",
        "6.12.117+deb12-rt-amd64",
        "6.12.117+deb12-cloud-amd64",
        "6.1.0-56-amd64",
        "6.1.0-56-rt-amd64",
        "6.1.0-56-cloud-amd64",
    ]
    assert kf.offered_like(kspec.parse_spec("6.1.0-999-amd64"), rels) == ["6.1.0-56-amd64"]
    assert kf.offered_like(kspec.parse_spec("6.1.0-999-rt-amd64"), rels) == ["6.1.0-56-rt-amd64"]
    assert kf.offered_like(kspec.parse_spec("6.5"), rels) == [
        "7.2.13+deb14-amd64",
        "6.12.117+deb12-amd64",
        "6.1.0-56-amd64",
    ]
    assert kf.offered_like(kspec.parse_spec("6.12-rt"), rels) == ["6.12.117+deb12-rt-amd64"]


def test_a_preempt_rt_kernel_boots_with_noirqdebug(tmp_path):
    from pfharness.guest import boot

    cache = tmp_path / "cache"
    for release, rt in (("6.1.0-57-rt-amd64", True), ("6.1.0-57-amd64", False)):
        root = _fake_fetched(cache, release)
        config = "CONFIG_X86_64=y\n" + ("CONFIG_PREEMPT_RT=y\n" if rt else "# CONFIG_PREEMPT_RT is not set\n")
        (root / "boot" / f"config-{release}").write_text(config)
    found = {k.release: boot.kernel_params(k) for k in kernels.in_cache(cache)}
    assert found == {"6.1.0-57-rt-amd64": ("noirqdebug",), "6.1.0-57-amd64": ()}
