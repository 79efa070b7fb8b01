"""Paths as the study shows them: the same wherever it ran (its --out directory as $OUT, pfharness's own
files under $PFHARNESS), in report.txt and in the pictures' titles."""

from __future__ import annotations

import re
import shlex

_VM_FILE = re.compile(r"(?<![\w$])/\S*/vm/(?=[\w.-]+\.(?:py|sh|c)\b)")
PLACES = (
    "$OUT is the study's --out directory, $PFHARNESS the directory of pfharness's data files (its checkout, "
    "or pfharness/data where it is installed)."
)


def shown_command(command: tuple[str, ...], out_dir: str) -> str:
    """A workload's command line as report.txt shows it: the same wherever the study ran (the --out
    directory as $OUT, pfharness's own files under $PFHARNESS)."""
    text = shlex.join(command).replace("\n", "\\n")
    if out_dir:
        text = re.sub(rf"(?<![\w/]){re.escape(out_dir.rstrip('/'))}(?=/|\s|$)", "$OUT", text)
    return _VM_FILE.sub("$PFHARNESS/vm/", text)
