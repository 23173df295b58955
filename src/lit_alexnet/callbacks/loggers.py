"""What the experiment loggers get besides the metrics: Figure 3 after each validation
(:class:`Conv1Kernels`), W&B's best-error summary (:class:`WandbBestError`), and the W&B run's
identity for ``results.json`` (:func:`wandb_identity`)."""

from __future__ import annotations

from typing import Any, cast

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from typing_extensions import override

from lit_alexnet.nn import AlexNet
from lit_alexnet.optim import MONITOR
from lit_alexnet.plots import kernel_grid


class Conv1Kernels(Callback):
    """Logs Figure 3, the conv1 kernels (:func:`lit_alexnet.plots.kernel_grid`), after each
    validation, so a W&B or TensorBoard user watches the filters form; loggers that take no
    images (CSV) are skipped."""

    def __init__(self, scale: int = 4) -> None:
        self.scale = scale

    @override
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not trainer.loggers:
            return
        weights = [w.float().cpu() for w in cast(AlexNet, pl_module.net).conv1_weights()]
        picture = kernel_grid(torch.cat(weights), len(weights), self.scale)
        step = trainer.global_step
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="conv1_kernels", images=[picture], step=step)
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("conv1_kernels", picture, step, dataformats="HWC")


class WandbBestError(Callback):
    """Makes a W&B run's summary hold the least validation top-1 error it reached (W&B's
    ``define_metric``), the figure a sweep's runs are compared by, instead of the last one."""

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.define_metric(MONITOR, summary="min")


def wandb_identity(trainer: L.Trainer) -> dict[str, Any] | None:
    """The W&B run ``trainer`` logs to (project, group, name, id), for ``results.json``, so
    that pictures made after training (:mod:`lit_alexnet.wandb_pictures`) join its project
    and group; ``None`` without a W&B logger, and on every process but rank 0 (which alone
    has the run)."""
    if not trainer.is_global_zero:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            run = logger.experiment
            return {
                "project": run.project,
                "group": run.group or None,
                "name": run.name,
                "id": run.id,
            }
    return None
