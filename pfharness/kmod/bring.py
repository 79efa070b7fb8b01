"""``pfharness build --source``: build a brought module for a kernel and, when it fails, say why in
words a student can act on (known API changes, one line each), which kernels here it builds on, and
where the whole log is."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import BuildError
from ..kernel import Kernel
from . import diagnose, foreign, matrix


def failure_message(built: foreign.ForeignBuild, entries: Sequence[matrix.MatrixEntry]) -> str:
    """What a failed build says: the cause (a sandbox limit, known API changes, else the first errors),
    the kernels it builds on, the log's place."""
    lines = [f"the module does not build for {built.kernel_release}:"]
    if built.limit_note:
        lines.append(f"  {built.limit_note}")
    else:
        explained = diagnose.explain(built.log)
        lines += [f"  {e.line}" for e in explained]
        if not explained:
            lines += [f"  {ln}" for ln in diagnose.errors(built.log)] or ["  (no compiler error found: see the log)"]
    if entries:
        lines.append(f"  {matrix.matrix_line(entries)}")
    lines.append(f"  the build log: {built.log_path}")
    return "\n".join(lines)


def build(
    paths: Sequence[Path], kernel: Kernel, out_dir: Path, others: Sequence[Kernel] = (), store: Path | None = None
) -> foreign.ForeignBuild:
    """Build the module at ``paths`` for ``kernel`` in ``out_dir``; on failure also for ``others``
    (outcomes cached in ``store``: :func:`matrix.builds_on`), and raise :class:`BuildError`."""
    source = foreign.parse_source(paths, exclude=[out_dir])
    out_dir.mkdir(parents=True, exist_ok=True)
    built = foreign.build_foreign(source, kernel, out_dir)
    if built.ok:
        return built
    entries: list[matrix.MatrixEntry] = []
    if not built.limit_note:
        rest = [k for k in others if k.release != kernel.release and k.usable]
        entries = [matrix.MatrixEntry(kernel.release, False, False)]
        entries += matrix.builds_on(source, rest, out_dir / "matrix", store)
    raise BuildError(failure_message(built, entries))
