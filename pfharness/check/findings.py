"""The ids of the module check's findings (docs/check.md explains each): the one vocabulary the
check and its test corpus (tests/student_modules/*/expected.toml) share."""

from __future__ import annotations

from enum import Enum


class _Described(str, Enum):
    """An id whose members also say what they mean in one line (X.meaning)."""

    meaning: str

    def __new__(cls, value: str, meaning: str) -> _Described:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member


class Finding(_Described):
    """A finding's id, and what it means in one line (Finding.X.meaning)."""

    # Build
    BUILD_FAILED = ("build-failed", "the module does not build on the chosen kernel")
    API_CHANGE = ("api-change", "a compiler error explained by a known kernel API change (detail names which)")
    BUILD_WARNING = ("build-warning", "the compiler warned")
    MAKEFILE_KDIR = ("makefile-kdir", "the Makefile takes the kernel from $(shell uname -r) (harmless here)")
    # Load
    NO_TPID_PARAM = ("no-tpid-param", "the module has no `tpid` parameter (the kernel ignored tpid=)")
    LOAD_FAILED = ("load-failed", "insmod failed")
    PROBE_SYMBOL = ("probe-symbol", "register_kprobe failed on a symbol that cannot be probed")
    # Run / unload
    KERNEL_SPLAT = ("kernel-splat", "Oops/BUG/KASAN/WARNING/soft lockup/RCU stall in the kernel log")
    VM_LOST = ("vm-lost", "the VM died (panic) or had to be killed (hang)")
    RMMOD_HUNG = ("rmmod-hung", "rmmod did not return within a bounded wait")
    PRINTK_FLOOD = ("printk-flood", "more than N kernel log lines per fault, or the log overwritten")
    # Error handling: two short steps after the main one (check/pid_steps.py)
    MISSING_PID = ("missing-pid", "loaded with the pid of no process: a splat, hang, failed rmmod or garbage")
    EXITED_PID = ("exited-pid", "its target exited while it was loaded: a splat, hang, failed rmmod or garbage")
    # A, against the oracle
    A_ADDRESSES = ("a-addresses", "printed / real / matched / missed / extra addresses, by page")
    A_MISSES_FAULTS = ("a-misses-faults", "fewer than ~90 % of the real faults' pages printed")
    A_EXTRA_FAULTS = ("a-extra-faults", "addresses of other processes printed")
    A_MISSES_THREADS = ("a-misses-threads", "the target's other threads' faults not seen (current->pid, not tgid)")
    # B, C
    PLOT_MISSING = ("plot-missing", "no plot found in the output at unload")
    PLOT_SIZE = ("plot-size", "rows x columns of the plot differ from 30 x 70")
    PLOT_NO_TITLE = ("plot-no-title", "the plot has no title line")
    PLOT_NO_LABELS = ("plot-no-labels", "the plot has no axis labels")
    PLOT_AGREEMENT = ("plot-agreement", "agreement of the plot's marks with the oracle's plot of the same records")
    # C
    C_SPLIT = ("c-split", "code / data / other split against the oracle's split")


class ApiChange(_Described):
    """The `detail` of an api-change finding: which kernel API change explains the compiler error."""

    FAULT_HANDLER = ("fault-handler-5.14", "struct kprobe lost .fault_handler (5.14)")
    PROC_OPS = ("proc-ops-5.6", "proc_create() takes struct proc_ops (5.6)")
    TIMESPEC = ("timespec-5.6", "getnstimeofday / struct timespec gone (5.6: ktime_get_ns())")
    JPROBE = ("jprobe-4.15", "jprobes gone (4.15)")
    DO_PAGE_FAULT = ("do-page-fault-5.8", "do_page_fault became exc_page_fault (5.8)")
    HANDLE_MM_FAULT_REGS = ("handle-mm-fault-regs-5.9", "handle_mm_fault() gained `regs` (5.9)")
    DIV64 = ("div64", "64-bit division in a 32-bit build: do_div / div64_u64")


STAGES = ("build", "load", "run", "unload")
SEVERITIES = ("error", "warning", "info")
