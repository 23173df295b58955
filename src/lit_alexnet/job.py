"""One training job from a composed config: what ``python -m lit_alexnet.train`` runs."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from lit_alexnet import __version__
from lit_alexnet.config import validate
from lit_alexnet.console import quiet_console
from lit_alexnet.module import MONITOR, LitAlexNet
from lit_alexnet.precision import AUTO, auto_precision
from lit_alexnet.runs import write_results


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
    quiet_console(wandb_offline=_wandb_offline(cfg))
    # Denormal floats make CPU kernels tens of times slower; a network whose activations die
    # out (a diverged run) would otherwise crawl instead of finishing and reporting it.
    torch.set_flush_denormal(True)
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = build_model(cfg, datamodule.num_classes)
    callbacks = [instantiate(c) for c in (cfg.callbacks or {}).values() if c is not None]
    logger: Logger | bool = instantiate(cfg.logger) if cfg.logger is not None else False
    # Lightning hands wandb.init an `anonymous` argument, which wandb >= 0.2x warns about
    # whatever its value; leaving the key out is what wandb asks for.
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    if not logger:  # logger=none: Lightning refuses a learning-rate monitor with nothing to log to
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    strategy = instantiate(cfg.strategy) if isinstance(cfg.strategy, DictConfig) else cfg.strategy
    trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=logger,
        strategy=strategy,
        precision=trainer_precision(cfg.trainer),
    )
    return datamodule, model, trainer


def build_model(cfg: DictConfig, num_classes: int) -> L.LightningModule:
    """The LitAlexNet of a composed config, with its optimizer and scheduler factories."""
    return instantiate(
        cfg.model,
        _convert_="all",  # plain hyperparameters, so checkpoints load with weights_only=True
        num_classes=num_classes,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.scheduler is not None else None,
    )


def quickstart(num_classes: int = 10, overrides: Sequence[str] = ()) -> LitAlexNet:
    """The paper's network with the quickstart's short-run recipe of ``conf/train.yaml``
    (He init, fused one-cycle AdamW), which learns in a few hundred steps where the paper's
    section 5 recipe stays at chance. ``overrides`` are Hydra's, e.g. ``"optimizer.lr=1e-4"``,
    ``"norm=none"`` or ``"model.net.towers=1"``."""
    model = build_model(compose_train_config(overrides), num_classes)
    assert isinstance(model, LitAlexNet)
    return model


def compose_train_config(overrides: Sequence[str] = ()) -> DictConfig:
    """``python -m lit_alexnet.train``'s config with ``overrides``, composed outside a run."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from lit_alexnet.config import config_dir, register_configs

    register_configs()
    if GlobalHydra.instance().is_initialized():  # inside a Hydra app or test: compose there
        return compose("train", overrides=list(overrides))
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def trainer_precision(trainer_cfg: DictConfig) -> str:
    """``trainer.precision``, with ``auto`` replaced by this machine's choice (said once)."""
    precision = str(trainer_cfg.precision)
    if precision != AUTO:
        return precision
    return auto_precision(str(trainer_cfg.get("accelerator", AUTO)))


def train(cfg: DictConfig) -> float:
    """Fit (and optionally test) as ``cfg`` says; print and return the final val top-1 error.

    A config refused before training leaves no output folder behind; Ctrl-C saves
    ``last.ckpt``, says where it is and exits with 130, the shell's code for an interrupt.
    ``results.json`` in the output directory says how the job stands or ended
    (:mod:`lit_alexnet.runs`).
    """
    started = time.monotonic()
    try:
        datamodule, model, trainer = build(cfg)
    except Exception:
        _remove_unused(output_dir())
        raise
    record: dict[str, Any] = {
        "status": "running",
        "overrides": _job_overrides(),
        "version": __version__,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_results(output_dir(), record)
    lines: list[str] = []
    try:
        resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
        for logger in trainer.loggers:
            logger.log_hyperparams(resolved)
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        except SystemExit:
            if not trainer.interrupted:
                raise
            record["status"] = "interrupted"
            last = output_dir() / "checkpoints" / "last.ckpt"
            lines.append(
                f"interrupted: resume with ckpt_path={_shown(last)}"
                if last.exists()
                else "interrupted before the first checkpoint: nothing to resume from"
            )
            raise SystemExit(130) from None
        fit_s = time.monotonic() - started
        if MONITOR not in trainer.callback_metrics:
            # The last epoch was not one that validates (check_val_every_n_epoch).
            trainer.validate(model, datamodule=datamodule, verbose=False)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        top1, top5 = metrics[MONITOR], metrics["val/top5_error"]
        record["val"] = {"top1_error": top1, "top5_error": top5}
        if cfg.test:
            (result,) = trainer.test(model, datamodule=datamodule, ckpt_path="best", verbose=False)
            views = getattr(datamodule, "test_views", "center")
            record["test"] = {
                "views": views,
                "top1_error": result["test/top1_error"],
                "top5_error": result["test/top5_error"],
            }
            lines.append(
                f"test ({views}) top-1 error {result['test/top1_error']:.3f} | "
                f"top-5 error {result['test/top5_error']:.3f}"
            )
        images = int(getattr(model, "train_images", 0)) * trainer.world_size
        record.update(
            status="done",
            epochs=trainer.current_epoch,
            steps=trainer.global_step,
            train_images=images,
            train_images_per_s=images / fit_s if fit_s > 0 else None,
        )
        if _wandb_offline(cfg):
            wandb_dir = output_dir() / "wandb"
            lines.append(f"W&B run saved offline in {_shown(wandb_dir)} (`wandb sync` uploads it)")
        lines.append(
            f"val top-1 error {top1:.3f} | top-5 error {top5:.3f} | {_shown(output_dir())}"
        )
        return top1
    except BaseException as e:
        if record["status"] == "running":
            record.update(status="failed", error=f"{type(e).__name__}: {e}")
        raise
    finally:
        record["wall_s"] = round(time.monotonic() - started, 1)
        if trainer.is_global_zero:
            write_results(output_dir(), record)
        _finish_wandb()
        # After W&B's own summary, so that the run's summary is the last thing on the console.
        for line in lines:
            print(line, flush=True)


def _job_overrides() -> list[str]:
    """The job's command-line overrides, as Hydra recorded them."""
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:  # not inside a Hydra job (a test calling train directly)
        return []


def _wandb_offline(cfg: DictConfig) -> bool:
    logger = cfg.get("logger")
    if logger is None or not str(logger.get("_target_", "")).endswith("WandbLogger"):
        return False
    return (
        str(logger.get("mode", "online")) != "online" and os.environ.get("WANDB_MODE") != "online"
    )


def _remove_unused(job_dir: Path) -> None:
    """Delete a job folder holding only what Hydra wrote (its config and log), and the
    folders above it that this leaves empty, up to the outputs root."""
    if not job_dir.is_dir():
        return
    if any(p.name != ".hydra" and p.suffix != ".log" for p in job_dir.iterdir()):
        return
    shutil.rmtree(job_dir, ignore_errors=True)
    for parent in list(job_dir.parents)[:2]:
        try:
            parent.rmdir()  # only if empty
        except OSError:
            break


def _finish_wandb() -> None:
    # Each job of a multirun needs its own W&B run; without finish() the next job appends
    # to this one. Only a run that imported wandb (the W&B logger) has one to finish.
    if "wandb" in sys.modules:
        sys.modules["wandb"].finish()
