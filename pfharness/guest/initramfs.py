"""The guest's initramfs: a static busybox, the kernel modules needed to mount
the host root over virtio-9p (plus overlayfs), a ``/modules.order`` list telling
``/init`` what to ``insmod`` in which order, and ``/init`` itself.

Written with the cpio writer (guest/cpio.py), so the same inputs give
byte-identical archives; cached by a digest of its inputs.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import lzma
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import zstandard

from ..errors import SetupError
from .cpio import CpioEntry, newc_archive, with_parent_dirs

__all__ = [
    "DEFAULT_MODULES",
    "INIT_APPLETS",
    "MODULE_SIG_MAGIC",
    "InitramfsError",
    "build_initramfs",
    "modules_closure",
    "parse_modules_dep",
    "strip_module_signature",
]


class InitramfsError(SetupError):
    """The initramfs could not be built: a kernel's modules or busybox are missing or unreadable."""


#: Modules the guest needs before it can mount the host root. virtio_pci
#: serves pc/q35.
DEFAULT_MODULES: tuple[str, ...] = (
    "virtio_pci",
    "9pnet_virtio",
    "9p",
    "overlay",
    "virtio_console",  # the virtio-serial ports of the protocol and the workload's output
)

#: Busybox applets symlinked into /bin of the initramfs (the ones /init uses).
INIT_APPLETS: tuple[str, ...] = (
    "sh",
    "cat",
    "echo",
    "mkdir",
    "mount",
    "umount",
    "insmod",
    "chroot",
    "setsid",
    "poweroff",
    "sleep",
    "ls",
    "dmesg",
    "stty",
    "env",
    "ip",
    "ln",
)

#: Bumped whenever the archive layout changes, so stale caches get rebuilt.
_LAYOUT_VERSION = "5"

# --------------------------------------------------------------------------
# Kernel modules
# --------------------------------------------------------------------------

_MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")


def _module_name(relpath: str) -> str:
    """Canonical module name of a modules.dep path ('-' becomes '_')."""
    base = PurePosixPath(relpath).name
    for suffix in _MODULE_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


def parse_modules_dep(modules_dir: Path) -> dict[str, list[str]]:
    """Parse ``modules.dep`` into {module path: [dependency paths]}."""
    dep_file = modules_dir / "modules.dep"
    try:
        text = dep_file.read_text()
    except OSError as exc:
        raise InitramfsError(
            f"cannot read {dep_file} ({exc.strerror or exc}): reinstall the kernel's modules "
            f"(`apt-get install --reinstall linux-image-{modules_dir.name}`) or run `depmod {modules_dir.name}`"
        ) from exc
    deps: dict[str, list[str]] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        mod, _, rest = line.partition(":")
        deps[mod.strip()] = rest.split()
    return deps


def builtin_modules(modules_dir: Path) -> set[str]:
    """Names of the modules built into the kernel (``modules.builtin``; empty when absent)."""
    try:
        text = (modules_dir / "modules.builtin").read_text()
    except OSError:
        return set()
    return {_module_name(line.strip()) for line in text.splitlines() if line.strip()}


def _resolve_names(deps: dict[str, list[str]], names: Sequence[str], modules_dir: Path) -> list[str]:
    """Map module names (e.g. '9pnet_virtio') to their modules.dep paths; built-in ones need none."""
    by_name = {_module_name(path): path for path in deps}
    builtin = builtin_modules(modules_dir)
    wanted = [n.replace("-", "_") for n in names]
    missing = [n for n in wanted if n not in by_name and n not in builtin]
    if missing:
        raise InitramfsError(
            f"the kernel in {modules_dir} has no module {', '.join(missing)} (neither in modules.dep nor "
            "built in): the VM needs virtio-pci, 9p, overlayfs and virtio-console; "
            "boot a Debian kernel or one configured with them"
        )
    return [by_name[n] for n in wanted if n in by_name]


def _topo_order(deps: dict[str, list[str]], roots: Sequence[str]) -> list[str]:
    """Depth-first order of ``roots`` and their deps, dependencies first (bounded by the number of modules)."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(mod: str) -> None:
        if state.get(mod) == "done":
            return
        if state.get(mod) == "active":
            raise InitramfsError(f"modules.dep has a dependency cycle at {mod}: run depmod again")
        state[mod] = "active"
        for dep in deps.get(mod, []):
            visit(dep)
        state[mod] = "done"
        order.append(mod)

    for root in roots:
        visit(root)
    return order


def modules_closure(modules_dir: Path, names: list[str]) -> list[Path]:
    """Resolve ``names`` and all their dependencies from ``modules.dep``.

    Returns absolute paths under ``modules_dir`` in load order (dependencies
    first). Modules may be compressed (.ko.xz, .ko.gz, .ko.zst).
    """
    deps = parse_modules_dep(modules_dir)
    order = _topo_order(deps, _resolve_names(deps, names, modules_dir))
    paths = [modules_dir / rel for rel in order]
    for path in paths:
        if not path.is_file():
            raise InitramfsError(
                f"{path} is listed in modules.dep but missing: reinstall the kernel's modules "
                f"(`apt-get install --reinstall linux-image-{modules_dir.name}`)"
            )
    return paths


def _zstd_decompress(raw: bytes, path: Path) -> bytes:
    try:
        return zstandard.ZstdDecompressor().stream_reader(raw).read()
    except zstandard.ZstdError as exc:
        raise InitramfsError(f"{path} is not a valid zstd file ({exc}): reinstall the kernel's modules") from exc


def _read_module(path: Path) -> tuple[str, bytes]:
    """Return (basename as .ko, uncompressed bytes) of a module file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InitramfsError(f"cannot read {path} ({exc.strerror or exc}): check its permissions") from exc
    name = path.name
    try:
        if name.endswith(".ko.xz"):
            return name[:-3], lzma.decompress(raw)
        if name.endswith(".ko.gz"):
            return name[:-3], gzip.decompress(raw)
    except (lzma.LZMAError, OSError, EOFError) as exc:
        raise InitramfsError(
            f"{path} is not a valid compressed module ({exc}): reinstall the kernel's modules"
        ) from exc
    if name.endswith(".ko.zst"):
        return name[:-4], _zstd_decompress(raw, path)
    if name.endswith(".ko"):
        return name, raw
    raise InitramfsError(f"{path} is not a kernel module (.ko, .ko.xz, .ko.gz or .ko.zst)")


# --------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------


def _base_entries(busybox: Path, init_script: str) -> list[CpioEntry]:
    """Directories, device nodes, busybox + applet links, and /init."""
    try:
        bb = busybox.read_bytes()
    except OSError as exc:
        raise InitramfsError(
            f"cannot read busybox at {busybox} ({exc.strerror or exc}): "
            "install it with `apt-get install busybox-static`"
        ) from exc
    if not bb.startswith(b"\x7fELF"):
        raise InitramfsError(
            f"{busybox} is not a program (no ELF header): "
            "reinstall it with `apt-get install --reinstall busybox-static`"
        )
    entries = [CpioEntry.directory(d) for d in ("bin", "dev", "proc", "sys", "tmp", "newroot", "lower", "rw")]
    entries += [
        CpioEntry.chardev("dev/console", 5, 1, 0o600),
        CpioEntry.chardev("dev/null", 1, 3, 0o666),
        CpioEntry.file("bin/busybox", bb, 0o755),
    ]
    entries += [CpioEntry.symlink(f"bin/{a}", "busybox") for a in INIT_APPLETS]
    entries.append(CpioEntry.file("init", init_script.encode(), 0o755))
    return entries


#: What ends a signed module (scripts/sign-file): the signature, a struct module_signature
#: (12 bytes: algo, hash, id_type, signer_len, key_id_len, 3 pad bytes, be32 sig_len), this magic.
MODULE_SIG_MAGIC = b"~Module signature appended~\n"
_SIG_INFO_LEN = 12


def strip_module_signature(data: bytes) -> bytes:
    """The module without its appended signature (unchanged when it has none).

    The kernel checks a signature it finds (0.07 s for the eleven modules under TCG) and, when
    there is none and signatures are not enforced (Debian's default), only notes the module as
    unsigned: the taint ("E") that loading pf_probe_B, itself unsigned, adds anyway.
    """
    if not data.endswith(MODULE_SIG_MAGIC) or len(data) < len(MODULE_SIG_MAGIC) + _SIG_INFO_LEN:
        return data
    info = data[-len(MODULE_SIG_MAGIC) - _SIG_INFO_LEN : -len(MODULE_SIG_MAGIC)]
    signed_part = len(MODULE_SIG_MAGIC) + _SIG_INFO_LEN + int.from_bytes(info[8:12], "big") + info[3] + info[4]
    if signed_part >= len(data):
        return data  # not a signature this function understands: leave the module as it is
    return data[:-signed_part]


def _module_entries(release: str, paths: Sequence[Path]) -> list[CpioEntry]:
    """Module files (their signatures stripped) under lib/modules/<release>/ plus /modules.order."""
    entries: list[CpioEntry] = []
    order_lines: list[str] = []
    for path in paths:
        name, data = _read_module(path)
        data = strip_module_signature(data)
        dest = f"lib/modules/{release}/{name}"
        entries.append(CpioEntry.file(dest, data, 0o644))
        order_lines.append("/" + dest)
    text = "".join(line + "\n" for line in order_lines)
    entries.append(CpioEntry.file("modules.order", text.encode(), 0o644))
    return entries


def _inputs_digest(release: str, paths: Sequence[Path], busybox: Path, init_script: str) -> str:
    """Hash of everything the archive depends on (paths, sizes, mtimes)."""
    h = hashlib.sha256()
    h.update(f"{_LAYOUT_VERSION}\0{release}\0".encode())
    h.update(init_script.encode() + b"\0")
    for path in (busybox, *paths):
        try:
            st = path.stat()
        except OSError as exc:
            fix = (
                "install it with `apt-get install busybox-static`"
                if path == busybox
                else f"reinstall the kernel's modules (`apt-get install --reinstall linux-image-{release}`)"
            )
            raise InitramfsError(f"cannot read {path} ({exc.strerror or exc}): {fix}") from exc
        h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


def _cached_closure(modules_dir: Path, names: list[str], cache: Path) -> list[Path]:
    """modules_closure(), kept in `cache` under a key of modules.dep's and modules.builtin's size and
    mtime (depmod rewrites both): resolving it reads the whole modules.dep, about 0.05 s of every run's
    start. A listed module that has gone missing still fails, in _inputs_digest's stat."""
    key = hashlib.sha256(f"{_LAYOUT_VERSION}\0{modules_dir}\0{names}\0".encode())
    for name in ("modules.dep", "modules.builtin"):
        with contextlib.suppress(OSError):
            st = (modules_dir / name).stat()
            key.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    saved = cache / f"closure-{modules_dir.name}-{key.hexdigest()[:16]}.txt"
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return [modules_dir / line for line in saved.read_text().splitlines() if line]
    paths = modules_closure(modules_dir, names)
    with contextlib.suppress(OSError):
        _write_atomic(saved, "".join(f"{p.relative_to(modules_dir)}\n" for p in paths).encode())
    return paths


def _write_atomic(out: Path, data: bytes) -> None:
    """Write ``data`` to ``out`` via a private temporary file + rename."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)


def build_initramfs(
    release: str,
    out: Path,
    *,
    modules_root: Path = Path("/lib/modules"),
    busybox: Path = Path("/bin/busybox"),
    init_script: str,
    modules: Sequence[str] = DEFAULT_MODULES,
) -> Path:
    """Write the guest initramfs for kernel ``release`` to ``out``.

    The file written is ``out`` with the inputs' digest added to its name (returned);
    skips the rebuild when it exists and its stamp file (name + ".stamp") records the
    same digest. The archive is not compressed: under TCG a
    plain newc archive (3.4 MB) boots as fast as a gzipped one (1.4 MB), and the
    gunzip step is saved.
    """
    modules_dir = modules_root / release
    if not modules_dir.is_dir():
        raise InitramfsError(
            f"{modules_dir} does not exist: install the modules of kernel {release} "
            f"(`apt-get install linux-image-{release}`)"
        )
    paths = _cached_closure(modules_dir, list(modules), out.parent)
    digest = _inputs_digest(release, paths, busybox, init_script)
    # The name holds the digest: worktrees and runs sharing the cache, with different init scripts or
    # module lists, never overwrite one another's archive (nor one that a QEMU is about to read).
    out = out.with_name(f"{out.stem}-{digest[:16]}{out.suffix}")
    stamp = out.with_name(out.name + ".stamp")
    if out.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return out
    entries = _base_entries(busybox, init_script)
    entries += _module_entries(release, paths)
    _write_atomic(out, newc_archive(with_parent_dirs(entries)))
    _write_atomic(stamp, digest.encode())
    return out
