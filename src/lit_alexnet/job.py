"""One training job from a composed config: what ``python -m lit_alexnet.train`` runs.

:func:`train` reads as the job goes: build what the config names, fit, validate the final
weights, test if asked, report. The side concerns sit in small helpers: the run record
(:class:`lit_alexnet.runs.RunRecord`), an interrupt (:func:`_fit`), and closing W&B before
the summary is printed (:func:`_summary_after_wandb`). The other commands compose a training
config here too (:func:`compose_train_config`, :func:`run_config`), so that every one of them
builds the same objects from the same YAML.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from lit_alexnet.callbacks import FinalValidation, wandb_identity
from lit_alexnet.config import config_dir, register_configs, validate
from lit_alexnet.console import quiet_console
from lit_alexnet.module import MONITOR, LitAlexNet
from lit_alexnet.precision import AUTO, auto_precision
from lit_alexnet.runs import RunRecord, run_dir_of, run_overrides


def compose_train_config(overrides: Sequence[str] = ()) -> DictConfig:
    """``python -m lit_alexnet.train``'s config with ``overrides``, composed outside a run."""
    register_configs()
    if GlobalHydra.instance().is_initialized():  # inside a Hydra app or test: compose there
        return compose("train", overrides=list(overrides))
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def run_config(path: str | Path, overrides: Sequence[str] = ()) -> DictConfig:
    """The training config of the run at ``path``, composed again with ``overrides`` on top
    (``data=folder``, ``data.root=...``), so a group switch works as on the command line."""
    return compose_train_config([*run_overrides(run_dir_of(path)), *overrides])


def build_model(cfg: DictConfig, num_classes: int) -> LitAlexNet:
    """The LitAlexNet of a composed config, with its optimizer and scheduler factories."""
    model = instantiate(
        cfg.model,
        _convert_="all",  # plain hyperparameters, so checkpoints load with weights_only=True
        num_classes=num_classes,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.scheduler is not None else None,
    )
    assert isinstance(model, LitAlexNet)
    return model


def quickstart(num_classes: int = 10, overrides: Sequence[str] = ()) -> LitAlexNet:
    """The paper's network with the quickstart's short-run recipe of ``conf/train.yaml``
    (He init, fused one-cycle AdamW), which learns in a few hundred steps where the paper's
    section 5 recipe stays at chance. ``overrides`` are Hydra's, e.g. ``"optimizer.lr=1e-4"``,
    ``"norm=none"`` or ``"model.net.towers=1"``."""
    return build_model(compose_train_config(overrides), num_classes)


def trainer_precision(trainer_cfg: DictConfig) -> str:
    """``trainer.precision``, with ``auto`` replaced by this machine's choice (said once)."""
    precision = str(trainer_cfg.precision)
    if precision != AUTO:
        return precision
    devices = trainer_cfg.get("devices", AUTO)
    if OmegaConf.is_list(devices):
        devices = list(devices)
    return auto_precision(str(trainer_cfg.get("accelerator", AUTO)), devices)


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, LitAlexNet, L.Trainer]:
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
    # Lightning hands wandb.init an `anonymous` argument whatever the user set, which wandb
    # (0.31 here) warns about whatever its value (wandb/wandb#10909, which names Lightning); the
    # logger has no public way to leave it out, and wandb's warning no filter reaches.
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    if not logger:  # logger=none: Lightning refuses a learning-rate monitor with nothing to log to
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    strategy = instantiate(cfg.strategy) if isinstance(cfg.strategy, DictConfig) else cfg.strategy
    trainer = instantiate(
        cfg.trainer,
        # Last, so that it sees the run's length after any callback has changed it.
        callbacks=[*callbacks, FinalValidation()],
        logger=logger,
        strategy=strategy,
        precision=trainer_precision(cfg.trainer),
    )
    return datamodule, model, trainer


def output_dir() -> Path:
    """The running Hydra job's output directory."""
    return Path(HydraConfig.get().runtime.output_dir)


def train(cfg: DictConfig) -> float:
    """Fit (and optionally test) as ``cfg`` says; print and return the final val top-1 error.

    A config refused before training leaves no output folder behind; Ctrl-C saves
    ``last.ckpt``, says where it is and exits with 130, the shell's code for an interrupt.
    ``results.json`` in the output directory says how the job stands or ended
    (:class:`lit_alexnet.runs.RunRecord`).
    """
    started = time.monotonic()
    with _removed_if_refused(output_dir()):
        datamodule, model, trainer = build(cfg)
    record = RunRecord(
        output_dir(),
        trainer.is_global_zero,
        overrides=_job_overrides(),
        version=version("lit-alexnet"),
    )
    summary: list[str] = []
    with _summary_after_wandb(summary), record.kept(started):
        resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
        for logger in trainer.loggers:
            logger.log_hyperparams(resolved)
        if (identity := wandb_identity(trainer)) is not None:
            record.update(wandb=identity)
        _fit(trainer, model, datamodule, cfg.ckpt_path, record, summary)
        fit_s = time.monotonic() - started
        top1, top5 = _final_validation(trainer, model, datamodule)
        record.update(val={"top1_error": top1, "top5_error": top5})
        if cfg.test:
            record.update(test=_test(trainer, model, datamodule, summary))
        images = model.train_images * trainer.world_size
        record.update(
            status="done",
            epochs=trainer.current_epoch,
            steps=trainer.global_step,
            train_images=images,
            train_images_per_s=images / fit_s if fit_s > 0 else None,
        )
        if _wandb_offline(cfg):
            wandb_dir = output_dir() / "wandb"
            summary.append(
                f"W&B run saved offline in {_shown(wandb_dir)} (`wandb sync` uploads it)"
            )
        summary.append(
            f"val top-1 error {top1:.3f} | top-5 error {top5:.3f} | {_shown(output_dir())}"
        )
        return top1


def _fit(
    trainer: L.Trainer,
    model: LitAlexNet,
    datamodule: L.LightningDataModule,
    ckpt_path: str | None,
    record: RunRecord,
    summary: list[str],
) -> None:
    """``trainer.fit``; an interrupt (Ctrl-C, which Lightning turns into ``SystemExit`` after
    saving ``last.ckpt``) ends the job with 130 and the ``ckpt_path=`` that resumes it."""
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except SystemExit:
        if not trainer.interrupted:
            raise
        record.update(status="interrupted")
        last = output_dir() / "checkpoints" / "last.ckpt"
        summary.append(
            f"interrupted: resume with ckpt_path={_shown(last)}"
            if last.exists()
            else "interrupted before the first checkpoint: nothing to resume from"
        )
        raise SystemExit(130) from None


def _final_validation(
    trainer: L.Trainer, model: LitAlexNet, datamodule: L.LightningDataModule
) -> tuple[float, float]:
    """The val top-1 and top-5 errors of the final weights, validating them once more where
    the fit ended between validations (``max_steps``, a plateau stop)."""
    final = next(c for c in trainer.callbacks if isinstance(c, FinalValidation))  # type: ignore[attr-defined]
    if final.needs_validation(trainer):
        trainer.validate(model, datamodule=datamodule, verbose=False)
    metrics = trainer.callback_metrics
    return float(metrics[MONITOR]), float(metrics["val/top5_error"])


def _test(
    trainer: L.Trainer, model: LitAlexNet, datamodule: L.LightningDataModule, summary: list[str]
) -> dict[str, Any]:
    """The best checkpoint's test errors with the datamodule's test views (ten crops)."""
    (result,) = trainer.test(model, datamodule=datamodule, ckpt_path="best", verbose=False)
    views = getattr(datamodule, "test_views", "center")
    top1, top5 = result["test/top1_error"], result["test/top5_error"]
    summary.append(f"test ({views}) top-1 error {top1:.3f} | top-5 error {top5:.3f}")
    return {"views": views, "top1_error": top1, "top5_error": top5}


@contextmanager
def _removed_if_refused(job_dir: Path) -> Iterator[None]:
    """Delete a job folder holding only what Hydra wrote (its config and log), and the
    folders above it that this leaves empty inside the working directory (Hydra's
    ``outputs/<date>``), when the block raises: a refused config leaves nothing behind."""
    try:
        yield
    except BaseException:
        if job_dir.is_dir() and all(
            p.name == ".hydra" or p.suffix == ".log" for p in job_dir.iterdir()
        ):
            shutil.rmtree(job_dir, ignore_errors=True)
            cwd = Path.cwd().resolve()
            for parent in list(job_dir.resolve().parents)[:2]:
                if parent == cwd or not parent.is_relative_to(cwd):
                    break
                try:
                    parent.rmdir()  # only if empty
                except OSError:
                    break
        raise


@contextmanager
def _summary_after_wandb(summary: list[str]) -> Iterator[None]:
    """Finish the W&B run when the block ends, then print ``summary``, so that the run's
    figures are the last thing on the console, after W&B's own summary."""
    try:
        yield
    finally:
        # Each job of a multirun needs its own W&B run; without finish() the next job appends
        # to this one. Only a run that imported wandb (the W&B logger) has one to finish.
        if "wandb" in sys.modules:
            sys.modules["wandb"].finish()
        for line in summary:
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


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)
