"""One training job from a composed config: what ``python -m lit_alexnet.train`` runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from lit_alexnet.config import validate


def output_dir() -> Path:
    """The running Hydra job's output directory."""
    return Path(HydraConfig.get().runtime.output_dir)


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Validate ``cfg`` and instantiate its datamodule, module and trainer; reads no data."""
    validate(cfg)
    # Denormal floats make CPU kernels tens of times slower; a network whose activations die
    # out (a diverged run) would otherwise crawl instead of finishing and reporting it.
    torch.set_flush_denormal(True)
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(
        cfg.model,
        _convert_="all",  # plain hyperparameters, so checkpoints load with weights_only=True
        num_classes=datamodule.num_classes,
        norm=OmegaConf.to_container(cfg.norm),
        pooling=OmegaConf.to_container(cfg.pooling),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.scheduler is not None else None,
    )
    callbacks = [instantiate(c) for c in (cfg.callbacks or {}).values() if c is not None]
    logger: Logger | bool = instantiate(cfg.logger) if cfg.logger is not None else False
    strategy = instantiate(cfg.strategy) if isinstance(cfg.strategy, DictConfig) else cfg.strategy
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger, strategy=strategy)
    return datamodule, model, trainer


def train(cfg: DictConfig) -> float:
    """Fit (and optionally test) as ``cfg`` says; print and return the final val top-1 error."""
    datamodule, model, trainer = build(cfg)
    try:
        resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
        for logger in trainer.loggers:
            logger.log_hyperparams(resolved)
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        top1 = metrics["val/top1_error"]
        print(
            f"val top-1 error {top1:.3f} | top-5 error {metrics['val/top5_error']:.3f} | "
            f"{_shown(output_dir())}"
        )
        if cfg.test:
            (result,) = trainer.test(model, datamodule=datamodule, ckpt_path="best")
            views = getattr(datamodule, "test_views", "center")
            print(
                f"test ({views}) top-1 error {result['test/top1_error']:.3f} | "
                f"top-5 error {result['test/top5_error']:.3f}"
            )
        return top1
    finally:
        _finish_wandb()


def _finish_wandb() -> None:
    # Each job of a multirun needs its own W&B run; without finish() the next job appends
    # to this one. Only a run that imported wandb (the W&B logger) has one to finish.
    if "wandb" in sys.modules:
        sys.modules["wandb"].finish()
