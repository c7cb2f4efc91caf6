"""Progress of a long command on standard error: a bar on a terminal, plain lines elsewhere.

A terminal gets a `rich` progress bar (redrawn in place). Anything else — a log file, a CI job,
a pipe — gets one line now and then (`1200/5000 rows`), about ten in all and at most every
1,000 rows, and always the last one, so that a log shows the run advancing without a line
per row.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO

MAX_LINE_STEP = 1000


class Progress(Protocol):
    """Told how many items are done so far."""

    def update(self, done: int) -> None:
        """`done` of the total items are finished."""


class LineProgress:
    """`done/total rows` lines, every `step` items and at the end."""

    def __init__(self, total: int, *, stream: TextIO, unit: str = "rows") -> None:
        self._total = total
        self._stream = stream
        self._unit = unit
        self.step = max(1, min(MAX_LINE_STEP, math.ceil(total / 10)))
        self._shown = 0

    def update(self, done: int) -> None:
        """Print a line when another step is done, or all are."""
        if done == self._shown or (done % self.step and done != self._total):
            return
        self._shown = done
        print(f"{done}/{self._total} {self._unit}", file=self._stream, flush=True)


@contextmanager
def progress_for(total: int, *, stream: TextIO, unit: str = "rows") -> Iterator[Progress]:
    """A bar when `stream` is a terminal, else `LineProgress` lines; finished on exit."""
    if not stream.isatty():
        yield LineProgress(total, stream=stream, unit=unit)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress

    bar = RichProgress(
        TextColumn(unit),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(file=stream),
        transient=False,
    )
    task = bar.add_task(unit, total=total)

    class _Bar:
        def update(self, done: int) -> None:
            bar.update(task, completed=done)

    with bar:
        yield _Bar()
