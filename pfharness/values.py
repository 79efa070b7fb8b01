"""The small values a run is made of, parsed once at the edge (the CLI) and trusted below."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

#: Where `run` (and the commands that build) put their builds and run directories unless told otherwise.
DEFAULT_OUT = Path("out")
#: Rows of each table of fault sites (`pfharness sites`, results/sites.py).
SITES_TOP = 10

LETTERS = ("A", "B", "C")


class UnknownModule(UsageError, ValueError):
    """A module letter that is not A, B or C."""


class Accelerator(str, enum.Enum):
    """What the user asked QEMU to run the guest with; `auto` is KVM only when a probe shows it works."""

    auto = "auto"
    kvm = "kvm"
    tcg = "tcg"


@dataclass(frozen=True, order=True)
class Module:
    """One of the three modules: its letter ("B") and its name ("pf_probe_B")."""

    letter: str

    def __post_init__(self) -> None:
        if self.letter not in LETTERS:
            raise UnknownModule(f"unknown module {self.letter!r}: choose A, B or C (--module B)")

    @property
    def name(self) -> str:
        return f"pf_probe_{self.letter}"

    @classmethod
    def parse(cls, text: str) -> Module:
        """ "b", "B" or "pf_probe_B"; an UnknownModule for anything else."""
        letter = text.strip().upper().removeprefix("PF_PROBE_")
        if letter not in LETTERS:
            raise UnknownModule(f"--module {text}: not a module: use A, B or C")
        return cls(letter)

    def __str__(self) -> str:
        return self.letter
