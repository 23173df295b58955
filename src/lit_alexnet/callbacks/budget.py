"""A run sized to its wall-clock budget: :class:`TimeBudget`, and when a job started."""

from __future__ import annotations

import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

_process_clock_taken = False


def job_start_time() -> float:
    """When this job started: the process's start for its first job (imports count), else now.

    A Hydra multirun runs its jobs one after another in one process, so only the first may
    count the interpreter's start-up as its own.
    """
    global _process_clock_taken
    now = time.time()
    if _process_clock_taken:
        return now
    _process_clock_taken = True
    try:
        # Field 22 of /proc/self/stat: start time in clock ticks after boot.
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        since_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return min(now, now - uptime + since_boot)
    except (OSError, ValueError, IndexError):  # not Linux
        return now


class TimeBudget(Callback):
    """Fits the run into ``minutes`` of wall time by training fewer epochs where it must.

    After ``warmup_steps + measure_steps`` timed training steps (an epoch's first step, which
    also starts its data loader, is not timed) it measures the step time (data loading
    included), estimates each validation (measured after the first one), and keeps
    the largest number of whole epochs, at most ``trainer.max_epochs``, that ends within the
    budget, leaving ``reserve_s`` for the final checkpoint and teardown. A schedule that
    spans the run (one cycle) is re-planned over the new length, so the learning rate still
    anneals to its end. It re-plans after every validation with the measured times and takes
    every rank's decision from rank 0. The job validates after the final epoch
    (:class:`FinalValidation`), which the plan counts.

    The clock starts with the job (the process's start for its first job): on a machine
    that is fast enough the run is not changed at all.
    """

    def __init__(
        self,
        minutes: float,
        warmup_steps: int = 2,
        measure_steps: int = 6,
        reserve_s: float = 10.0,
        start_time: float | None = None,
    ) -> None:
        if minutes <= 0:
            raise ValueError(f"TimeBudget(minutes={minutes!r}) must be positive")
        if warmup_steps < 0 or measure_steps < 1:
            raise ValueError("TimeBudget needs warmup_steps >= 0 and measure_steps >= 1")
        self.minutes = minutes
        self.warmup_steps = warmup_steps
        self.measure_steps = measure_steps
        self.reserve_s = reserve_s
        self.start_time = job_start_time() if start_time is None else start_time
        self.configured_epochs: int | None = None
        self.planned_epochs: int | None = None
        self._step_seconds: list[float] = []
        self._last_step_end = 0.0
        self._epoch_batches = 0
        self._val_started: float | None = None
        self._val_seconds: list[float] = []
        self._every_n: int | None = None

    @property
    def deadline(self) -> float:
        """The wall-clock time (``time.time()``) by which the job should have ended."""
        return self.start_time + 60.0 * self.minutes

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.configured_epochs is None:
            self.configured_epochs = trainer.max_epochs
        self._every_n = trainer.check_val_every_n_epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_batches = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        now = time.time()
        if self._epoch_batches > 0:
            self._step_seconds.append(now - self._last_step_end)
        self._last_step_end = now
        self._epoch_batches += 1
        if (
            self.planned_epochs is None
            and len(self._step_seconds) >= self.warmup_steps + self.measure_steps
        ):
            self._plan(trainer, pl_module)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._val_started = time.time()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._val_started is None or trainer.sanity_checking:
            return
        self._val_seconds.append(time.time() - self._val_started)
        self._val_started = None
        if self.planned_epochs is not None:
            self._plan(trainer, pl_module, validated=True)

    def step_seconds(self) -> float:
        """The median of the last ``measure_steps`` timed training steps."""
        return statistics.median(self._step_seconds[-self.measure_steps :])

    def affordable_epochs(
        self,
        *,
        now: float,
        step_s: float,
        val_s: float,
        steps_per_epoch: int,
        epoch: int,
        batches_done: int,
        every_n: int | None,
        max_epochs: int,
        validated: bool = False,
    ) -> int:
        """The most whole epochs, from ``epoch + 1`` to ``max_epochs``, that end in budget.

        ``epoch`` is the current (0-based) epoch and ``batches_done`` the training batches
        of the run so far; validations come every ``every_n`` epochs and after the last.
        ``validated``: the current epoch's validation has already run (and cost its time).
        """
        left = self.deadline - now - self.reserve_s
        for epochs in range(max_epochs, epoch + 1, -1):
            validations = sum(
                1
                for e in range(epoch + validated, epochs)
                if every_n is None or (e + 1) % every_n == 0 or e == epochs - 1
            )
            cost = (epochs * steps_per_epoch - batches_done) * step_s + validations * val_s
            if cost <= left:
                return epochs
        return epoch + 1

    def _plan(
        self, trainer: L.Trainer, pl_module: L.LightningModule, validated: bool = False
    ) -> None:
        batches = trainer.num_training_batches
        if not math.isfinite(batches) or self.configured_epochs in (None, -1):
            return  # an endless run has nothing to size
        steps_per_epoch = int(batches)
        step_s = self.step_seconds()
        if self._val_seconds:
            val_s = self._val_seconds[-1]
        else:
            # Until one is measured: a validation batch without backward costs about a third
            # of a training step; taken as half, to err towards finishing early.
            val_s = 0.5 * step_s * sum(trainer.num_val_batches)
        batches_done = trainer.current_epoch * steps_per_epoch + self._epoch_batches
        epochs = self.affordable_epochs(
            now=time.time(),
            step_s=step_s,
            val_s=val_s,
            steps_per_epoch=steps_per_epoch,
            epoch=trainer.current_epoch,
            batches_done=batches_done,
            every_n=self._every_n,
            max_epochs=int(self.configured_epochs),
            # A validation inside the epoch (val_check_interval < 1) is not its last one.
            validated=validated and self._epoch_batches >= steps_per_epoch,
        )
        epochs = int(trainer.strategy.broadcast(epochs))
        previous = self.planned_epochs or self.configured_epochs
        first = self.planned_epochs is None
        # Lightning has no public way to shorten a fit once it has begun; the fit loop's
        # max_epochs is what it reads at every epoch's end (and trainer.max_epochs returns).
        self.planned_epochs = trainer.fit_loop.max_epochs = epochs
        if epochs == previous and not first:
            return
        resized = False
        if epochs != previous:
            optimizer_steps = math.ceil(steps_per_epoch / trainer.accumulate_grad_batches)
            resize = getattr(pl_module, "resize_schedule", None)
            resized = bool(resize and resize(epochs * optimizer_steps))
        left = (epochs * steps_per_epoch - batches_done) * step_s
        rank_zero_info(
            f"time budget {self.minutes:g} min: {step_s:.2f} s per training step, so "
            + (
                f"all {epochs} epoch{'s' if epochs > 1 else ''} fit"
                if epochs == self.configured_epochs
                else f"{epochs} of {self.configured_epochs} epochs"
                + (" (learning-rate schedule re-planned)" if resized else "")
            )
            + f"; training ends about {(time.time() + left - self.start_time) / 60:.1f} min "
            "after the start"
        )
