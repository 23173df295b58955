"""Structured-config schemas for the Hydra config tree in ``conf/``.

Each config group's YAML files start from a schema stored here, so that a misspelt key or a
value of the wrong type fails while Hydra composes the config, and :func:`validate` checks
ranges and choices before anything is instantiated or any data is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from lit_alexnet.data.choices import (
    BACKENDS,
    BAD_FILE_POLICIES,
    DEVICES,
    MEAN_MODES,
    VERIFY_MODES,
    VIEWS,
)
from lit_alexnet.nn.alexnet import ACTIVATIONS, INITS, NORMS, Pooling, feature_map_sizes


def config_dir() -> Path:
    """The Hydra config tree: inside the installed wheel, or ``conf/`` of a source checkout."""
    packaged = Path(str(resources.files("lit_alexnet"))) / "conf"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "conf"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"no Hydra config tree at {packaged} or {checkout}: reinstall lit-alexnet"
    )


def _choice(key: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        raise ValueError(f"{key}={value!r}: choose one of {list(allowed)}")


def _check(ok: bool, key: str, value: Any, rule: str) -> None:
    if not ok:
        raise ValueError(f"{key}={value!r} {rule}")


@dataclass
class ModelConfig:
    """``model``: the LightningModule and the net's non-ablation switches."""

    _target_: str = "lit_alexnet.LitAlexNet"
    towers: int = 2
    activation: str = "relu"
    dropout: float = 0.5
    init: str = "paper"

    def __post_init__(self) -> None:
        _choice("model.towers", self.towers, (1, 2))
        _choice("model.init", self.init, INITS)
        _choice("model.activation", self.activation, sorted(ACTIVATIONS))
        _check(0 <= self.dropout < 1, "model.dropout", self.dropout, "must be in [0, 1)")


@dataclass
class NormConfig:
    """``norm``: what follows conv1 and conv2 (section 3.3)."""

    name: str = "lrn"
    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0

    def __post_init__(self) -> None:
        _choice("norm.name", self.name, NORMS)
        _check(self.size >= 1, "norm.size", self.size, "must be a positive number of maps")
        _check(self.alpha >= 0, "norm.alpha", self.alpha, "must be non-negative")
        _check(self.k > 0, "norm.k", self.k, "must be positive")


@dataclass
class PoolingConfig:
    """``pooling``: max-pooling geometry (section 3.4)."""

    name: str = "overlap"
    kernel_size: int = 3
    stride: int = 2

    def __post_init__(self) -> None:
        _check(self.kernel_size >= 1, "pooling.kernel_size", self.kernel_size, "must be >= 1")
        _check(self.stride >= 1, "pooling.stride", self.stride, "must be >= 1")
        last = feature_map_sizes(Pooling(self.kernel_size, self.stride))[-1]
        _check(last >= 1, "pooling", self.name, "leaves no spatial extent at 224x224 input")


@dataclass
class OptimizerConfig:
    """``optimizer``: a factory called with the parameters."""

    _target_: str = MISSING
    _partial_: bool = True
    lr: float = 0.01
    weight_decay: float = 5e-4

    def __post_init__(self) -> None:
        _check(self.lr > 0, "optimizer.lr", self.lr, "must be positive")
        _check(self.weight_decay >= 0, "optimizer.weight_decay", self.weight_decay, "must be >= 0")


@dataclass
class SGDConfig(OptimizerConfig):
    """``optimizer=paper_sgd`` or ``sgd``: section 5's SGD with momentum."""

    momentum: float = 0.9

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(0 <= self.momentum < 1, "optimizer.momentum", self.momentum, "must be in [0, 1)")


@dataclass
class AdamConfig(OptimizerConfig):
    """``optimizer=adamw``: AdamW, for short runs where the paper's SGD has no time to start."""

    betas: tuple[float, float] = (0.9, 0.999)
    fused: bool | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(
            all(0 <= b < 1 for b in self.betas), "optimizer.betas", self.betas, "must be in [0, 1)"
        )


@dataclass
class PlateauConfig:
    """``scheduler=plateau``: the paper's drop of the learning rate on a validation plateau."""

    _target_: str = "lit_alexnet.PlateauDecay"
    _partial_: bool = True
    factor: float = 0.1
    patience: int = 1
    threshold: float = 1e-4
    max_reductions: int = 3

    def __post_init__(self) -> None:
        _check(0 < self.factor < 1, "scheduler.factor", self.factor, "must be in (0, 1)")
        _check(self.patience >= 0, "scheduler.patience", self.patience, "must be >= 0")
        _check(
            self.max_reductions >= 0,
            "scheduler.max_reductions",
            self.max_reductions,
            "must be >= 0",
        )


@dataclass
class OneCycleConfig:
    """``scheduler=onecycle``: warm up to ``max_lr`` then anneal, over the whole run."""

    _target_: str = "torch.optim.lr_scheduler.OneCycleLR"
    _partial_: bool = True
    max_lr: float = MISSING
    pct_start: float = 0.25

    def __post_init__(self) -> None:
        _check(self.max_lr > 0, "scheduler.max_lr", self.max_lr, "must be positive")
        _check(0 < self.pct_start < 1, "scheduler.pct_start", self.pct_start, "must be in (0, 1)")


@dataclass
class DataConfig:
    """``data``: what every datamodule takes."""

    _target_: str = MISSING
    # auto: DALI where it is installed, else torchvision.
    backend: str = "auto"
    batch_size: int = 128
    mean: str = "image"
    lighting_std: float = 0.1
    val_views: str = "center"
    test_views: str = "ten_crop"
    # Written by `python -m lit_alexnet.stats`; null: <root>/stats.npz, else ImageNet's figures.
    stats: str | None = None
    verify: str = "fast"
    bad_files: str = "skip"
    # DALI only.
    device: str = "auto"
    num_threads: int | None = None
    channels_last: bool = False
    pipeline_seed: int | None = None
    # torchvision only.
    num_workers: int | None = None
    pin_memory: bool = False

    def __post_init__(self) -> None:
        _choice("data.backend", self.backend, BACKENDS)
        _check(self.batch_size >= 1, "data.batch_size", self.batch_size, "must be positive")
        _choice("data.mean", self.mean, MEAN_MODES)
        _check(self.lighting_std >= 0, "data.lighting_std", self.lighting_std, "must be >= 0")
        _choice("data.val_views", self.val_views, VIEWS)
        _choice("data.test_views", self.test_views, VIEWS)
        _choice("data.verify", self.verify, VERIFY_MODES)
        _choice("data.bad_files", self.bad_files, BAD_FILE_POLICIES)
        _choice("data.device", self.device, DEVICES)
        _check(
            self.num_threads is None or self.num_threads >= 1,
            "data.num_threads",
            self.num_threads,
            "must be >= 1 or null (one per core)",
        )
        _check(
            self.num_workers is None or self.num_workers >= 0,
            "data.num_workers",
            self.num_workers,
            "must be >= 0 or null (one per spare core)",
        )


@dataclass
class FolderDataConfig(DataConfig):
    """``data=folder`` or ``data=imagenet``: an ImageFolder root on disk."""

    _target_: str = "lit_alexnet.data.backends.folder_datamodule"
    root: str = MISSING
    # For a flat root/val folder (ImageNet's): "path label" lines or one label per line.
    val_labels: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not Path(self.root).expanduser().is_dir():
            raise FileNotFoundError(
                f"data.root={self.root!r} is not a folder: point it at a root holding "
                "train/<class>/*.jpg and val/<class>/*.jpg"
            )
        if self.val_labels is not None and not Path(self.val_labels).expanduser().is_file():
            raise FileNotFoundError(f"data.val_labels={self.val_labels!r} is not a file")


@dataclass
class BuiltinDataConfig(DataConfig):
    """``data=builtin``: the generated dataset of shapes and textures."""

    _target_: str = "lit_alexnet.data.backends.builtin_datamodule"
    cache_dir: str = MISSING
    num_classes: int = 10
    train_per_class: int = 100
    val_per_class: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.num_classes >= 2, "data.num_classes", self.num_classes, "must be >= 2")
        for key in ("train_per_class", "val_per_class"):
            _check(getattr(self, key) >= 1, f"data.{key}", getattr(self, key), "must be >= 1")


@dataclass
class TrainerConfig:
    """``trainer``: :class:`lightning.pytorch.Trainer`'s arguments, typed, so that
    ``trainer.max_epochs=ten`` fails while composing; add others with ``+trainer.KEY=...``."""

    _target_: str = "lightning.pytorch.Trainer"
    default_root_dir: str | None = None
    accelerator: str = "auto"
    devices: Any = 1  # a count, a list of indices or "auto"
    num_nodes: int = 1
    # "auto" (lit_alexnet.precision) or one of Lightning's: 32-true, bf16-mixed, 16-mixed, ...
    precision: str = "auto"
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
            _check(value is None or value >= -1, f"trainer.{key}", value, "must be >= -1")
        _check(self.num_nodes >= 1, "trainer.num_nodes", self.num_nodes, "must be >= 1")
        _check(
            self.accumulate_grad_batches >= 1,
            "trainer.accumulate_grad_batches",
            self.accumulate_grad_batches,
            "must be >= 1",
        )


@dataclass
class TrainConfig:
    """The primary config of ``python -m lit_alexnet.train``."""

    data: Any = MISSING
    model: ModelConfig = field(default_factory=ModelConfig)
    norm: NormConfig = field(default_factory=NormConfig)
    pooling: PoolingConfig = field(default_factory=PoolingConfig)
    optimizer: Any = MISSING
    scheduler: Any = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    # "auto" or a Strategy's config (conf/strategy/).
    strategy: Any = "auto"
    logger: Any = None
    callbacks: Any = None
    paths: Any = MISSING
    seed: int | None = 0
    ckpt_path: str | None = None
    test: bool = False
    task_name: str = "train"


def register_configs() -> None:
    """Store the schemas in Hydra's ConfigStore (idempotent), by name rather than in config
    groups, so that `--help` lists only the groups a user chooses from."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="schema_data_builtin", node=BuiltinDataConfig)
    cs.store(name="schema_data_folder", node=FolderDataConfig)
    cs.store(name="schema_optimizer_sgd", node=SGDConfig)
    cs.store(name="schema_optimizer_adamw", node=AdamConfig)
    cs.store(name="schema_scheduler_plateau", node=PlateauConfig)
    cs.store(name="schema_scheduler_onecycle", node=OneCycleConfig)


def validate(cfg: DictConfig) -> None:
    """Check every group's values against its schema's rules, raising a ValueError that names
    the key. Runs before anything is instantiated."""
    # keys(), not `in cfg.data`: a DictConfig hides keys whose value is missing (???).
    if "root" in cfg.data.keys() and OmegaConf.is_missing(cfg.data, "root"):  # noqa: SIM118
        raise ValueError(
            f"data.root is required for this dataset: add data.root=/path/to/root "
            f"(a folder with train/<class>/ and val/<class>/; {cfg.data._target_})"
        )
    for key in ("model", "norm", "pooling", "optimizer", "scheduler", "data", "trainer"):
        node = cfg.get(key)
        if node is not None:
            OmegaConf.to_object(node)
