"""The training entry point end to end: the smoke run, resume, multirun, W&B offline, --help."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from lit_alexnet import AlexNet, LitAlexNet

from .wandb_records import config_and_history

FINAL_LINE = re.compile(r"^val top-1 error (\d\.\d{3}) \| top-5 error (\d\.\d{3}) \| (\S+)$", re.M)


def train_cli(*args: str, cwd: Path, cache_dir: Path, timeout: int = 300) -> str:
    env = {**os.environ, "LIT_ALEXNET_CACHE": str(cache_dir), "WANDB_MODE": "offline"}
    proc = subprocess.run(
        [sys.executable, "-m", "lit_alexnet.train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> tuple[Path, str]:
    """One smoke run through the real CLI with the default logger (W&B, offline)."""
    work = tmp_path_factory.mktemp("smoke")
    out = train_cli("+experiment=smoke", "hydra.run.dir=run", cwd=work, cache_dir=cache_dir)
    return work / "run", out


def test_smoke_run_prints_the_final_line(smoke_run: tuple[Path, str]) -> None:
    _, out = smoke_run
    match = FINAL_LINE.search(out)
    assert match, out[-2000:]
    top1, top5 = float(match[1]), float(match[2])
    assert 0.0 <= top5 <= top1 <= 1.0
    assert Path(match[3]) == Path("run")


def test_smoke_run_checkpoints_best_and_last(smoke_run: tuple[Path, str]) -> None:
    run_dir, _ = smoke_run
    names = {p.name for p in (run_dir / "checkpoints").glob("*.ckpt")}
    assert "last.ckpt" in names
    assert any(n.startswith("epoch000-top1err") for n in names), names


def test_checkpoint_loads_into_plain_alexnet_for_inference(smoke_run: tuple[Path, str]) -> None:
    run_dir, _ = smoke_run
    module = LitAlexNet.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    net = AlexNet(num_classes=10)
    net.load_state_dict(module.net.state_dict())
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), module.eval()(x))


def test_offline_wandb_run_lives_in_the_job_dir(smoke_run: tuple[Path, str]) -> None:
    run_dir, _ = smoke_run
    (run_file,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    config, history = config_and_history(run_file)
    hydra_record = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "config.yaml"))
    assert config["optimizer"] == hydra_record["optimizer"]  # type: ignore[index]
    assert config["data"]["train_per_class"] == 4
    assert config["trainer"]["default_root_dir"] == str(run_dir.resolve())
    logged = set().union(*history)
    for key in (
        "train/loss_step",
        "val/loss",
        "val/top1_error",
        "val/top5_error",
        "train/top1_error_epoch",
    ):
        assert key in logged, sorted(logged)
    assert any(k.startswith("lr-") for k in logged), sorted(logged)


def test_resume_from_last_checkpoint(
    smoke_run: tuple[Path, str], tmp_path: Path, cache_dir: Path
) -> None:
    run_dir, _ = smoke_run
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    out = train_cli(
        "+experiment=smoke",
        "logger=csv",
        f"ckpt_path={ckpt}",
        "trainer.max_epochs=2",
        "hydra.run.dir=resumed",
        cwd=tmp_path,
        cache_dir=cache_dir,
    )
    assert "Restoring states from the checkpoint" in out or "Restored all states" in out
    resumed = torch.load(tmp_path / "resumed/checkpoints/last.ckpt", weights_only=False)
    assert resumed["epoch"] == 1  # the second epoch only: the first came from the checkpoint
    assert resumed["global_step"] == 2 * torch.load(ckpt, weights_only=False)["global_step"]


def test_multirun_gives_each_job_its_own_dir_checkpoint_and_wandb_run(
    tmp_path: Path, cache_dir: Path
) -> None:
    out = train_cli(
        "-m",
        "pooling=overlap,standard",
        "+experiment=smoke",
        "hydra.sweep.dir=sweep",
        cwd=tmp_path,
        cache_dir=cache_dir,
        timeout=600,
    )
    assert len(FINAL_LINE.findall(out)) == 2
    run_ids = set()
    for job, kernel in (("0", 3), ("1", 2)):
        job_dir = tmp_path / "sweep" / job
        assert (job_dir / "checkpoints" / "last.ckpt").is_file()
        (run_file,) = (job_dir / "wandb").glob("offline-run-*/run-*.wandb")
        run_ids.add(run_file.stem)
        config, _ = config_and_history(run_file)
        assert config["pooling"]["kernel_size"] == kernel
    assert len(run_ids) == 2


def test_multirun_with_the_ddp_strategy_runs_the_sweep_once(
    tmp_path: Path, cache_dir: Path
) -> None:
    # Lightning's popen launcher would re-run `-m ...` in each new process, i.e. the sweep.
    out = train_cli(
        "-m",
        "seed=0,1",
        "+experiment=smoke",
        "strategy=two_device_ddp",
        "data.train_per_class=2",
        "data.val_per_class=1",
        "logger=csv",
        "hydra.sweep.dir=sweep",
        cwd=tmp_path,
        cache_dir=cache_dir,
        timeout=600,
    )
    assert len(FINAL_LINE.findall(out)) == 2
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1"]
    assert [p.name for p in tmp_path.iterdir()] == ["sweep"]  # no stray runs beside it
    # Each job ran two processes, one per device pair, and started nothing else.
    assert out.count("MEMBER: 1/2") == out.count("MEMBER: 2/2") == 2, out[-3000:]


def test_help_lists_the_config_groups(tmp_path: Path, cache_dir: Path) -> None:
    out = train_cli("--help", cwd=tmp_path, cache_dir=cache_dir)
    assert "== Configuration groups ==" in out
    assert "+experiment=paper" in out
    for group in (
        "data",
        "model",
        "norm",
        "pooling",
        "optimizer",
        "scheduler",
        "trainer",
        "logger",
        "callbacks",
        "experiment",
        "paths",
    ):
        assert re.search(rf"^{group}: ", out, re.M), group
    assert re.search(r"^pooling: overlap, standard$", out, re.M)


@pytest.mark.slow
def test_default_quickstart_learns(tmp_path: Path, cache_dir: Path) -> None:
    """The README's first command: the default config on the built-in dataset (~5 minutes).

    Issue 2 asks for at least 60% top-1 on the 10 classes; measured at 61.0% (README).
    """
    out = train_cli(
        "logger=csv", "hydra.run.dir=quickstart", cwd=tmp_path, cache_dir=cache_dir, timeout=1200
    )
    match = FINAL_LINE.search(out)
    assert match, out[-2000:]
    assert float(match[1]) <= 0.40
