"""A run's learning curves in its own folder, whatever its logger: :class:`LearningCurves`
writes them, :func:`read_curves` reads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from lit_alexnet.plots import learning_curves, pyplot

# A run's learning curves (LearningCurves): the rows, one per epoch, and their picture.
CURVES, CURVES_PICTURE = "curves.json", "curves.png"


def read_curves(run: Path) -> list[dict[str, float]]:
    """The rows of ``run``'s ``curves.json``, one per epoch; none where it has no such file."""
    path = Path(run) / CURVES
    rows: list[dict[str, float]] = json.loads(path.read_text()) if path.is_file() else []
    return rows


class LearningCurves(Callback):
    """Writes ``curves.json`` and ``curves.png`` (training loss and top-1 error, the epoch's
    means; validation loss, top-1 and top-5 error where the epoch validated; learning rate;
    against epoch) into the run's folder after every epoch, from the run's own figures,
    whatever its logger. A resumed run's curves go on from the checkpoint's."""

    VALIDATION = ("val/loss", "val/top1_error", "val/top5_error")

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self._losses: list[float] = []
        self._validated: dict[str, float] = {}

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # matplotlib's compiled backend is loaded here rather than at the first epoch's end:
        # a Ctrl-C landing inside a C extension's import surfaces as "ImportError:
        # initialization failed", not KeyboardInterrupt, and crashed the run instead of
        # saving last.ckpt.
        if stage == "fit" and trainer.is_global_zero:
            pyplot()

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._losses, self._validated = [], {}

    @override
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, *args: Any
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self._losses.append(float(loss.detach()))

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            metrics = trainer.callback_metrics
            self._validated = {k: float(metrics[k]) for k in self.VALIDATION if k in metrics}

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        row = {"epoch": float(trainer.current_epoch + 1), **self._validated}
        if self._losses:
            row["train/loss"] = sum(self._losses) / len(self._losses)
        # The epoch's running training error, as the paper's Figure 1 plots it: Lightning's
        # mean of the module's TopKError over the epoch's batches.
        error = trainer.callback_metrics.get("train/top1_error_epoch")
        if error is not None:
            row["train/top1_error"] = float(error)
        if trainer.optimizers:
            row["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
        run = Path(trainer.default_root_dir)
        (run / CURVES).write_text(json.dumps(self.rows, indent=1) + "\n")
        learning_curves({run.name: self.rows}, run / CURVES_PICTURE, title=str(run))

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict.get("rows", []))
