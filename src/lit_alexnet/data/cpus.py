"""How many CPU cores this process may use: the default for loader threads and workers."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """The cores this process may run on (at least 1)."""
    # The affinity mask, unlike os.cpu_count(), honours taskset and container CPU sets.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
