"""Shared fixtures (every test's generated data goes to a temporary cache; the training config
composed as a job sees it; Ctrl-C as a terminal delivers it) and the hook that skips `gpu` and
`dali` tests, with the reason, where the machine lacks them."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from omegaconf import DictConfig

Composer = Callable[..., DictConfig]

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the whole session, so the smoke dataset is made once, and what tests
    cache (datasets, statistics) never lands in the user's ~/.cache."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["LIT_ALEXNET_CACHE"] = str(path)
    return path


@pytest.fixture
def sigint_handled() -> Iterator[None]:
    """SIGINT handled in this process and delivered to its children, whatever launched it:
    a background job of a shell without job control (``cmd &`` in a script) starts with
    SIGINT ignored, and a child inherits that, so a test of Ctrl-C would see nothing. An
    exec resets a handled signal to its default, which Python turns into KeyboardInterrupt.
    The handler is put back afterwards (Lightning ignores SIGINT after an interrupt)."""
    handler = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, handler)


@pytest.fixture
def composed(tmp_path: Path) -> Iterator[Composer]:
    """``composed(*overrides)``: ``python -m lit_alexnet.train``'s config as its job sees it
    (Hydra's own node removed, the job's output directory set to a temporary folder)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    from lit_alexnet.config import config_dir, register_configs

    def compose_job(*overrides: str) -> DictConfig:
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
        with read_write(cfg.hydra):
            cfg.hydra.runtime.output_dir = str(tmp_path / "job")
        HydraConfig.instance().set_config(cfg)
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]
        return cfg

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        yield compose_job
    GlobalHydra.instance().clear()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`@pytest.mark.gpu(n)` needs n CUDA GPUs (default 1); `@pytest.mark.dali` needs
    nvidia-dali. Tests without the marks run everywhere."""
    import torch

    from lit_alexnet.data.dali import dali_available

    gpus = torch.cuda.device_count()
    has_dali = dali_available()
    for item in items:
        gpu = item.get_closest_marker("gpu")
        need = int(gpu.args[0]) if gpu is not None and gpu.args else 1
        if gpu is not None and gpus < need:
            item.add_marker(
                pytest.mark.skip(reason=f"needs {need} CUDA GPU(s); this machine has {gpus}")
            )
        if item.get_closest_marker("dali") is not None and not has_dali:
            item.add_marker(pytest.mark.skip(reason="needs nvidia-dali (Linux x86-64 only)"))
