"""Explain a failed build of a brought module: compiler errors caused by a known kernel API change,
each in one line with the kernel version that changed it and the fix (finding ``api-change``,
ids as in the check's findings).

Every entry names the version (and the commit subject) that made the change (the commit id where it
was checked against the kernel's history); each has a minimal
module in tests/api_breaks/<id>/ that triggers it on 6.1, or on 7.2 where the change is newer.
Patterns accept both quote styles gcc prints (ASCII in the C locale, typographic in UTF-8)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_Q = "[\u2018\u2019'\"]"  # gcc quotes names with '…' or ‘…’


def _q(name: str) -> str:
    return f"{_Q}{name}{_Q}"


@dataclass(frozen=True)
class ApiChange:
    """A kernel API change that breaks modules written for older kernels."""

    id: str  # the finding detail id, e.g. "fault-handler-5.14"
    pattern: str  # a regular expression matched against each line of the build log
    version: str  # the kernel version that made the change
    change: str  # what changed
    commit: str  # the commit that changed it: its subject (and id where checked)
    fix: str  # what to write instead


def _undefined(symbol: str) -> str:
    """modpost's line for a symbol no module may use: ERROR: modpost: "sym" [x.ko] undefined!"""
    return rf'"{symbol}" \[[^\]]*\] undefined'


def _implicit(*names: str) -> str:
    return rf"implicit declaration of function {_Q}({'|'.join(names)}){_Q}"


CHANGES: tuple[ApiChange, ...] = (
    ApiChange(
        "fault-handler-5.14",
        rf"{_q('struct kprobe')} has no member named {_q('fault_handler')}",
        "5.14",
        "struct kprobe lost .fault_handler",
        '"kprobes: Remove kprobe::fault_handler"',
        "delete the .fault_handler line and its function: a kprobe handler's fault is no longer the module's to handle",
    ),
    ApiChange(
        "proc-ops-5.6",
        rf"argument 4 of {_q('proc_create(_data)?')}|{_q('struct proc_ops')} has no member named",
        "5.6",
        "proc_create() takes a struct proc_ops",
        '"proc: decouple proc from VFS with struct proc_ops"',
        "declare `static const struct proc_ops` with .proc_open/.proc_read/.proc_write/.proc_release (no .owner)",
    ),
    ApiChange(
        "timespec-5.6",
        _implicit("getnstimeofday(64)?", "do_gettimeofday", "current_kernel_time(64)?", "getrawmonotonic(64)?")
        + rf"|{_q('struct (timespec|timeval)')}",
        "5.6",
        "getnstimeofday(), do_gettimeofday() and struct timespec/timeval are gone from the kernel (y2038)",
        '"y2038: remove unused time32 interfaces"',
        "use `u64 ns = ktime_get_ns();` (or ktime_get_real_ts64() with a struct timespec64)",
    ),
    ApiChange(
        "jprobe-4.15",
        rf"{_Q}struct jprobe{_Q}|{_implicit('register_jprobe', 'unregister_jprobe', 'jprobe_return')}",
        "4.15",
        "jprobes are gone",
        '"kprobes: Remove jprobe API implementation"',
        "use a kprobe with a .pre_handler and read the arguments from regs (regs->di, regs->si on x86-64)",
    ),
    ApiChange(
        "do-page-fault-5.8",
        rf"{_undefined('do_page_fault')}|{_q('do_page_fault')} undeclared|{_implicit('do_page_fault')}",
        "5.8",
        "x86's do_page_fault() became exc_page_fault()",
        '"x86/entry: Switch page fault exception to IDTENTRY_RAW"',
        "probe handle_mm_fault (or exc_page_fault) by name with a kprobe instead of calling or declaring it",
    ),
    ApiChange(
        "handle-mm-fault-regs-5.9",
        rf"too few arguments to function {_q('handle_mm_fault')}",
        "5.9",
        "handle_mm_fault() gained a struct pt_regs * argument",
        '"mm: do page fault accounting in handle_mm_fault"',
        "pass the regs (or NULL): handle_mm_fault(vma, address, flags, regs); in a kprobe, the address is regs->si",
    ),
    ApiChange(
        "div64",
        rf"{_undefined('__u?(div|mod)di3')}",
        "always (32-bit builds)",
        "a 64-bit division with / or % in a 32-bit build needs libgcc's __udivdi3/__divdi3",
        "none: the kernel never links libgcc",
        "use div64_u64(a, b) or do_div(a, b) from <linux/math64.h>",
    ),
    ApiChange(
        "access-ok-5.0",
        rf"macro {_q('access_ok')} passed 3 arguments|{_q('VERIFY_(READ|WRITE)')} undeclared",
        "5.0",
        "access_ok() lost its type argument",
        "\"Remove 'type' argument from access_ok() function\"",
        "drop VERIFY_READ/VERIFY_WRITE: access_ok(ptr, size)",
    ),
    ApiChange(
        "mmap-lock-5.8",
        rf"has no member named {_q('mmap_sem')}",
        "5.8",
        "mm->mmap_sem became mmap_lock behind an API",
        '"mmap locking API: rename mmap_sem to mmap_lock"',
        "use mmap_read_lock(mm) / mmap_read_unlock(mm) from <linux/mmap_lock.h>",
    ),
    ApiChange(
        "kallsyms-lookup-name-5.7",
        _undefined("kallsyms_lookup_name") + "|" + _implicit("kallsyms_lookup_name"),
        "5.7",
        "kallsyms_lookup_name() is no longer exported to modules",
        '"kallsyms: unexport kallsyms_lookup_name() and kallsyms_on_each_symbol()"',
        "probe the function by name (struct kprobe .symbol_name) instead of looking up its address",
    ),
    ApiChange(
        "pde-data-5.17",
        _implicit("PDE_DATA"),
        "5.17",
        "PDE_DATA() became pde_data()",
        '"proc: remove PDE_DATA() completely"',
        "call pde_data(inode)",
    ),
    ApiChange(
        "class-create-6.4",
        rf"too many arguments to function {_q('class_create')}|macro {_q('class_create')} passed 2 arguments",
        "6.4",
        "class_create() lost its module argument",
        '"driver core: class: remove module * from class_create()"',
        'drop THIS_MODULE: class_create("name")',
    ),
    ApiChange(
        "get-user-pages-6.5",
        rf"too many arguments to function {_q('get_user_pages(_remote)?')}",
        "6.5",
        "get_user_pages() lost its vmas argument",
        '54d020692b34 "mm/gup: remove unused vmas parameter from get_user_pages()"',
        "drop the last (vmas) argument; find the VMA with vma_lookup(mm, address) under mmap_read_lock()",
    ),
    ApiChange(
        "strlcpy-6.8",
        _implicit("strlcpy"),
        "6.8",
        "strlcpy() is gone",
        '"string: Remove strlcpy()"',
        "use strscpy(dst, src, sizeof(dst))",
    ),
    ApiChange(
        "del-timer-6.15",
        _implicit("del_timer(_sync)?"),
        "6.15",
        "del_timer() and del_timer_sync() are gone, renamed timer_delete()/timer_delete_sync() in 6.2",
        '8fa7292fee5c "treewide: Switch/rename to timer_delete[_sync]()"',
        "call timer_delete_sync(&timer) (or timer_delete())",
    ),
    ApiChange(
        "from-timer-6.16",
        _implicit("from_timer"),
        "6.16",
        "from_timer() was renamed timer_container_of()",
        '41cb08555c41 "treewide, timers: Rename from_timer() to timer_container_of()"',
        "call timer_container_of(ptr, timer, field)",
    ),
)

_COMPILED = tuple((c, re.compile(c.pattern)) for c in CHANGES)
_WARNING = re.compile(r"^\S+:\d+:\d+: warning: ")


@dataclass(frozen=True)
class Explanation:
    """A known API change found in a build log."""

    change: ApiChange
    evidence: str  # the first log line that shows it

    @property
    def line(self) -> str:
        """The one line a student reads."""
        c = self.change
        return f"{c.id}: {c.change} (Linux {c.version}); fix: {c.fix}"


def explain(log: str) -> list[Explanation]:
    """The known API changes the build log shows, each once, in the order of the table."""
    found: dict[str, Explanation] = {}
    lines = log.splitlines()
    for change, regex in _COMPILED:
        hit = next((ln.strip() for ln in lines if regex.search(ln)), None)
        if hit is not None:
            found[change.id] = Explanation(change, hit)
    return list(found.values())


def warnings(log: str) -> list[str]:
    """The compiler's warning lines in a build log."""
    return [ln.strip() for ln in log.splitlines() if _WARNING.match(ln.strip())]


def errors(log: str, limit: int = 10) -> list[str]:
    """The first compiler and modpost error lines of a build log (what to show when nothing is known)."""
    found = [ln.strip() for ln in log.splitlines() if ": error: " in ln or ln.startswith("ERROR: ")]
    return found[:limit]
