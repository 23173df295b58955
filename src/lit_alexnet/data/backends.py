"""The one data factory: the ``_target_`` functions of ``conf/data/*.yaml``.

Each picks the backend (``auto``: DALI where ``nvidia.dali`` imports, else torchvision, said
once) and its datamodule class for one source (the built-in dataset, an image folder,
webdataset shards), applying the same rules and refusals to all three. Both backends read the
same files with the same class indices (:mod:`lit_alexnet.data.base`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn

from lit_alexnet.checks import Invalid
from lit_alexnet.data import dali
from lit_alexnet.data.base import FolderDataModule
from lit_alexnet.data.choices import AUTO, check_data_options
from lit_alexnet.data.shards import ShardsDataModule, TorchShardsDataModule
from lit_alexnet.data.torchvision import BuiltinDataModule, ImageFolderDataModule

__all__ = ["builtin_datamodule", "folder_datamodule", "resolve_backend", "shards_datamodule"]


@functools.cache
def resolve_backend(backend: str) -> str:
    """``"dali"`` or ``"torchvision"``; ``"auto"`` falls back to torchvision without DALI."""
    check_data_options(backend=backend)
    if backend == AUTO:
        if dali.dali_available():
            return "dali"
        rank_zero_warn(
            f"nvidia-dali is not importable ({dali.DALI_IMPORT_ERROR}): reading data with the "
            "torchvision backend (pip install 'lit-alexnet[dali]' for DALI, or set "
            "data.backend=torchvision to silence this)"
        )
        return "torchvision"
    return backend


# The options only one backend has: the data config carries both sets, the other's are
# dropped. Shards were verified when they were written, so the file checks do not apply.
_DALI_ONLY = ("device", "num_threads", "channels_last", "pipeline_seed")
_TORCHVISION_ONLY = ("num_workers", "pin_memory")
_FILE_CHECKS = ("verify", "bad_files")
# Per source: its DALI class, its torchvision class, and the options it does not take.
_SOURCES: dict[str, tuple[type[FolderDataModule], type[FolderDataModule], tuple[str, ...]]] = {
    "folder": (dali.DaliImageDataModule, ImageFolderDataModule, ()),
    "builtin": (dali.BuiltinDaliDataModule, BuiltinDataModule, ()),
    "shards": (ShardsDataModule, TorchShardsDataModule, _FILE_CHECKS),
}


def folder_datamodule(root: str | Path, backend: str = AUTO, **kwargs: Any) -> FolderDataModule:
    """``data=folder``: a datamodule over the ImageFolder ``root`` read by ``backend``.

    ``kwargs`` go to the backend's class: FolderDataModule's arguments, and ``device``,
    ``num_threads``, ``channels_last``, ``pipeline_seed`` (DALI) or ``num_workers``,
    ``pin_memory`` (torchvision).
    """
    return _make("folder", backend, root, kwargs)


def builtin_datamodule(
    cache_dir: str | Path, backend: str = AUTO, **kwargs: Any
) -> FolderDataModule:
    """``data=builtin``: the built-in dataset (:class:`~lit_alexnet.data.builtin.BuiltinSpec`'s
    fields in ``kwargs``), generated in ``cache_dir`` on first use, read by ``backend``."""
    return _make("builtin", backend, cache_dir, kwargs)


def shards_datamodule(root: str | Path, backend: str = AUTO, **kwargs: Any) -> FolderDataModule:
    """``data=shards``: the webdataset shards that ``prepare --format shards`` wrote in
    ``root``, read by ``backend``."""
    return _make("shards", backend, root, kwargs)


def _make(source: str, backend: str, where: str | Path, kwargs: dict[str, Any]) -> FolderDataModule:
    chosen = resolve_backend(backend)
    if chosen == "torchvision" and kwargs.get("device") == "gpu":
        raise Invalid(
            "data.device=gpu decodes on the GPU, which only the DALI backend does: use "
            "data.backend=dali (or auto) or data.device=auto"
        )
    dali_cls, torchvision_cls, not_taken = _SOURCES[source]
    drop = (*not_taken, *(_TORCHVISION_ONLY if chosen == "dali" else _DALI_ONLY))
    cls = dali_cls if chosen == "dali" else torchvision_cls
    return cls(where, **{key: value for key, value in kwargs.items() if key not in drop})
