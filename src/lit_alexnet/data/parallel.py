"""Work over many files on a thread pool: how many cores, results in order, a progress bar.

Decoding and resizing with Pillow and numpy release the GIL, so threads use several cores
without the start-up cost and fork hazards of processes.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["ordered_map", "progress_bar", "usable_cpus"]

_T = TypeVar("_T")
_R = TypeVar("_R")


def usable_cpus() -> int:
    """The cores this process may run on (at least 1)."""
    # The affinity mask, unlike os.cpu_count(), honours taskset and container CPU sets.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def ordered_map(
    pool: ThreadPoolExecutor, fn: Callable[[_T], _R], items: Sequence[_T], window: int
) -> Iterator[_R]:
    """Like ``pool.map`` in input order, but with at most ``window`` results held in memory."""
    pending: deque[Future[_R]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


class LoggedProgress(Progress):
    """A Rich progress bar that, off a terminal (a log file, a SLURM job), also prints a line
    for each task every ``every_s`` seconds: Rich alone shows only the final state there, so
    hours of work looked like a hang."""

    def __init__(self, *columns: Any, every_s: float = 30.0, **kwargs: Any) -> None:
        super().__init__(*columns, **kwargs)
        self.every_s = every_s
        self._said: dict[TaskID, float] = {}

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        if self.console.is_terminal:
            return
        now = time.monotonic()
        if now - self._said.setdefault(task_id, now) < self.every_s:
            return
        self._said[task_id] = now
        task = self._tasks[task_id]
        done = f"{task.completed:.0f}/{task.total:.0f}" if task.total else f"{task.completed:.0f}"
        elapsed = timedelta(seconds=round(task.elapsed or 0))
        left = task.time_remaining
        rest = f", about {timedelta(seconds=round(left))} left" if left else ""
        self.console.print(f"{task.description}: {done} after {elapsed}{rest}")


def progress_bar(every_s: float = 30.0) -> Progress:
    """A Rich progress bar on stderr, out of the way of a command's own output; off a terminal,
    a line every ``every_s`` seconds instead of its (invisible) updates."""
    return LoggedProgress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        every_s=every_s,
    )
