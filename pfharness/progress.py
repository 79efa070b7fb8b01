"""Live progress of a run on the terminal: one status line on stderr with the stage and the time.

Shown only when stderr is a terminal and the output is not --json; otherwise every call is a
no-op (show() still prints). The status line is drawn with rich's Live display, which keeps it
at the bottom: a line given to show() (the workload's output, as it streams in) is printed
above it, never through it. This is the one place that writes to the terminal during a run.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

from .channel import Sink
from .pipeline.events import Event, Note, Output, StageStarted, Subscriber

if TYPE_CHECKING:
    from rich.live import Live
    from rich.spinner import Spinner
    from rich.text import Text


def _rich():
    """rich, imported when the line is first drawn: a run off a terminal never loads it."""
    import rich.console  # noqa: PLC0415
    import rich.live  # noqa: PLC0415
    import rich.spinner  # noqa: PLC0415
    import rich.text  # noqa: PLC0415

    return rich


STAGES = ("build", "boot", "run", "collect")


class Progress:
    """The run's stage and elapsed time on stderr; a context manager.

    stage(name) starts a stage (build, boot, run, collect); show(line) prints one line of the
    workload's output (above the status line when it is shown, else to stdout).
    """

    def __init__(self, *, enabled: bool | None = None, stderr: TextIO | None = None, stdout: TextIO | None = None):
        self._stderr = stderr or sys.stderr
        self._stdout = stdout or sys.stdout
        self.enabled = self._stderr.isatty() if enabled is None else enabled
        self._start = time.monotonic()
        self._stage = ""
        self._stage_start = self._start
        self._done: list[tuple[str, float]] = []
        self._live: Live | None = None
        self._spinner: Spinner | None = None
        self._partial: dict[int, bytes] = {}  # a line of workload output not yet ended, per fd

    def __enter__(self) -> Progress:
        if self.enabled:
            rich = _rich()
            self._spinner = rich.spinner.Spinner("dots", text="")
            console = rich.console.Console(file=self._stderr, force_terminal=True, highlight=False, soft_wrap=True)
            self._live = rich.live.Live(
                self._render_line(),
                console=console,
                transient=True,
                refresh_per_second=8,
                get_renderable=self._render,
                redirect_stdout=False,  # stdout may be a file or a pipe: never send it to stderr
                redirect_stderr=True,  # other messages on stderr (the KVM probe's) land above the line
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Take the status line away (the terminal is left as if it had never been there)."""
        if self._live is not None:
            for fd in sorted(self._partial):
                self._print_above(self._partial[fd].decode(errors="replace"))
            self._partial.clear()
            self._live.stop()
            self._live = None

    def stage(self, name: str) -> None:
        """A new stage starts now."""
        now = time.monotonic()
        if self._stage:
            self._done.append((self._stage, now - self._stage_start))
        self._stage, self._stage_start = name, now
        if self._live is not None:
            self._live.refresh()

    def show(self, line: str) -> None:
        """Print one line of workload output, above the status line when it is shown."""
        if self._live is not None and self._stdout.isatty():
            # stdout is the same terminal: go through the live display so the line lands above it.
            self._live.console.print(_rich().text.Text(line), markup=False, highlight=False, soft_wrap=True)
        else:
            self._stdout.write(line + "\n")
            self._stdout.flush()

    def note(self, line: str) -> None:
        """Print a line for the person watching (e.g. the KVM probe's verdict) on stderr, above the
        status line when it is shown."""
        if self._live is not None:
            self._print_above(line)
        else:
            self._stderr.write(line + "\n")
            self._stderr.flush()

    def sink(self, *, all_to_stderr: bool = False) -> Sink:
        """Where the workload's output goes as it streams in (channel.Sink: fd 1 or 2, bytes).

        Stdout to stdout, stderr to stderr (both to stderr with `all_to_stderr`, for --json).
        While the status line is shown on the same terminal, output goes through it a whole
        line at a time (the last partial line when the display closes), so the two never mix;
        otherwise the bytes are written as they come.
        """

        def write(fd: int, data: bytes) -> None:
            stream = self._stderr if all_to_stderr or fd == 2 else self._stdout
            if self._live is not None and stream.isatty():
                lines = (self._partial.pop(fd, b"") + data).split(b"\n")
                if lines[-1]:
                    self._partial[fd] = lines[-1]
                for line in lines[:-1]:
                    self._print_above(line.decode(errors="replace"))
                return
            _write_bytes(stream, data)

        return write

    def subscriber(self, *, all_to_stderr: bool = False) -> Subscriber:
        """This view as a subscriber of a run's events: the stages on the status line, the
        workload's output as sink() writes it, notes on stderr."""
        write = self.sink(all_to_stderr=all_to_stderr)

        def on_event(event: Event) -> None:
            if isinstance(event, StageStarted):
                self.stage(event.name)
            elif isinstance(event, Output):
                write(event.fd, event.data)
            elif isinstance(event, Note):
                self.note(event.text)

        return on_event

    def _print_above(self, line: str) -> None:
        assert self._live is not None
        self._live.console.print(_rich().text.Text(line), markup=False, highlight=False, soft_wrap=True)

    def _render_line(self) -> Text:
        now = time.monotonic()
        text = _rich().text.Text("pfharness: ")
        for name, seconds in self._done:
            text.append(f"{name} {seconds:.1f} s, ", style="dim")
        if self._stage:
            text.append(f"{self._stage} {now - self._stage_start:.1f} s", style="bold")
        text.append(f" (total {now - self._start:.1f} s)", style="dim")
        return text

    def _render(self) -> Spinner:
        assert self._spinner is not None
        self._spinner.update(text=self._render_line())
        return self._spinner


def _write_bytes(stream: TextIO, data: bytes) -> None:
    """Write `data` to `stream` as it is (through its binary buffer when it has one)."""
    binary = getattr(stream, "buffer", None)
    try:
        if binary is not None:
            stream.flush()
            binary.write(data)
            binary.flush()
        else:
            stream.write(data.decode(errors="replace"))
            stream.flush()
    except (OSError, ValueError):  # the terminal went away: the transcript still has it
        pass
