"""Study experiments: each proves one page-fault mechanism on a buffer of known size (pfharness study).

    python3 experiment.py thp on|off [PAGES]       huge pages on or off for the same aligned walk
    python3 experiment.py fork read|write [PAGES]  a parent writes PAGES pages, forks; the child reads or writes them
    python3 experiment.py cache [PAGES]            one child maps a file after the page cache is dropped, a second after

thp: a private anonymous buffer of PAGES pages (default 4096: 16 MiB), 2 MiB-aligned, advised MADV_HUGEPAGE
(on) or MADV_NOHUGEPAGE (off), one byte written per page. "on" sets the guest's THP mode to madvise for the
walk and restores it after, so the result does not depend on the mode the guest booted with: PAGES / 512
huge-page faults on, PAGES faults off.
fork: the parent writes each of PAGES (default 1024) pages of a private anonymous buffer (MADV_NOHUGEPAGE),
forks; the child reads (or writes) one byte per page and exits. fork copies the parent's page table for
anonymous memory, write-protected: reads take no fault, each write one (copy-on-write).
cache: a file of the host's root (cc1, else the largest shared library in /usr/lib/x86_64-linux-gnu), at most
PAGES (default 4096) pages of it, read one byte per page through mmap in two children one after the other:
the first after `sync; echo 3 > /proc/sys/vm/drop_caches` (cold: major faults), the second right after (warm).
Prints what it did and, for each part, what the process's own fault counts rose by (getrusage: majflt, minflt,
counted as the kernel's mm_account_fault counts them) and the machine's /proc/vmstat counters (pgfault,
pgmajfault, thp_fault_alloc): oracles for the records.
"""

import ctypes
import glob
import mmap
import os
import resource
import sys

PAGE = 4096
HUGE = 2 << 20
THP = "/sys/kernel/mm/transparent_hugepage/enabled"
VMSTAT_KEYS = ("pgfault", "pgmajfault", "thp_fault_alloc")


def vmstat() -> dict:
    with open("/proc/vmstat") as f:
        pairs = (line.split() for line in f)
        return {k: int(v) for k, v in pairs if k in VMSTAT_KEYS}


def counters() -> dict:
    """The machine's /proc/vmstat counters and this process's own fault counts (getrusage: majflt, minflt)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {**vmstat(), "majflt": own.ru_majflt, "minflt": own.ru_minflt}


def delta(before: dict) -> str:
    """What the counters rose by since `before`: this process's majflt and minflt, the machine's vmstat."""
    after = counters()
    return " ".join(f"{k}=+{after[k] - before[k]}" for k in ("majflt", "minflt", *VMSTAT_KEYS) if k in after)


def aligned(size: int, advice: int):
    """`size` bytes of private anonymous memory starting on a 2 MiB boundary, and nothing around them mapped
    with them (the rest of the larger mapping made to find the boundary is unmapped), advised `advice`."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    prot, flags = mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    raw = libc.mmap(None, size + HUGE, prot, flags, -1, 0)
    if raw in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap")
    start = raw + (-raw % HUGE)
    if start > raw:
        libc.munmap(raw, start - raw)
    if raw + HUGE > start:
        libc.munmap(start + size, raw + HUGE - start)
    if libc.madvise(start, size, advice) != 0:
        raise OSError(ctypes.get_errno(), "madvise")
    return (ctypes.c_char * size).from_address(start), start


def maps(start: int, size: int) -> None:
    """The anonymous mappings of /proc/self/maps within 4 MiB of [start, start + size)."""
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(v, 16) for v in line.split()[0].split("-"))
            if lo < start + size + (4 << 20) and hi > start - (4 << 20) and len(line.split()) == 5:
                print("  " + line.rstrip())


def thp(mode: str, pages: int) -> int:
    with open(THP) as f:
        booted = f.read().split("[")[1].split("]")[0]
    if mode == "on":
        with open(THP, "w") as f:
            f.write("madvise")
    try:
        buffer, start = aligned(pages * PAGE, mmap.MADV_HUGEPAGE if mode == "on" else mmap.MADV_NOHUGEPAGE)
        before = counters()
        for page in range(pages):
            buffer[page * PAGE] = b"\x01"
        print(f"thp {mode}: {pages} pages at 0x{start:x} written (THP mode {booted}); {delta(before)}")
        maps(start, pages * PAGE)
    finally:
        if mode == "on":
            with open(THP, "w") as f:
                f.write(booted)
    return 0


def fork(mode: str, pages: int) -> int:
    buffer, start = aligned(pages * PAGE, mmap.MADV_NOHUGEPAGE)
    for page in range(pages):
        buffer[page * PAGE] = b"\x01"
    before = counters()
    child = os.fork()
    if child == 0:
        mine = counters()
        if mode == "write":
            for page in range(pages):
                buffer[page * PAGE] = b"\x02"
        else:
            total = sum(buffer[page * PAGE][0] for page in range(pages))
            assert total == pages
        print(f"fork {mode}: the child {mode}s {pages} pages at 0x{start:x}; the child's {delta(mine)}")
        sys.stdout.flush()  # os._exit does not flush
        os._exit(0)
    _, status = os.waitpid(child, 0)
    print(f"fork {mode}: the child's status {status}; the parent's {delta(before)}")
    maps(start, pages * PAGE)
    return 0 if status == 0 else 1


def cache_file() -> str:
    found = sorted(glob.glob("/usr/lib/gcc/x86_64-linux-gnu/*/cc1"))
    if found:
        return found[-1]
    libs = glob.glob("/usr/lib/x86_64-linux-gnu/*.so*")
    return max((p for p in libs if os.path.isfile(p)), key=os.path.getsize)


def read_in_child(path: str, pages: int, cold: bool) -> None:
    child = os.fork()
    if child == 0:
        if cold:
            os.sync()
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3")
        with open(path, "rb") as f:
            size = min(os.fstat(f.fileno()).st_size // PAGE, pages) * PAGE
            m = mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ)
            before = counters()
            sum(m[i] for i in range(0, size, PAGE))
            print(f"cache {'cold' if cold else 'warm'}: {size // PAGE} pages of {path} read; {delta(before)}")
            sys.stdout.flush()  # os._exit does not flush
        os._exit(0)
    os.waitpid(child, 0)


def cache(pages: int) -> int:
    path = cache_file()
    read_in_child(path, pages, cold=True)
    read_in_child(path, pages, cold=False)
    return 0


def main() -> int:
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "thp" and len(sys.argv) > 2 and sys.argv[2] in ("on", "off"):
        return thp(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 4096)
    if what == "fork" and len(sys.argv) > 2 and sys.argv[2] in ("read", "write"):
        return fork(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1024)
    if what == "cache":
        return cache(int(sys.argv[2]) if len(sys.argv) > 2 else 4096)
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
