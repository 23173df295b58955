"""The torchvision data backend: the paper's transforms in DataLoader workers on the CPU.

The reference the DALI backend is tested against, and the fallback where DALI is absent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from typing_extensions import Unpack

from lit_alexnet.data.base import FolderDataModule, FolderOptions, Views
from lit_alexnet.data.builtin import BuiltinMixin
from lit_alexnet.data.choices import check_data_options
from lit_alexnet.data.folders import ImageList
from lit_alexnet.data.images import load_rgb
from lit_alexnet.data.parallel import usable_cpus
from lit_alexnet.data.resumable import (
    EpochSampler,
    ResumableDataLoader,
    SampleKey,
    fixed_generator,
    sample_seed,
)
from lit_alexnet.data.transforms import ten_crop_transform, train_transform, val_transform

# (images, labels): what every loader of the package yields.
Batch = tuple[torch.Tensor, torch.Tensor]


def default_num_workers() -> int:
    """One loader worker per spare core, leaving one for the training loop."""
    return max(1, min(8, usable_cpus() - 1))


class ImageListDataset(Dataset[tuple[torch.Tensor, int]]):
    """Pillow's loading (RGB, upright as EXIF says: :mod:`~lit_alexnet.data.images`) over an
    :class:`ImageList`.

    Indexed by an :data:`~lit_alexnet.data.resumable.SampleKey` ``(epoch, index)``, the
    transform draws from a generator seeded by ``(seed, epoch, index)`` alone, whichever
    worker runs it and whenever: what makes a resumed run augment as the uninterrupted one.
    """

    def __init__(
        self, images: ImageList, transform: Callable[..., torch.Tensor], seed: int = 0
    ) -> None:
        self.images = images
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: int | SampleKey) -> tuple[torch.Tensor, int]:
        if isinstance(key, int):
            return self._load(key)
        epoch, index = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, epoch, index))
            return self._load(index)

    def _load(self, index: int) -> tuple[torch.Tensor, int]:
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
        num_workers: DataLoader worker processes; default one per spare core.
        pin_memory: pin batches in page-locked memory for faster copies to a GPU.
        **kwargs: the options every backend takes (:class:`~lit_alexnet.data.base.FolderOptions`).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        num_workers: int | None = None,
        pin_memory: bool = False,
        **kwargs: Unpack[FolderOptions],
    ) -> None:
        check_data_options(num_workers=num_workers)
        super().__init__(root, **kwargs)
        self.num_workers = default_num_workers() if num_workers is None else num_workers
        self.pin_memory = pin_memory
        self.datasets: dict[str, ImageListDataset] = {}

    def setup(self, stage: str) -> None:
        stats = self.dataset_stats()
        self.seed = self.shared_seed()
        if stage == "fit":
            self.check_splits("train", "val")  # one refusal for both splits' problems
            train = train_transform(stats, mean=self.mean, lighting_std=self.lighting_std)
            self.datasets["train"] = ImageListDataset(self.image_list("train"), train, self.seed)
        self.datasets["val"] = self._eval_set(self.val_views)
        if stage == "test":
            self.datasets["test"] = self._eval_set(self.test_views)

    def _eval_set(self, views: Views) -> ImageListDataset:
        make = ten_crop_transform if views == "ten_crop" else val_transform
        return ImageListDataset(self.image_list("val"), make(self.dataset_stats(), mean=self.mean))

    def _options(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
            "pin_memory": self.pin_memory,
            "generator": fixed_generator(),
        }

    # Iterable, not DataLoader: the shards datamodule hands over its own loaders.
    def train_dataloader(self) -> Iterable[Batch]:
        dataset = self.datasets["train"]
        trainer = self.trainer
        world, rank = (1, 0) if trainer is None else (trainer.world_size, trainer.global_rank)
        sampler = EpochSampler(dataset, num_replicas=world, rank=rank, seed=self.seed)
        loader = ResumableDataLoader(
            dataset, sampler=sampler, resume_at=self.resume_at, **self._options()
        )
        return self._resumable(loader)

    def val_dataloader(self) -> Iterable[Batch]:
        return DataLoader(self.datasets["val"], **self._options())

    def test_dataloader(self) -> Iterable[Batch]:
        return DataLoader(self.datasets["test"], **self._options())


class BuiltinDataModule(BuiltinMixin, ImageFolderDataModule):
    """The generated dataset of shapes and textures, read by the torchvision backend."""
