"""Errors the harness raises. Each carries a message that says what to do,
and the exit status the command line returns for it (see docs/using.md, "Exit status")."""

from __future__ import annotations


class PfhError(Exception):
    """Base class: a harness failure (not a workload failure)."""

    exit_status = 120  # generic harness error


class UsageError(PfhError):
    """The command line asks for something impossible: a bad option value or combination."""

    exit_status = 2


class SetupError(PfhError):
    """Something this machine lacks: a package, a kernel, a tool."""

    exit_status = 126


class HeadersMissing(SetupError):
    """No kernel headers (kbuild directory) for the requested release."""


class KernelNotFound(SetupError):
    """No kernel image or release matches the request."""


class BuildError(PfhError):
    """kbuild failed; the message shows the compiler's errors with rendered source lines."""

    exit_status = 121


class ModuleLoadError(PfhError):
    """insmod refused the module (bad tpid, no such process, ...)."""

    exit_status = 122


class VmLost(PfhError):
    """The VM stopped answering or died (panic, QEMU exit) before the step ended."""

    exit_status = 123


class VmTimeout(VmLost):
    """The VM did not finish the step within --timeout and was killed."""

    exit_status = 124


class KernelSplat(PfhError):
    """The kernel log shows BUG/WARNING/Oops/lockdep output: the run is not trustworthy."""

    exit_status = 125


class WorkloadNotFound(PfhError):
    """The workload command does not exist where it is to run."""

    exit_status = 127
