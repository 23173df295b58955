"""The Hydra config tree: every experiment composes, and bad configs fail before any data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from lit_alexnet.config import config_dir, register_configs, validate
from lit_alexnet.run import build

EXPERIMENTS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))


@pytest.fixture(autouse=True)
def hydra_context() -> Iterator[None]:
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        yield


def composed(*overrides: str) -> DictConfig:
    cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    with read_write(cfg.hydra):
        cfg.hydra.runtime.output_dir = "/tmp/lit_alexnet-config-test"
    HydraConfig.instance().set_config(cfg)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]  # as in a running job: Hydra's own node is not part of the task's cfg
    return cfg


def test_the_experiments_are_there() -> None:
    assert {"paper", "smoke"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_validates(experiment: str, tmp_path: Path) -> None:
    cfg = composed(f"+experiment={experiment}", f"++data.root={tmp_path}")
    validate(cfg)
    OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("overrides", [[], ["optimizer=paper_sgd"], ["optimizer=sgd"]])
def test_resolved_config_has_the_recipe_keys(overrides: list[str]) -> None:
    cfg = composed(*overrides)
    keys = ["optimizer.lr", "optimizer.weight_decay", "data.batch_size", "trainer.max_epochs"]
    if cfg.optimizer._target_ != "torch.optim.AdamW":
        keys.append("optimizer.momentum")
    for key in keys:
        assert OmegaConf.select(cfg, key) is not None, key


def test_quickstart_keeps_the_papers_network() -> None:
    cfg = composed()
    assert (cfg.norm.name, cfg.pooling.name, cfg.model.towers) == ("lrn", "overlap", 2)
    assert cfg.model.dropout == 0.5 and cfg.model.activation == "relu"
    assert cfg.scheduler.max_lr == cfg.optimizer.lr  # one cycle peaks at the optimizer's lr


def test_paper_experiment_is_section_5(tmp_path: Path) -> None:
    cfg = composed("+experiment=paper", f"data.root={tmp_path}")
    assert cfg.optimizer._target_ == "lit_alexnet.PaperSGD"
    assert (cfg.optimizer.lr, cfg.optimizer.momentum, cfg.optimizer.weight_decay) == (
        0.01,
        0.9,
        0.0005,
    )
    assert cfg.data.batch_size == 128
    assert cfg.trainer.max_epochs == 90
    assert cfg.scheduler._target_ == "lit_alexnet.PlateauDecay"
    assert (cfg.scheduler.factor, cfg.scheduler.max_reductions) == (0.1, 3)
    assert cfg.data._target_ == "lit_alexnet.data.backends.folder_datamodule"
    assert (cfg.norm.name, cfg.pooling.kernel_size, cfg.pooling.stride) == ("lrn", 3, 2)
    assert cfg.model.towers == 2 and cfg.model.dropout == 0.5
    assert cfg.model.init == "paper"
    assert cfg.trainer.precision == "32-true"


@pytest.mark.parametrize(("choice", "kernel"), [("overlap", 3), ("standard", 2)])
def test_pooling_groups(choice: str, kernel: int) -> None:
    cfg = composed(f"pooling={choice}")
    assert (cfg.pooling.kernel_size, cfg.pooling.stride) == (kernel, 2)


@pytest.mark.parametrize("choice", ["lrn", "none", "batch"])
def test_norm_groups(choice: str) -> None:
    assert composed(f"norm={choice}").norm.name == choice


def test_unknown_group_option_fails_at_composition() -> None:
    with pytest.raises(ConfigCompositionException, match="overlapp"):
        composed("pooling=overlapp")


def test_misspelt_key_fails_at_composition() -> None:
    with pytest.raises(ConfigCompositionException, match="max_epoch"):
        composed("trainer.max_epoch=3")
    with pytest.raises(ConfigCompositionException, match="tower"):
        composed("model.tower=1")


def test_wrong_type_fails_at_composition() -> None:
    with pytest.raises(ConfigCompositionException, match="towers"):
        composed("model.towers=two")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.towers=3", "model.towers=3"),
        ("optimizer.lr=-0.01", "optimizer.lr=-0.01"),
        ("optimizer=paper_sgd optimizer.momentum=1.5", "optimizer.momentum=1.5"),
        ("model.dropout=1.0", "model.dropout=1.0"),
        ("data.batch_size=0", "data.batch_size=0"),
        ("norm.name=lrm", "norm.name='lrm'"),
        ("pooling.kernel_size=0", "pooling.kernel_size=0"),
        ("model.activation=gelu", "model.activation='gelu'"),
        ("model.init=xavier", "model.init='xavier'"),
        ("optimizer.betas=[0.9,1.5]", "optimizer.betas="),
        ("scheduler.pct_start=1.5", "scheduler.pct_start=1.5"),
    ],
)
def test_bad_values_fail_validation_naming_the_key(override: str, message: str) -> None:
    cfg = composed(*override.split())
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        build(cfg)


def test_bad_value_fails_before_any_data_is_made(cache_dir: Path) -> None:
    before = set(cache_dir.iterdir())
    with pytest.raises(ValueError):
        build(composed("optimizer.lr=-1", "+experiment=smoke"))
    assert set(cache_dir.iterdir()) == before


def test_imagenet_without_root_says_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"data\.root"):
        validate(composed("data=imagenet"))


def test_missing_data_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        validate(composed("data=folder", f"data.root={missing}"))


def test_wandb_is_offline_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert composed().logger.mode == "offline"
    assert composed("logger.mode=online").logger.mode == "online"
    monkeypatch.setenv("WANDB_MODE", "online")
    assert composed().logger.mode == "online"


@pytest.mark.parametrize("logger", ["csv", "tensorboard", "none", "wandb"])
def test_logger_choices_build(logger: str) -> None:
    _, _, trainer = build(composed(f"logger={logger}", "+experiment=smoke"))
    assert len(trainer.loggers) == (0 if logger == "none" else 1)


@pytest.mark.parametrize(
    "override", ["trainer.max_epochs=ten", "trainer.num_nodes=two", "trainer.benchmark=maybe"]
)
def test_trainer_keys_are_typed_so_a_wrong_type_fails_while_composing(override: str) -> None:
    with pytest.raises(ConfigCompositionException):
        composed(override)


def test_trainer_ranges_are_checked_with_the_key_named() -> None:
    with pytest.raises(ValueError, match=r"trainer.accumulate_grad_batches=0"):
        validate(composed("trainer.accumulate_grad_batches=0"))


def test_the_quickstart_recipe_is_one_call_away() -> None:
    from lit_alexnet import LitAlexNet

    model = LitAlexNet.quickstart(num_classes=3)
    assert model.hparams["init"] == "kaiming"
    assert model.optimizer_factory.func.__name__ == "AdamW"  # type: ignore[union-attr]
    assert model.scheduler_factory.func.__name__ == "OneCycleLR"  # type: ignore[union-attr]
    ungrouped = LitAlexNet.quickstart(num_classes=3, overrides=["model.towers=1"])
    assert len(ungrouped.net.towers) == 1


def test_imagenet_is_the_folder_dataset_with_the_papers_settings(tmp_path: Path) -> None:
    imagenet = composed("data=imagenet", f"data.root={tmp_path}").data
    assert imagenet == composed("data=folder", f"data.root={tmp_path}").data
    assert (imagenet.batch_size, imagenet.mean, imagenet.lighting_std) == (128, "image", 0.1)
