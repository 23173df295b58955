"""The benchmarks' one timing helper: :class:`Timer`, used for every figure they print."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import torch


class Timer:
    """Seconds of timed runs and the items (images) each run did.

    Time runs one by one with :meth:`start` and :meth:`stop`, or several jobs in interleaved
    rounds with :meth:`rounds`. Readings are :meth:`clock`'s, which waits for the GPU; ``end``
    replaces the reading that closes a run (the data benchmark's waits for background work).
    """

    def __init__(self, end: Callable[[], float] | None = None) -> None:
        self.end = end or self.clock
        self.seconds: list[float] = []
        self.items: list[int] = []
        self.started: float | None = None

    @staticmethod
    def clock() -> float:
        """``time.perf_counter()`` once every GPU has finished the work queued on it.

        CUDA kernels run asynchronously: without the wait a reading would fall while the work
        before it is still computing, and time its launch instead.
        """
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for index in range(torch.cuda.device_count()):
                torch.cuda.synchronize(index)
        return time.perf_counter()

    def start(self) -> None:
        self.started = self.clock()

    def stop(self, items: int = 0) -> float:
        """End the run begun by :meth:`start`, which did ``items``; its seconds."""
        if self.started is None:
            raise RuntimeError("Timer.stop() without a start()")
        self.seconds.append(self.end() - self.started)
        self.items.append(items)
        self.started = None
        return self.seconds[-1]

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def min_s(self) -> float:
        return min(self.seconds)

    @property
    def rates(self) -> list[float]:
        """Items per second of each run."""
        return [n / s for n, s in zip(self.items, self.seconds, strict=True)]

    @property
    def per_s(self) -> float:
        """Items per second of a median run (the median items over the median seconds)."""
        return statistics.median(self.items) / self.median_s

    @classmethod
    def rounds(
        cls,
        jobs: Mapping[str, Callable[[], int]],
        rounds: int,
        warmup: int = 0,
        end: Callable[[], float] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> dict[str, Timer]:
        """Run each job (which returns the items it did) ``warmup`` times untimed, then
        ``rounds`` times timed; a timer per job.

        The jobs take turns (A B C A B C ...), so drifts in clock speed or machine load hit
        all of them alike, and the order is rotated each round so that no job always follows
        the same one (whose leftovers, caches or heat it would inherit).
        """
        timers = {name: cls(end) for name in jobs}
        names = list(jobs)
        for index in range(-warmup, rounds):
            shift = index % len(names)
            for name in [*names[shift:], *names[:shift]]:
                if index < 0:
                    jobs[name]()
                    continue
                timers[name].start()
                timers[name].stop(jobs[name]())
            if log is not None and index >= 0:
                rates = ", ".join(f"{name} {t.rates[-1]:.1f}/s" for name, t in timers.items())
                log(f"round {index + 1}/{rounds}: {rates}")
        return timers
