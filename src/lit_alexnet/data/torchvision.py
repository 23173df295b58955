"""The torchvision data backend: the paper's transforms in DataLoader workers on the CPU.

The reference the DALI backend is tested against, and the fallback where DALI is absent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from typing_extensions import Unpack

from lit_alexnet.data.base import BuiltinMixin, FolderDataModule, FolderOptions, Views
from lit_alexnet.data.folders import ImageList
from lit_alexnet.data.images import load_rgb
from lit_alexnet.data.parallel import usable_cpus
from lit_alexnet.data.transforms import ten_crop_transform, train_transform, val_transform


def default_num_workers() -> int:
    """One loader worker per spare core, leaving one for the training loop."""
    return max(1, min(8, usable_cpus() - 1))


class ImageListDataset(Dataset[tuple[torch.Tensor, int]]):
    """Pillow's loading (RGB, upright as EXIF says: :mod:`~lit_alexnet.data.images`) over an
    :class:`ImageList`."""

    def __init__(self, images: ImageList, transform: Callable[..., torch.Tensor]) -> None:
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = load_rgb(self.images.files[index])
        return self.transform(image), self.images.labels[index]


class ImageFolderDataModule(FolderDataModule):
    """:class:`~lit_alexnet.data.base.FolderDataModule` read by torch DataLoader workers.

    Train: shorter side to 256, centre 256x256, mean subtraction, random 224x224 crop,
    horizontal flip, PCA lighting. Validation and test: the centre 224x224 crop, or the ten
    crops of section 4.1 (``"ten_crop"``), whose softmax outputs the module averages.

    Args:
        root: a folder with ``train/<class>/*`` and ``val/`` (one folder per class, or flat
            with ``val_labels``).
        batch_size: images per batch (section 5: 128).
        num_workers: DataLoader worker processes; default one per spare core.
        pin_memory: pin batches in page-locked memory for faster copies to a GPU.
        **kwargs: :class:`~lit_alexnet.data.base.FolderOptions`: ``mean``, ``lighting_std``,
            ``val_views``, ``test_views``, ``val_labels``, ``stats``, ``verify``,
            ``bad_files``.
    """

    def __init__(
        self,
        root: str | Path,
        batch_size: int = 128,
        num_workers: int | None = None,
        pin_memory: bool = False,
        **kwargs: Unpack[FolderOptions],
    ) -> None:
        super().__init__(root, batch_size, **kwargs)
        if num_workers is not None and num_workers < 0:
            raise ValueError(f"num_workers={num_workers!r} must be >= 0")
        self.num_workers = default_num_workers() if num_workers is None else num_workers
        self.pin_memory = pin_memory
        self.datasets: dict[str, ImageListDataset] = {}

    def setup(self, stage: str) -> None:
        stats = self.dataset_stats()
        if stage == "fit":
            self.check_splits("train", "val")  # one refusal for both splits' problems
            train = train_transform(stats, mean=self.mean, lighting_std=self.lighting_std)
            self.datasets["train"] = ImageListDataset(self.image_list("train"), train)
        self.datasets["val"] = self._eval_set(self.val_views)
        if stage == "test":
            self.datasets["test"] = self._eval_set(self.test_views)

    def _eval_set(self, views: Views) -> ImageListDataset:
        make = ten_crop_transform if views == "ten_crop" else val_transform
        return ImageListDataset(self.image_list("val"), make(self.dataset_stats(), mean=self.mean))

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


class BuiltinDataModule(BuiltinMixin, ImageFolderDataModule):
    """The generated dataset of shapes and textures, read by the torchvision backend."""
