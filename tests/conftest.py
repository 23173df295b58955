"""Shared fixtures: every test's generated data goes to a temporary cache."""

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
