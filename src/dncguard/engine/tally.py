"""Work a source reports per unit of work (a scrub, a job chunk), without the engine knowing
the source: a source calls :func:`report` from wherever its batch settles (tasks and threads
started inside the block included), and the engine collects what was reported inside
:func:`tally` into the summary (``prefilter``: the remote sources' hash pre-filter)."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Protocol


class Reporter(Protocol):
    """What reports counts: its source name, and how its counts read in a summary."""

    source: str

    def stats_of(self, counts: Mapping[str, int]) -> dict[str, Any]: ...


class Tally:
    """Counts of one unit of work, by source."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = {}
        self.reporters: dict[str, Reporter] = {}
        self._lock = threading.Lock()  # checks settle their batches in several threads

    def add(self, reporter: Reporter, counts: Mapping[str, int]) -> None:
        with self._lock:
            self.counts.setdefault(reporter.source, Counter()).update(counts)
            self.reporters[reporter.source] = reporter

    def stats(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {src: self.reporters[src].stats_of(c)
                    for src, c in sorted(self.counts.items())}


_TALLY: ContextVar[Tally | None] = ContextVar("dncguard_tally", default=None)


@contextlib.contextmanager
def tally() -> Iterator[Tally]:
    """Collect what is reported inside the block (tasks and threads started in it too)."""
    t = Tally()
    token = _TALLY.set(t)
    try:
        yield t
    finally:
        _TALLY.reset(token)


def report(reporter: Reporter, counts: Mapping[str, int]) -> None:
    """Add counts to the tally of the work in progress, if any."""
    current = _TALLY.get()
    if current is not None:
        current.add(reporter, counts)


__all__ = ["Reporter", "Tally", "report", "tally"]
