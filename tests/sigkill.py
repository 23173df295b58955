"""A callback for the resumption tests: the run SIGKILLs itself once last.ckpt is on disk."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import lightning as L


class SigkillAfterCheckpoint(L.Callback):
    """``kill -9`` of this process at the first training batch that starts after
    ``dirpath/last.ckpt`` was written: no hook, no handler, nothing flushed, as a preempted
    or out-of-memory job ends."""

    def __init__(self, dirpath: str) -> None:
        self.last = Path(dirpath) / "last.ckpt"

    def on_train_batch_start(self, *args: Any) -> None:
        if self.last.exists():
            os.kill(os.getpid(), signal.SIGKILL)
