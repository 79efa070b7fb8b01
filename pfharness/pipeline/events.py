"""What a run reports, as one stream of events: a stage starts, the workload writes, a note for the
person watching, a step's result. The terminal view (progress.py), --json, and the study's log are
subscribers; nothing below the pipeline prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..results.model import TraceResult
from .steps import Step


@dataclass(frozen=True)
class StageStarted:
    """A stage of the run began: build, boot, run or collect."""

    name: str


@dataclass(frozen=True)
class Output:
    """Bytes the workload wrote on its stream `fd` (1 stdout, 2 stderr), as they arrived."""

    fd: int
    data: bytes


@dataclass(frozen=True)
class Note:
    """A line for the person watching (the KVM probe's verdict, the study's progress)."""

    text: str


@dataclass(frozen=True)
class StepStarted:
    """Step `index` (from 0) of `total` is about to run."""

    index: int
    total: int
    step: Step


@dataclass(frozen=True)
class StepDone:
    """One step's result, as the pipeline made it."""

    result: TraceResult


Event = StageStarted | Output | Note | StepStarted | StepDone
Subscriber = Callable[[Event], None]


class Events:
    """The stream: every event goes to every subscriber, in order."""

    def __init__(self, *subscribers: Subscriber) -> None:
        self._subscribers = list(subscribers)

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def emit(self, event: Event) -> None:
        for subscriber in self._subscribers:
            subscriber(event)

    def stage(self, name: str) -> None:
        self.emit(StageStarted(name))

    def note(self, text: str) -> None:
        self.emit(Note(text))

    def output(self, fd: int, data: bytes) -> None:
        """The workload's output (a channel.Sink)."""
        self.emit(Output(fd, data))


def notes_to(write: Callable[[str], None]) -> Subscriber:
    """A subscriber that hands each Note's text to `write` (e.g. a line on stderr)."""

    def subscriber(event: Event) -> None:
        if isinstance(event, Note):
            write(event.text)

    return subscriber
