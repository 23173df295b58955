"""Work over many files on a thread pool: how many cores, results in order, a progress bar.

Decoding and resizing with Pillow and numpy release the GIL, so threads use several cores
without the start-up cost and fork hazards of processes.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
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


def progress_bar() -> Progress:
    """A Rich progress bar on stderr, out of the way of a command's own output."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
