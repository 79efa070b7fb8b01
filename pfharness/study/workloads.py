"""The study's workloads: what each runs, what it exercises, and how it is traced."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import assets
from ..results import output_format as fmt


@dataclass(frozen=True)
class Workload:
    """One workload of the study."""

    key: str  # short name, used in file names
    title: str
    kind: str  # what it exercises
    command: tuple[str, ...]
    unseen: str = ""  # what the module does not see
    timeout: float = 300.0
    follow: bool = True  # trace the processes it creates too (follow=1)
    modules: tuple[str, ...] = ()  # only with these modules (empty: every module the study uses)
    params: tuple[str, ...] = ()  # more module parameters
    why: str = ""  # why it is traced with fewer modules or more parameters (the report's header says)
    tag: str = ""  # its kind in a word, for the first table
    trend: str = ""  # the trend it shows, in a phrase without figures (the first table's last column)
    plot_like: str = ""  # a workload whose plot in report.txt shows what this one's would (its PNG only)


def workloads(build_dir: Path, kdir: Path, make_vars: tuple[str, ...] = ()) -> list[Workload]:
    """The study's workloads. `build_dir` holds the rendered module sources compiled by the first one
    (with `make_vars`, e.g. CC=gcc-12 for a fetched 5.10)."""
    kbuild = (
        "rm -rf /tmp/pfh-kbuild && mkdir /tmp/pfh-kbuild "
        '&& cp "$1"/pf_probe_A.c "$1"/pf_probe_B.c "$1"/pf_probe_C.c /tmp/pfh-kbuild/ '
        '&& echo "obj-m := pf_probe_A.o pf_probe_B.o pf_probe_C.o" >/tmp/pfh-kbuild/Kbuild '
        '&& kdir=$2 && shift 2 && exec make -s -C "$kdir" M=/tmp/pfh-kbuild modules "$@"'
    )
    iperf = "iperf3 -s -1 & sleep 1 && iperf3 -c 127.0.0.1 -t 3; wait"
    mmap_read = (
        "import mmap, os\n"
        "path, n = '/tmp/pfh-mmap', 4096\n"
        "with open(path, 'wb') as f:\n"
        "    f.write(bytes(4096 * n))\n"
        "with open(path, 'rb') as f:\n"
        "    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n"
        "    total = sum(m[i] for i in range(0, len(m), 4096))\n"
        "os.unlink(path)\n"
    )
    return [
        Workload(
            "kbuild",
            "kernel compilation (kbuild of pf_probe_A, B and C against the headers; make, gcc, cc1, as, ld, modpost "
            "all traced)",
            "compute and I/O",
            ("sh", "-c", kbuild, "pfh-kbuild", str(build_dir), str(kdir), *make_vars),
            timeout=1800.0,
            params=(f"max_regions={fmt.REGIONS_LIMIT}",),
            why="its ~380 processes have ~20 regions each, more than the default table (1,024) holds",
            tag="compile",
            trend="fresh memory, many programs",
        ),
        Workload(
            "sysbench-cpu",
            "sysbench cpu (prime numbers, 5 s)",
            "compute",
            ("sysbench", "cpu", "--time=5", "run"),
            tag="compute",
            trend="start-up, then still",
        ),
        Workload(
            "sysbench-memory",
            "sysbench memory (1 KiB blocks, 5 s)",
            "memory bandwidth",
            ("sysbench", "memory", "--time=5", "run"),
            tag="memory",
            trend="small block reused",
            plot_like="sysbench-cpu",
        ),
        Workload(
            "sysbench-memory-16M",
            "sysbench memory streaming over a 16 MiB block (256 MiB in all)",
            "memory bandwidth, large buffer",
            ("sysbench", "memory", "--memory-block-size=16M", "--memory-total-size=256M", "run"),
            tag="memory",
            trend="buffer zeroed once, reused",
        ),
        Workload(
            "sysbench-threads",
            "sysbench threads (4 threads contending on mutexes, 3 s)",
            "multi-threaded",
            ("sysbench", "threads", "--threads=4", "--time=3", "run"),
            tag="threads",
            trend="start-up, thread stacks",
        ),
        Workload(
            "iperf3",
            "iperf3 server and client over loopback, 3 s, as one traced tree",
            "network I/O",
            ("sh", "-c", iperf),
            tag="network",
            trend="start-up, buffers once",
        ),
        Workload(
            "walk-sequential",
            "Python: write 4096 fresh pages in order",
            "sequential memory walk",
            ("python3", str(assets.vm_file("walk.py")), "sequential", "4096"),
            tag="walk",
            trend="first touch, in order",
        ),
        Workload(
            "walk-random",
            "Python: write the same 4096 pages in random order",
            "random memory walk",
            ("python3", str(assets.vm_file("walk.py")), "random", "4096"),
            tag="walk",
            trend="first touch, at random",
        ),
        Workload(
            "mmap-read",
            "Python: write a 16 MiB file in /tmp, then read it through mmap one byte per page, in order",
            "memory-mapped file read (fault-around)",
            ("python3", "-c", mmap_read),
            tag="file",
            trend="fault-around: one in many",
        ),
        *experiments(),
    ]


#: The tag of the experiments: small programs that each prove one mechanism (the report's second table).
EXPERIMENT = "experiment"


def experiments() -> list[Workload]:
    """vm/experiment.py's runs, traced with pf_probe_B only (a repeat with C would prove nothing more)."""
    program = ("python3", str(assets.vm_file("experiment.py")))
    why = "an experiment proves its mechanism in one run"
    return [
        Workload(key, title, "experiment", (*program, *args), modules=("B",), why=why, tag=EXPERIMENT, timeout=120.0)
        for key, title, args in (
            (
                "thp-on",
                "Python: write 4096 pages of a 2 MiB-aligned buffer, huge pages on (madvise)",
                ("thp", "on", "4096"),
            ),
            ("thp-off", "Python: the same walk, huge pages off (MADV_NOHUGEPAGE)", ("thp", "off", "4096")),
            ("fork-read", "Python: write 1024 pages, fork; the child reads them", ("fork", "read", "1024")),
            ("fork-write", "Python: write 1024 pages, fork; the child writes them", ("fork", "write", "1024")),
            ("cache", "Python: read a file through mmap after dropping the page cache, then again", ("cache", "4096")),
        )
    ]


def mods_of(workload: Workload, modules: tuple[str, ...]) -> tuple[str, ...]:
    """The modules a workload is traced with: the study's, less those it is limited away from."""
    return tuple(m for m in modules if not workload.modules or m in workload.modules)
