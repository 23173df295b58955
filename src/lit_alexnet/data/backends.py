"""Choosing a data backend: the ``_target_`` functions of ``conf/data/*.yaml``.

``backend="auto"`` is DALI where ``nvidia.dali`` imports and torchvision elsewhere (said once);
both read the same files with the same class indices (:mod:`lit_alexnet.data.base`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn

from lit_alexnet.data import dali
from lit_alexnet.data.base import FolderDataModule
from lit_alexnet.data.choices import check_data_options
from lit_alexnet.data.torchvision import BuiltinDataModule, ImageFolderDataModule


@functools.cache
def resolve_backend(backend: str) -> str:
    """``"dali"`` or ``"torchvision"``; ``"auto"`` falls back to torchvision without DALI."""
    check_data_options(backend=backend)
    if backend == "auto":
        if dali.dali_available():
            return "dali"
        rank_zero_warn(
            f"nvidia-dali is not importable ({dali.DALI_IMPORT_ERROR}): reading data with the "
            "torchvision backend (set data.backend=torchvision to silence this)"
        )
        return "torchvision"
    return backend


# The options only one backend has; the config carries both sets, the other's are dropped.
_DALI_ONLY = ("device", "num_threads", "channels_last", "pipeline_seed")
_TORCHVISION_ONLY = ("num_workers", "pin_memory")


def folder_datamodule(root: str | Path, backend: str = "auto", **kwargs: Any) -> FolderDataModule:
    """A datamodule over ``root`` read by ``backend``.

    ``kwargs`` go to the backend's class: FolderDataModule's arguments, and ``device``,
    ``num_threads``, ``channels_last``, ``pipeline_seed`` (DALI) or ``num_workers``,
    ``pin_memory`` (torchvision).
    """
    return _make(backend, dali.DaliImageDataModule, ImageFolderDataModule, root, kwargs)


def builtin_datamodule(
    cache_dir: str | Path, backend: str = "auto", **kwargs: Any
) -> FolderDataModule:
    """The built-in dataset (generated in ``cache_dir`` on first use) read by ``backend``."""
    return _make(backend, dali.BuiltinDaliDataModule, BuiltinDataModule, cache_dir, kwargs)


def _make(
    backend: str,
    dali_cls: type[FolderDataModule],
    torchvision_cls: type[FolderDataModule],
    where: str | Path,
    kwargs: dict[str, Any],
) -> FolderDataModule:
    chosen = resolve_backend(backend)
    if chosen == "torchvision" and kwargs.get("device") == "gpu":
        raise ValueError(
            "data.device=gpu decodes on the GPU, which only the DALI backend does: use "
            "data.backend=dali (or auto) or data.device=auto"
        )
    drop = _TORCHVISION_ONLY if chosen == "dali" else _DALI_ONLY
    cls = dali_cls if chosen == "dali" else torchvision_cls
    return cls(where, **{key: value for key, value in kwargs.items() if key not in drop})
