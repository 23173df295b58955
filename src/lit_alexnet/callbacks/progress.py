"""Progress: a Rich bar on a terminal (:class:`EpochBar`), lines in a log file
(:class:`ProgressLines`)."""

from __future__ import annotations

import sys
import time
from typing import Any, ClassVar

import lightning as L
from lightning.pytorch.callbacks import Callback, ProgressBar, RichProgressBar
from typing_extensions import override


class ProgressLines(ProgressBar):
    """Progress for a log file or a cluster job: one line every ``every_n_steps`` training
    steps and one at the end of every epoch, with the speed and the latest figures.

    A :class:`~lightning.pytorch.callbacks.ProgressBar`, so that Lightning adds no bar of its
    own, whose final state Rich prints into the log.
    """

    def __init__(self, every_n_steps: int = 500) -> None:
        super().__init__()
        self.every_n_steps = every_n_steps
        self._enabled = True
        self._epoch_started = 0.0
        self._batches = 0
        self._validated = False

    @override
    def disable(self) -> None:
        self._enabled = False

    @override
    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_started = time.time()
        self._batches = 0
        self._validated = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validated = not trainer.sanity_checking

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        self._batches += 1
        if self.every_n_steps > 0 and trainer.global_step % self.every_n_steps == 0:
            self._say(trainer, f"step {trainer.global_step}")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._say(trainer, "end")

    def _say(self, trainer: L.Trainer, where: str) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        batches = self._batches
        seconds = time.time() - self._epoch_started
        figures = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} {where}"]
        if batches:
            figures.append(f"{batches / max(seconds, 1e-9):.2f} it/s")
        # The latest step's loss, and the error of a validation that ran in this epoch.
        keys = [("train/loss_step", "train loss")]
        if self._validated:
            keys.append(("val/top1_error", "val top-1 error"))
        for key, name in keys:
            value = trainer.callback_metrics.get(key)
            if value is not None:
                figures.append(f"{name} {float(value):.3f}")
        print(" | ".join(figures), flush=True)


class EpochBar(RichProgressBar):
    """Lightning's Rich bar as a person reads it: epochs counted from 1 (``Epoch 1/10``, as
    :class:`ProgressLines` counts them), the loss and top-1 error under short names that fit
    beside the bar, and no logger version."""

    SHORT: ClassVar[dict[str, str]] = {
        "train/loss_step": "loss",
        "train/top1_error_step": "err",
        "val/top1_error": "val err",
    }

    @override
    def get_metrics(
        self, trainer: L.Trainer, pl_module: L.LightningModule
    ) -> dict[str, int | str | float | dict[str, float]]:
        items = super().get_metrics(trainer, pl_module)
        return {short: items[key] for key, short in self.SHORT.items() if key in items}

    # Lightning's own description counts epochs from 0 (``Epoch 9/9`` ends ten); only the
    # numbers change here, its padding against the validation bar's description stays.
    def _get_train_description(self, current_epoch: int) -> str:
        epochs = self.trainer.max_epochs
        text = f"Epoch {current_epoch + 1}" + (f"/{epochs}" if epochs not in (None, -1) else "")
        return f"{text:{len(self.validation_description)}}"


def progress_bar(every_n_steps: int = 500) -> Callback:
    """A Rich progress bar on a terminal (:class:`EpochBar`); :class:`ProgressLines` in a log
    file or job."""
    if sys.stdout.isatty():
        return EpochBar()
    return ProgressLines(every_n_steps)
