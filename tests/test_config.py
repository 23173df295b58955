"""The Hydra config tree: every experiment composes, and bad configs fail before any data."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch
import yaml
from hydra.core.config_store import ConfigStore
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from lit_alexnet.checks import Invalid
from lit_alexnet.config import (
    ModelConfig,
    TrainConfig,
    TrainerConfig,
    config_dir,
    register_configs,
    validate,
)
from lit_alexnet.job import build, build_model
from lit_alexnet.nn import AlexNet, LocalResponseNorm
from lit_alexnet.optim import PaperSGD, PlateauDecay

if TYPE_CHECKING:
    from conftest import Composer

EXPERIMENTS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))


def test_the_experiments_are_there() -> None:
    assert {"paper", "smoke"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_validates(
    experiment: str, tmp_path: Path, composed: Composer
) -> None:
    cfg = composed(f"+experiment={experiment}", f"++data.root={tmp_path}")
    validate(cfg)
    OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("overrides", [[], ["optimizer=paper_sgd"], ["optimizer=sgd"]])
def test_resolved_config_has_the_recipe_keys(overrides: list[str], composed: Composer) -> None:
    cfg = composed(*overrides)
    keys = ["optimizer.lr", "optimizer.weight_decay", "data.batch_size", "trainer.max_epochs"]
    if cfg.optimizer._target_ != "torch.optim.AdamW":
        keys.append("optimizer.momentum")
    for key in keys:
        assert OmegaConf.select(cfg, key) is not None, key


def test_quickstart_keeps_the_papers_network(composed: Composer) -> None:
    cfg = composed()
    net = cfg.model.net
    assert (net.norm.name, net.pooling.name, net.towers) == ("lrn", "overlap", 2)
    assert net.dropout == 0.5 and net.activation == "relu"
    assert cfg.scheduler.max_lr == cfg.optimizer.lr  # one cycle peaks at the optimizer's lr


def test_paper_experiment_is_section_5(tmp_path: Path, composed: Composer) -> None:
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
    tower = build_model(cfg, num_classes=10).net.towers[0]
    assert isinstance(tower.norm1, LocalResponseNorm)  # section 3.3's figures:
    assert (tower.norm1.size, tower.norm1.alpha, tower.norm1.beta, tower.norm1.k) == (
        5,
        1e-4,
        0.75,
        2.0,
    )
    assert (tower.pool.kernel_size, tower.pool.stride) == (3, 2)  # section 3.4
    assert tower.dropout.p == 0.5  # section 4.2
    assert cfg.model.net.init == "paper"
    assert cfg.trainer.precision == "32-true"


@pytest.mark.parametrize(("choice", "kernel"), [("overlap", 3), ("standard", 2)])
def test_pooling_groups(choice: str, kernel: int, composed: Composer) -> None:
    pool = build_model(composed(f"pooling={choice}"), num_classes=10).net.towers[0].pool
    assert (pool.kernel_size, pool.stride) == (kernel, 2)


def test_a_pooling_preset_can_be_changed_key_by_key(composed: Composer) -> None:
    cfg = composed("pooling=standard", "model.net.pooling.stride=1")
    pool = build_model(cfg, num_classes=10).net.towers[0].pool
    assert (pool.kernel_size, pool.stride) == (2, 1)


@pytest.mark.parametrize("choice", ["lrn", "none", "batch"])
def test_norm_groups(choice: str, composed: Composer) -> None:
    assert composed(f"norm={choice}").model.net.norm.name == choice


def test_unknown_group_option_fails_at_composition(composed: Composer) -> None:
    with pytest.raises(ConfigCompositionException, match="overlapp"):
        composed("pooling=overlapp")


def test_misspelt_key_fails_at_composition(composed: Composer) -> None:
    with pytest.raises(ConfigCompositionException, match="max_epoch"):
        composed("trainer.max_epoch=3")
    with pytest.raises(ConfigCompositionException, match="tower"):
        composed("model.net.tower=1")


def test_wrong_type_fails_at_composition(composed: Composer) -> None:
    with pytest.raises(ConfigCompositionException, match="towers"):
        composed("model.net.towers=two")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.net.towers=3", "model.net.towers=3"),
        ("optimizer.lr=-0.01", "optimizer.lr=-0.01"),
        ("optimizer=paper_sgd optimizer.momentum=1.5", "optimizer.momentum=1.5"),
        ("model.net.dropout=1.0", "model.net.dropout=1.0"),
        ("data.batch_size=0", "data.batch_size=0"),
        ("model.net.norm.name=lrm", "model.net.norm.name='lrm'"),
        ("model.net.pooling.kernel_size=0", "model.net.pooling.kernel_size=0"),
        ("model.net.activation=gelu", "model.net.activation='gelu'"),
        ("model.net.init=xavier", "model.net.init='xavier'"),
        ("optimizer.betas=[0.9,1.5]", "optimizer.betas="),
        ("scheduler.pct_start=1.5", "scheduler.pct_start=1.5"),
    ],
)
def test_bad_values_fail_validation_naming_the_key(
    override: str, message: str, composed: Composer
) -> None:
    cfg = composed(*override.split())
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        build(cfg)


def _paper_sgd(**kwargs: float) -> PaperSGD:
    return PaperSGD([torch.ones(1, requires_grad=True)], **kwargs)


@pytest.mark.parametrize(
    ("overrides", "library"),
    [
        (["optimizer.lr=-0.01"], lambda: _paper_sgd(lr=-0.01)),
        (["optimizer=sgd", "optimizer.weight_decay=-1.0"], lambda: _paper_sgd(weight_decay=-1.0)),
        (["optimizer=paper_sgd", "optimizer.momentum=1.5"], lambda: _paper_sgd(momentum=1.5)),
        (
            ["scheduler=plateau", "trainer.check_val_every_n_epoch=1", "scheduler.factor=1.0"],
            lambda: PlateauDecay(_paper_sgd(), factor=1.0),
        ),
        (["model.net.norm.k=0"], lambda: LocalResponseNorm(k=0.0)),
        (["model.net.dropout=1.0"], lambda: AlexNet(dropout=1.0)),
    ],
    ids=["lr", "weight_decay", "momentum", "factor", "lrn-k", "dropout"],
)
def test_a_config_value_is_refused_by_the_library_classes_own_check(
    overrides: list[str], library: Any, composed: Composer
) -> None:
    """One check per value: the schema calls the function the class it configures calls, so
    the two refusals read the same, the config's with the key's path in front."""
    with pytest.raises(Invalid) as by_class:
        library()
    with pytest.raises(Invalid) as by_config:
        validate(composed(*overrides))
    prefix = overrides[-1].split("=")[0].rsplit(".", 1)[0]
    assert str(by_config.value) == f"{prefix}.{by_class.value}"


def test_bad_value_fails_before_any_data_is_made(cache_dir: Path, composed: Composer) -> None:
    before = set(cache_dir.iterdir())
    with pytest.raises(ValueError):
        build(composed("optimizer.lr=-1", "+experiment=smoke"))
    assert set(cache_dir.iterdir()) == before


def test_imagenet_without_root_says_what_to_do(composed: Composer) -> None:
    with pytest.raises(ValueError, match=r"data\.root"):
        validate(composed("data=imagenet"))


def test_missing_data_folder_is_named(tmp_path: Path, composed: Composer) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        validate(composed("data=folder", f"data.root={missing}"))


def test_a_shards_root_read_as_a_folder_is_refused_with_the_fix(
    tmp_path: Path, composed: Composer
) -> None:
    (tmp_path / "shards.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match=r"holds webdataset shards.*data=shards"):
        validate(composed("data=folder", f"data.root={tmp_path}"))


def test_wandb_is_offline_unless_asked(monkeypatch: pytest.MonkeyPatch, composed: Composer) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert composed().logger.mode == "offline"
    assert composed("logger.mode=online").logger.mode == "online"
    monkeypatch.setenv("WANDB_MODE", "online")
    assert composed().logger.mode == "online"


@pytest.mark.parametrize("logger", ["csv", "tensorboard", "none", "wandb"])
def test_logger_choices_build(logger: str, composed: Composer) -> None:
    _, _, trainer = build(composed(f"logger={logger}", "+experiment=smoke"))
    assert len(trainer.loggers) == (0 if logger == "none" else 1)


@pytest.mark.parametrize(
    "override", ["trainer.max_epochs=ten", "trainer.num_nodes=two", "trainer.benchmark=maybe"]
)
def test_trainer_keys_are_typed_so_a_wrong_type_fails_while_composing(
    override: str, composed: Composer
) -> None:
    with pytest.raises(ConfigCompositionException):
        composed(override)


def test_trainer_ranges_are_checked_with_the_key_named(composed: Composer) -> None:
    with pytest.raises(ValueError, match=r"trainer.accumulate_grad_batches=0"):
        validate(composed("trainer.accumulate_grad_batches=0"))


def test_the_quickstart_recipe_is_one_call_away() -> None:
    from lit_alexnet.job import quickstart

    model = quickstart(num_classes=3)
    assert model.hparams["net"]["init"] == "kaiming"
    assert model.optimizer_factory.func.__name__ == "AdamW"  # type: ignore[union-attr]
    assert model.scheduler_factory.func.__name__ == "OneCycleLR"  # type: ignore[union-attr]
    ungrouped = quickstart(num_classes=3, overrides=["model.net.towers=1"])
    assert len(ungrouped.net.towers) == 1


def test_imagenet_is_the_folder_dataset_with_the_papers_settings(
    tmp_path: Path, composed: Composer
) -> None:
    imagenet = composed("data=imagenet", f"data.root={tmp_path}").data
    assert imagenet == composed("data=folder", f"data.root={tmp_path}").data
    assert (imagenet.batch_size, imagenet.mean, imagenet.lighting_std) == (128, "image", 0.1)


@pytest.mark.parametrize("data", ["builtin", "folder", "imagenet"])
def test_smoke_composes_with_every_data_option_and_limits_the_run(
    composed: Composer, tmp_path: Path, data: str
) -> None:
    root = [] if data == "builtin" else [f"data.root={tmp_path}"]
    cfg = composed("+experiment=smoke", f"data={data}", *root)

    validate(cfg)
    assert cfg.data._target_.endswith("builtin_datamodule" if data == "builtin" else "_datamodule")
    assert (cfg.trainer.max_epochs, cfg.trainer.limit_train_batches) == (1, 4)
    assert cfg.trainer.limit_val_batches == 2
    if data == "builtin":  # the user's choice of the built-in data keeps its own sizes
        assert cfg.data.train_per_class == 100


def test_the_plateau_schedule_without_validation_every_epoch_is_refused(
    composed: Composer,
) -> None:
    # The quickstart validates every other epoch; ReduceLROnPlateau would find no val error
    # at the end of the first and stop the run there, after an epoch of training.
    with pytest.raises(ValueError, match=r"trainer\.check_val_every_n_epoch=1"):
        validate(composed("scheduler=plateau"))
    validate(composed("scheduler=plateau", "trainer.check_val_every_n_epoch=1"))
    validate(composed("+ablation=paper_recipe"))


README = Path(__file__).resolve().parents[1] / "README.md"


def config_group_mismatches(conf: Path, readme: str) -> list[str]:
    """Where the tables of README's "### Config groups" and the YAML files under ``conf/``
    disagree: a group or an option that one names and the other lacks, or an option marked
    "(default)" that is not ``train.yaml``'s."""
    section = readme.split("\n### Config groups\n", 1)[1].split("\n## ", 1)[0]
    table: dict[str, list[str]] = {}
    marked: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        group = cells[0].strip("`")
        table[group] = re.findall(r"`([^`]+)`", cells[1])
        for option in re.findall(r"`([^`]+)` \(default", cells[1]):
            marked[group] = option
    files = {
        folder.relative_to(conf).as_posix(): sorted(p.stem for p in folder.glob("*.yaml"))
        for folder in sorted(conf.rglob("*"))
        if folder.is_dir() and any(folder.glob("*.yaml"))
    }
    problems = [f"README lacks group {g} ({files[g]})" for g in files.keys() - table.keys()]
    problems += [f"README names group {g}, which conf/ lacks" for g in table.keys() - files.keys()]
    for group in files.keys() & table.keys():
        named, there = set(table[group]), set(files[group])
        problems += [f"README lacks {group}={o}" for o in sorted(there - named)]
        problems += [f"README names {group}={o}, which conf/ lacks" for o in sorted(named - there)]
    defaults = yaml.safe_load((conf / "train.yaml").read_text(encoding="utf-8"))["defaults"]
    chosen = {k: v for entry in defaults if isinstance(entry, dict) for k, v in entry.items()}
    if marked != chosen:
        problems.append(f"README marks {marked} as the defaults; train.yaml chooses {chosen}")
    return problems


def test_the_readme_names_every_config_group_and_option() -> None:
    assert config_group_mismatches(config_dir(), README.read_text(encoding="utf-8")) == []


def test_the_readme_check_sees_an_option_added_or_removed(tmp_path: Path) -> None:
    conf = shutil.copytree(config_dir(), tmp_path / "conf")
    (conf / "data" / "extra.yaml").write_text("batch_size: 1\n", encoding="utf-8")
    (conf / "logger" / "csv.yaml").unlink()
    (conf / "newgroup").mkdir()
    (conf / "newgroup" / "one.yaml").write_text("{}\n", encoding="utf-8")
    problems = config_group_mismatches(conf, README.read_text(encoding="utf-8"))
    assert sorted(problems) == [
        "README lacks data=extra",
        "README lacks group newgroup (['one'])",
        "README names logger=csv, which conf/ lacks",
    ]


# The schemas of the groups whose YAML files do not name theirs in their defaults list.
TYPED_GROUPS: dict[str, Any] = {"model": ModelConfig, "trainer": TrainerConfig}


def _schema_and_parent(group: str, raw: dict[str, Any]) -> dict[str, Any]:
    """What a group option's own keys are written over: its schema's defaults (MISSING ones
    left out) and those of the option it extends."""
    under: dict[str, Any] = {}
    schema = TYPED_GROUPS.get(group)
    if schema is not None:
        under.update(OmegaConf.to_container(OmegaConf.structured(schema)))  # type: ignore[arg-type]
    for entry in raw.get("defaults", []):
        if not isinstance(entry, str) or entry == "_self_":
            continue
        if entry.startswith("/schema_"):
            node = ConfigStore.instance().load(entry[1:].split("@")[0] + ".yaml").node
            under.update(OmegaConf.to_container(node))  # type: ignore[arg-type]
        else:  # another option of the group, which this one extends
            parent = config_dir() / group / f"{entry}.yaml"
            parent_raw = yaml.safe_load(parent.read_text(encoding="utf-8"))
            under.update(_schema_and_parent(group, parent_raw))
            under.update({k: v for k, v in parent_raw.items() if k != "defaults"})
    return {k: v for k, v in under.items() if v != "???"}


SCHEMA_GROUPS = ["data", "model", "optimizer", "scheduler", "trainer"]


@pytest.mark.parametrize(
    "path",
    [p for g in SCHEMA_GROUPS for p in sorted((config_dir() / g).glob("*.yaml"))],
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_no_yaml_value_repeats_its_schemas_default(path: Path) -> None:
    """Each value has one home: a YAML file sets what its schema leaves MISSING or changes
    what the schema (or the option it extends) says, never the same again."""
    register_configs()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    under = _schema_and_parent(path.parent.name, raw)
    repeats = {k: v for k, v in raw.items() if k != "defaults" and k in under and under[k] == v}
    assert not repeats, f"{path.name} repeats {repeats}"


def test_the_primary_config_sets_what_its_schema_leaves_missing() -> None:
    raw = yaml.safe_load((config_dir() / "train.yaml").read_text(encoding="utf-8"))
    schema = OmegaConf.to_container(OmegaConf.structured(TrainConfig))
    assert isinstance(schema, dict)
    repeats = {k: v for k, v in raw.items() if k in schema and schema[k] == v}
    assert not repeats, f"train.yaml repeats {repeats}"


def test_a_wandb_run_is_named_for_its_task_and_its_job_in_a_multirun(composed: Composer) -> None:
    # ${hydra:job.num} is None outside a multirun: the name was "train-None".
    assert composed("logger=wandb").logger.name == "train"
    assert composed("logger=wandb", "+experiment=smoke").logger.name == "smoke"
    assert composed("logger=wandb", "hydra.job.num=3").logger.name == "train-3"


def test_a_sweeps_wandb_runs_share_its_group(composed: Composer) -> None:
    assert composed("logger=wandb").logger.group is None
    job = composed("logger=wandb", "hydra.job.num=3", "hydra.sweep.dir=multirun/sweep1")
    assert job.logger.group == "multirun/sweep1"


def test_the_tensorboard_logger_without_tensorboard_is_refused_before_training(
    composed: Composer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = composed("logger=tensorboard")
    validate(cfg)  # installed here, by the test extra
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("tensorboard", "tensorboardX") else real(name, *a),
    )
    with pytest.raises(Invalid, match=r"pip install 'lit-alexnet\[tensorboard\]'"):
        validate(cfg)
