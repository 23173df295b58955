"""Clusters: sweeps through Hydra's submitit launchers, and multi-node runs of the two-device
DDP strategy under srun and torchrun, whose environments are simulated here (no cluster)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
import pytest
import torch
from hydra import compose
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from lightning.fabric.utilities import rank_zero as fabric_rank_zero
from lightning.pytorch.utilities import rank_zero as pytorch_rank_zero

from lit_alexnet import LitAlexNet, TwoDeviceDDPStrategy
from lit_alexnet.data.base import FolderDataModule
from lit_alexnet.job import build

from .test_train import train_cli

if TYPE_CHECKING:
    from conftest import Composer

# ----------------------------------------------------------------------------- sweeps


# Two smoke jobs in their own processes: about a minute on 2 cores, so with the slow tests
# (which CI runs too).
@pytest.mark.slow
def test_a_submitit_local_sweep_runs_each_job_in_its_own_process(
    tmp_path: Path, cache_dir: Path
) -> None:
    train_cli(
        "-m",
        "hydra/launcher=submitit_local",
        "+experiment=smoke",
        "pooling=overlap,standard",
        "logger=csv",
        "hydra.sweep.dir=sweep",
        cwd=tmp_path,
        cache_dir=cache_dir,
        timeout=600,
    )
    pids = set()
    for job, pooling, kernel in (("0", "overlap", 3), ("1", "standard", 2)):
        job_dir = tmp_path / "sweep" / job
        results = json.loads((job_dir / "results.json").read_text())
        assert results["status"] == "done", results
        assert f"pooling={pooling}" in results["overrides"]
        pids.add(results["pid"])
        last = job_dir / "checkpoints" / "last.ckpt"
        trained = LitAlexNet.load_from_checkpoint(last, map_location="cpu", weights_only=True)
        assert trained.net.towers[0].pool.kernel_size == kernel  # section 3.4's windows
    assert len(pids) == 2, "the basic launcher would have run both jobs in one process"
    assert len(list((tmp_path / "sweep" / ".submitit").glob("*/*_log.out"))) == 2


def _launcher_config(*overrides: str) -> dict[str, object]:
    """``hydra/launcher=slurm``'s settings as the submitit plugin receives them."""
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

    cfg = compose("train", overrides=["hydra/launcher=slurm", *overrides], return_hydra_config=True)
    launcher = instantiate(cfg.hydra.launcher)
    assert isinstance(launcher, SlurmLauncher)
    return launcher.params


def test_the_slurm_launcher_asks_for_what_two_device_ddp_runs(composed: Composer) -> None:
    # `composed` has initialised Hydra on the config tree; the launcher needs Hydra's own node.
    params = _launcher_config("strategy=two_device_ddp", "hydra.launcher.partition=gpu")
    assert params["partition"] == "gpu"
    # One node of trainer.devices=2 processes, two GPUs each.
    assert (params["nodes"], params["tasks_per_node"], params["gpus_per_node"]) == (1, 2, 4)

    params = _launcher_config("strategy=two_device_ddp", "trainer.devices=4", "trainer.num_nodes=3")
    assert (params["nodes"], params["tasks_per_node"], params["gpus_per_node"]) == (3, 4, 8)


def test_a_misspelt_launcher_key_is_refused(composed: Composer) -> None:
    with pytest.raises(ConfigCompositionException, match="partiton"):
        compose("train", overrides=["hydra/launcher=slurm", "hydra.launcher.partiton=gpu"])


# ----------------------------------------------------------------------------- multi-node

# Two nodes of two processes, each process on a pair of a node's four GPUs.
NODES, PER_NODE, GPUS_PER_NODE = 2, 2, 4
RANKS = range(NODES * PER_NODE)


def _srun(rank: int) -> dict[str, str]:
    """What ``srun`` sets for task ``rank`` of ``--nodes=2 --ntasks-per-node=2``."""
    return {
        "SLURM_NTASKS": str(NODES * PER_NODE),
        "SLURM_NTASKS_PER_NODE": str(PER_NODE),
        "SLURM_NNODES": str(NODES),
        "SLURM_PROCID": str(rank),
        "SLURM_LOCALID": str(rank % PER_NODE),
        "SLURM_NODEID": str(rank // PER_NODE),
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "train",
        "SLURM_NODELIST": "gpu[07-08]",
        "MASTER_ADDR": "gpu07",
        "MASTER_PORT": "29500",
    }


def _torchrun(rank: int) -> dict[str, str]:
    """What ``torchrun --nnodes=2 --nproc-per-node=2`` sets for worker ``rank``."""
    return {
        "RANK": str(rank),
        "LOCAL_RANK": str(rank % PER_NODE),
        "WORLD_SIZE": str(NODES * PER_NODE),
        "LOCAL_WORLD_SIZE": str(PER_NODE),
        "GROUP_RANK": str(rank // PER_NODE),
        "MASTER_ADDR": "gpu07",
        "MASTER_PORT": "29500",
        "TORCHELASTIC_RUN_ID": "alexnet",
    }


LAUNCHERS = [pytest.param(_srun, id="srun"), pytest.param(_torchrun, id="torchrun")]
Launcher = Callable[[int], dict[str, str]]
ClusterJob = Callable[..., tuple[FolderDataModule, L.Trainer, TwoDeviceDDPStrategy]]
_TORCHRUN_KEYS = set(_torchrun(0)) | {"NODE_RANK", "OMP_NUM_THREADS"}


@pytest.fixture
def cluster_job(monkeypatch: pytest.MonkeyPatch, composed: Composer) -> ClusterJob:
    """``cluster_job(launcher, rank, *overrides)``: the datamodule, trainer and strategy that
    ``python -m lit_alexnet.train strategy=two_device_ddp trainer.num_nodes=2`` builds in
    process ``rank`` as ``launcher`` starts it, on nodes of four GPUs; nothing runs, and the
    datamodule is not yet attached to the trainer."""
    # The machine's own launcher variables (a CI job under SLURM) would mix with the simulated.
    for key in [k for k in os.environ if k.startswith("SLURM_") or k in _TORCHRUN_KEYS]:
        monkeypatch.delenv(key)
    # Lightning sets these process-wide for the rank it builds; later tests are rank 0 again.
    for module in (pytorch_rank_zero, fabric_rank_zero):
        monkeypatch.setattr(module.rank_zero_only, "rank", module.rank_zero_only.rank)
    # What torch reports on a node of four GPUs; no test here initialises CUDA.
    monkeypatch.setattr(torch.cuda, "device_count", lambda: GPUS_PER_NODE)
    # Lightning's launcher would otherwise set it (one thread per core per process) for the
    # rest of the session and every subprocess a later test starts.
    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))

    def job(
        launcher: Launcher, rank: int, *overrides: str
    ) -> tuple[FolderDataModule, L.Trainer, TwoDeviceDDPStrategy]:
        for key, value in launcher(rank).items():
            monkeypatch.setenv(key, value)
        cfg = composed(
            "+experiment=smoke",
            "strategy=two_device_ddp",
            f"trainer.num_nodes={NODES}",
            "trainer.accelerator=gpu",
            "trainer.precision=32-true",
            "logger=none",
            *overrides,
        )
        assert cfg.trainer.devices == PER_NODE  # the config's processes per node
        datamodule, _, trainer = build(cfg)
        assert isinstance(datamodule, FolderDataModule)
        assert isinstance(trainer.strategy, TwoDeviceDDPStrategy)
        return datamodule, trainer, trainer.strategy

    return job


@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_each_process_takes_its_rank_and_gpu_pair_from_the_launcher(
    launcher: Launcher, rank: int, cluster_job: ClusterJob
) -> None:
    _, trainer, strategy = cluster_job(launcher, rank, "data.backend=torchvision")
    node, local = divmod(rank, PER_NODE)
    assert (trainer.global_rank, trainer.local_rank, trainer.node_rank) == (rank, local, node)
    assert trainer.world_size == NODES * PER_NODE
    assert strategy.tower_devices == [
        torch.device("cuda", 2 * local),
        torch.device("cuda", 2 * local + 1),
    ]


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_no_process_is_started_where_the_launcher_started_them(
    launcher: Launcher, cluster_job: ClusterJob
) -> None:
    # The config says start_method=spawn (for Hydra multirun on one machine); under srun or
    # torchrun spawning would give each process two more, all with the launcher's rank.
    _, _, strategy = cluster_job(launcher, 3, "data.backend=torchvision")
    assert strategy.launcher is not None
    ran_in: list[int] = []
    strategy.launcher.launch(lambda: ran_in.append(os.getpid()))
    assert ran_in == [os.getpid()]


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_the_processes_split_each_epoch_of_the_training_set(
    launcher: Launcher, cluster_job: ClusterJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    shards: list[list[int]] = []
    for rank in RANKS:
        datamodule, trainer, strategy = cluster_job(launcher, rank, "data.backend=torchvision")
        datamodule.prepare_data()
        # The files checked as rank 0 checks them, and the seed it would broadcast.
        datamodule.check_splits("train", "val")
        monkeypatch.setattr(strategy, "broadcast", lambda obj, src=0: 1234)
        datamodule.trainer = trainer  # as trainer.fit attaches it
        datamodule.setup("fit")
        sampler = datamodule.train_dataloader().sampler
        assert (sampler.rank, sampler.num_replicas) == (rank, NODES * PER_NODE)
        sampler.set_epoch(1)
        shards.append([index for _, index in sampler])
    images = len(datamodule.image_list("train"))
    assert images % len(RANKS) == 0, "a shard padded with repeats would need another check"
    assert [len(s) for s in shards] == [images // len(RANKS)] * len(RANKS)
    assert sorted(i for shard in shards for i in shard) == list(range(images))


@pytest.mark.dali
@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_dali_reads_the_process_shard_on_its_first_gpu(
    launcher: Launcher, rank: int, cluster_job: ClusterJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lit_alexnet import DaliImageDataModule

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # data.device=auto: the GPU
    datamodule, trainer, _ = cluster_job(launcher, rank, "data.backend=dali")
    assert isinstance(datamodule, DaliImageDataModule)
    datamodule.trainer = trainer  # as trainer.fit attaches it
    # What this process's DALI readers (shard) and pipelines (GPU) are built with.
    assert datamodule._shard() == (rank, NODES * PER_NODE)
    assert datamodule._device_id() == 2 * (rank % PER_NODE)
