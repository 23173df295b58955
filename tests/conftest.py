"""Shared fixtures (every test's generated data goes to a temporary cache) and the hook that
skips `gpu` and `dali` tests, with the reason, where the machine lacks them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One built-in-dataset cache for the whole session, so the smoke dataset is made once."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["LIT_ALEXNET_CACHE"] = str(path)
    return path


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
