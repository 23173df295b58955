"""Structured-config schemas for the Hydra config tree in ``conf/``.

Each config group's YAML files start from a schema stored here, so that a misspelt key or a
value of the wrong type fails while Hydra composes the config, and :func:`validate` checks
ranges and choices before anything is instantiated or any data is read.

Every value has one home. A schema's default is taken from the library (a signature or a
constant) or is the schema's own; a value that a YAML file sets, every ``_target_`` among
them, is ``MISSING`` here. The range checks are the library's own functions, which the
classes the configs instantiate call too.
"""

from __future__ import annotations

import importlib.util
import inspect
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import torch
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from lit_alexnet.checks import Invalid, Missing, check
from lit_alexnet.data.base import FolderDataModule
from lit_alexnet.data.builtin import BuiltinSpec
from lit_alexnet.data.choices import AUTO, check_data_options
from lit_alexnet.data.formats import SHARDS_INDEX
from lit_alexnet.data.torchvision import ImageFolderDataModule
from lit_alexnet.nn.alexnet import AlexNet, Norm, Pooling, check_arguments
from lit_alexnet.optim import (
    PaperSGD,
    PlateauDecay,
    check_plateau_arguments,
    check_sgd_arguments,
)


def config_dir() -> Path:
    """The Hydra config tree: inside the installed wheel, or ``conf/`` of a source checkout."""
    packaged = Path(str(resources.files("lit_alexnet"))) / "conf"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "conf"
    if checkout.is_dir():
        return checkout
    raise Missing(f"no Hydra config tree at {packaged} or {checkout}: reinstall lit-alexnet")


# The library's signatures own the paper's figures; the schemas take their defaults from them.
_NET = inspect.signature(AlexNet).parameters
_SGD = inspect.signature(PaperSGD).parameters
_PLATEAU = inspect.signature(PlateauDecay).parameters
_ADAMW = inspect.signature(torch.optim.AdamW).parameters
_SPEC = BuiltinSpec()
# The data config's defaults are the datamodules'.
_FOLDER = inspect.signature(FolderDataModule).parameters
_TORCHVISION = inspect.signature(ImageFolderDataModule).parameters


@dataclass
class NetConfig:
    """``model.net``: :class:`lit_alexnet.nn.AlexNet`'s arguments, whose defaults (the paper's
    net) these are; ``norm`` and ``pooling`` are the ``norm=`` and ``pooling=`` groups."""

    towers: int = _NET["towers"].default
    norm: Norm = field(default_factory=Norm)
    pooling: Pooling = field(default_factory=Pooling)
    activation: str = _NET["activation"].default
    dropout: float = _NET["dropout"].default
    init: str = _NET["init"].default
    half_width: bool = _NET["half_width"].default

    def __post_init__(self) -> None:
        check_arguments(self.towers, self.activation, self.dropout, self.init, self.half_width)


@dataclass
class ModelConfig:
    """``model``: the LightningModule around the net."""

    _target_: str = MISSING
    net: NetConfig = field(default_factory=NetConfig)
    compile: bool = MISSING  # torch.compile the net in place (LitAlexNet's compile)


@dataclass
class FactoryConfig:
    """A class, named by each option's YAML file, that the module calls later with what it
    needs (the parameters, the optimizer): every ``optimizer`` and ``scheduler`` option."""

    _target_: str = MISSING
    _partial_: bool = True


@dataclass
class OptimizerConfig(FactoryConfig):
    """``optimizer``: lr and weight decay default to section 5's (PaperSGD's)."""

    lr: float = _SGD["lr"].default
    weight_decay: float = _SGD["weight_decay"].default

    def __post_init__(self) -> None:
        check_sgd_arguments(self.lr, weight_decay=self.weight_decay)


@dataclass
class SGDConfig(OptimizerConfig):
    """``optimizer=paper_sgd`` or ``sgd``: section 5's SGD with momentum."""

    momentum: float = _SGD["momentum"].default

    def __post_init__(self) -> None:
        check_sgd_arguments(self.lr, self.momentum, self.weight_decay)


@dataclass
class AdamConfig(OptimizerConfig):
    """``optimizer=adamw``: AdamW, for short runs where the paper's SGD has no time to start."""

    betas: tuple[float, float] = _ADAMW["betas"].default
    fused: bool | None = _ADAMW["fused"].default

    def __post_init__(self) -> None:
        super().__post_init__()
        check(all(0 <= b < 1 for b in self.betas), "betas", self.betas, "must be in [0, 1)")


@dataclass
class PlateauConfig(FactoryConfig):
    """``scheduler=plateau``: the paper's drop of the learning rate on a validation plateau."""

    factor: float = _PLATEAU["factor"].default
    patience: int = _PLATEAU["patience"].default
    threshold: float = _PLATEAU["threshold"].default
    max_reductions: int = _PLATEAU["max_reductions"].default
    stop_after_last: bool = _PLATEAU["stop_after_last"].default

    def __post_init__(self) -> None:
        check_plateau_arguments(self.factor, self.patience, self.max_reductions)


@dataclass
class OneCycleConfig(FactoryConfig):
    """``scheduler=onecycle``: warm up to ``max_lr`` then anneal, over the whole run."""

    max_lr: float = MISSING
    pct_start: float = MISSING

    def __post_init__(self) -> None:
        check(self.max_lr > 0, "max_lr", self.max_lr, "must be positive")
        check(0 < self.pct_start < 1, "pct_start", self.pct_start, "must be in (0, 1)")


@dataclass
class DataConfig:
    """``data``: what every datamodule takes."""

    _target_: str = MISSING
    # auto: DALI where it is installed, else torchvision.
    backend: str = AUTO
    batch_size: int = _FOLDER["batch_size"].default
    mean: str = _FOLDER["mean"].default
    lighting_std: float = _FOLDER["lighting_std"].default
    val_views: str = _FOLDER["val_views"].default
    test_views: str = _FOLDER["test_views"].default
    # A file written by `python -m lit_alexnet.stats`; null: <root>/stats.npz, else computed on
    # first use from a sample of the training set and cached; "imagenet": the published figures.
    stats: str | None = _FOLDER["stats"].default
    verify: str = _FOLDER["verify"].default
    bad_files: str = _FOLDER["bad_files"].default
    # DALI only; off unless set, as in DaliImageDataModule (whose module this one does not
    # import: composing a config imports no DALI).
    device: str = AUTO
    num_threads: int | None = None
    channels_last: bool = False
    pipeline_seed: int | None = None
    # torchvision only.
    num_workers: int | None = _TORCHVISION["num_workers"].default
    pin_memory: bool = _TORCHVISION["pin_memory"].default

    def __post_init__(self) -> None:
        check_data_options(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass
class RootDataConfig(DataConfig):
    """A dataset on disk under ``data.root``, which must be a folder."""

    root: str = MISSING
    # The refusal of a root that is not a folder ends "point it at a root {holds}".
    holds: ClassVar[str]

    def __post_init__(self) -> None:
        super().__post_init__()
        if not Path(self.root).expanduser().is_dir():
            raise Missing(
                f"data.root={self.root!r} is not a folder: point it at a root {self.holds}"
            )


@dataclass
class FolderDataConfig(RootDataConfig):
    """``data=folder`` or ``data=imagenet``: an ImageFolder root on disk."""

    holds = "holding train/<class>/*.jpg and val/<class>/*.jpg"
    # For a flat root/val folder (ImageNet's): "path label" lines or one label per line.
    val_labels: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if (Path(self.root).expanduser() / SHARDS_INDEX).is_file():
            raise Invalid(
                f"data.root={self.root!r} holds webdataset shards, not class folders: read it "
                "with data=shards"
            )
        if self.val_labels is not None and not Path(self.val_labels).expanduser().is_file():
            raise Missing(f"data.val_labels={self.val_labels!r} is not a file")


@dataclass
class ShardsDataConfig(RootDataConfig):
    """``data=shards``: webdataset tar shards written by ``prepare --format shards``."""

    holds = "written by `python -m lit_alexnet.data.prepare SRC DST --format shards`"


@dataclass
class BuiltinDataConfig(DataConfig):
    """``data=builtin``: the generated dataset of shapes and textures."""

    cache_dir: str = MISSING
    num_classes: int = _SPEC.num_classes
    train_per_class: int = _SPEC.train_per_class
    val_per_class: int = _SPEC.val_per_class
    seed: int = _SPEC.seed

    def __post_init__(self) -> None:
        super().__post_init__()
        BuiltinSpec.take({f.name: getattr(self, f.name) for f in fields(self)})


@dataclass
class TrainerConfig:
    """``trainer``: :class:`lightning.pytorch.Trainer`'s arguments, typed, so that
    ``trainer.max_epochs=ten`` fails while composing; add others with ``+trainer.KEY=...``."""

    _target_: str = MISSING
    default_root_dir: str | None = None
    accelerator: str = MISSING
    devices: Any = MISSING  # a count, a list of indices or "auto"
    num_nodes: int = 1
    # "auto" (lit_alexnet.precision) or one of Lightning's: 32-true, bf16-mixed, 16-mixed, ...
    precision: str = MISSING
    max_epochs: int | None = None
    max_steps: int = -1
    check_val_every_n_epoch: int | None = 1
    val_check_interval: Any = None  # a fraction of an epoch or a count of batches
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    num_sanity_val_steps: int | None = None
    log_every_n_steps: int | None = None
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = None
    deterministic: Any = None  # true, false or "warn"
    benchmark: bool | None = None
    fast_dev_run: Any = False
    enable_progress_bar: bool | None = None
    enable_model_summary: bool | None = None
    profiler: Any = None

    def __post_init__(self) -> None:
        for key in ("max_epochs", "check_val_every_n_epoch", "log_every_n_steps"):
            value = getattr(self, key)
            check(value is None or value >= -1, f"{key}", value, "must be >= -1")
        check(self.num_nodes >= 1, "num_nodes", self.num_nodes, "must be >= 1")
        check(
            self.accumulate_grad_batches >= 1,
            "accumulate_grad_batches",
            self.accumulate_grad_batches,
            "must be >= 1",
        )


@dataclass
class TrainConfig:
    """The primary config of ``python -m lit_alexnet.train``."""

    data: Any = MISSING
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: Any = MISSING
    scheduler: Any = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    # "auto" or a Strategy's config (conf/strategy/).
    strategy: Any = MISSING
    logger: Any = None
    callbacks: Any = None
    paths: Any = MISSING
    # Set (and explained) in train.yaml.
    seed: int | None = MISSING
    ckpt_path: str | None = MISSING
    test: bool = MISSING
    task_name: str = MISSING


def register_configs() -> None:
    """Store the schemas in Hydra's ConfigStore (idempotent), by name rather than in config
    groups, so that `--help` lists only the groups a user chooses from."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="schema_data_builtin", node=BuiltinDataConfig)
    cs.store(name="schema_data_folder", node=FolderDataConfig)
    cs.store(name="schema_data_shards", node=ShardsDataConfig)
    cs.store(name="schema_optimizer_sgd", node=SGDConfig)
    cs.store(name="schema_optimizer_adamw", node=AdamConfig)
    cs.store(name="schema_scheduler_plateau", node=PlateauConfig)
    cs.store(name="schema_scheduler_onecycle", node=OneCycleConfig)
    # ${lit_alexnet.gpu_pairs:N}: the GPUs of N processes of the two-device strategy, for
    # hydra/launcher=slurm's gpus_per_node (interpolation alone cannot multiply).
    if not OmegaConf.has_resolver("lit_alexnet.gpu_pairs"):
        OmegaConf.register_new_resolver("lit_alexnet.gpu_pairs", lambda n: 2 * int(n))
    # ${lit_alexnet.run_name:TASK,${hydra:job.num}}: TASK for a single run, TASK-N for job N of
    # a multirun (where hydra.job.num is set; a single run's is None).
    if not OmegaConf.has_resolver("lit_alexnet.run_name"):
        OmegaConf.register_new_resolver("lit_alexnet.run_name", run_name)
    # ${lit_alexnet.sweep_group:${hydra:sweep.dir},${hydra:job.num}}: a multirun's folder, which
    # groups its jobs' W&B runs; None for a single run.
    if not OmegaConf.has_resolver("lit_alexnet.sweep_group"):
        OmegaConf.register_new_resolver(
            "lit_alexnet.sweep_group", lambda sweep, num: None if num is None else str(sweep)
        )


def run_name(task: str, job_num: int | None) -> str:
    """A run's name for its logger: the task, and the job's number within a multirun."""
    return str(task) if job_num is None else f"{task}-{job_num}"


# Innermost first, so that a refusal names the deepest key (model.net.norm.size=0).
KEYS_CHECKED = (
    "model.net.norm",
    "model.net.pooling",
    "model.net",
    "optimizer",
    "scheduler",
    "data",
    "trainer",
)


def validate(cfg: DictConfig) -> None:
    """Check every group's values against its schema's rules, raising :class:`Invalid` naming
    the key. Runs before anything is instantiated."""
    # keys(), not `in cfg.data`: a DictConfig hides keys whose value is missing (???).
    if "root" in cfg.data.keys() and OmegaConf.is_missing(cfg.data, "root"):  # noqa: SIM118
        raise Invalid(
            f"data.root is required for this dataset: add data.root=/path/to/root "
            f"(a folder with train/<class>/ and val/<class>/; {cfg.data._target_})"
        )
    for key in KEYS_CHECKED:
        node = OmegaConf.select(cfg, key)
        if node is None:
            continue
        try:
            OmegaConf.to_object(node)
        except ValueError as e:
            raise Invalid(f"{key}.{e}") from None
    every = OmegaConf.select(cfg, "trainer.check_val_every_n_epoch", default=1)
    target = OmegaConf.select(cfg, "scheduler._target_", default="")
    if target.endswith("PlateauDecay") and every != 1:
        raise Invalid(
            f"scheduler=plateau steps on each epoch's validation error, but "
            f"trainer.check_val_every_n_epoch={every} validates every {every}th epoch only: "
            "add trainer.check_val_every_n_epoch=1 (as +experiment=paper does)"
        )
    _check_logger_installed(OmegaConf.select(cfg, "logger._target_", default=""))


# A logger's package that a plain install lacks, and the extra that brings it.
_LOGGER_PACKAGES = {"TensorBoardLogger": (("tensorboard", "tensorboardX"), "tensorboard")}


def _check_logger_installed(target: str) -> None:
    for logger, (packages, extra) in _LOGGER_PACKAGES.items():
        if target.endswith(logger) and not any(importlib.util.find_spec(p) for p in packages):
            raise Invalid(
                f"logger={extra} needs the {extra} package, which is not installed: "
                f"pip install 'lit-alexnet[{extra}]', or log with logger=csv or logger=wandb"
            )
