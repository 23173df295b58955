"""The torchvision data backend: ImageFolder roots read by DataLoader workers on the CPU."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import lightning as L
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import ImageFolder

from lit_alexnet.data.builtin import BuiltinSpec, ensure_builtin_dataset
from lit_alexnet.data.stats import IMAGENET_STATS, DatasetStats, stats_for_root
from lit_alexnet.data.transforms import ten_crop_transform, train_transform, val_transform

Views = Literal["center", "ten_crop"]
VIEWS: tuple[Views, ...] = ("center", "ten_crop")
MeanMode = Literal["image", "channel"]


def default_num_workers() -> int:
    """One loader worker per spare core, leaving one for the training loop."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def class_folders(split_dir: Path) -> list[str]:
    """The sorted class folder names of ``split_dir``, as ImageFolder indexes them."""
    if not split_dir.is_dir():
        raise FileNotFoundError(
            f"{split_dir} does not exist: the data root must hold train/<class>/*.jpg and "
            "val/<class>/*.jpg (set data.root=... to such a folder)"
        )
    classes = sorted(e.name for e in os.scandir(split_dir) if e.is_dir())
    if not classes:
        raise FileNotFoundError(f"{split_dir} has no class folders: expected {split_dir}/<class>/")
    return classes


class ImageFolderDataModule(L.LightningDataModule):
    """The paper's preprocessing (sections 2, 4.1) over ``root/{train,val}/<class>/*.jpg``.

    Train: shorter side to 256, centre 256x256, mean subtraction, random 224x224 crop,
    horizontal flip, PCA lighting. Validation and test: the centre 224x224 crop, or the ten
    crops of section 4.1 (``val_views="ten_crop"``), whose softmax outputs the module averages.

    Statistics come from ``root/stats.npz`` (see :mod:`lit_alexnet.data.stats`) or, where
    there is none, from ImageNet's published figures.
    """

    def __init__(
        self,
        root: str | Path,
        batch_size: int = 128,
        num_workers: int | None = None,
        mean: MeanMode = "image",
        lighting_std: float = 0.1,
        val_views: Views = "center",
        test_views: Views = "ten_crop",
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be positive")
        if lighting_std < 0:
            raise ValueError(f"lighting_std={lighting_std!r} must be non-negative")
        for name, views in (("val_views", val_views), ("test_views", test_views)):
            if views not in VIEWS:
                raise ValueError(f"{name}={views!r}: choose one of {list(VIEWS)}")
        self.root = Path(root).expanduser()
        self.batch_size = batch_size
        self.num_workers = default_num_workers() if num_workers is None else num_workers
        self.mean = mean
        self.lighting_std = lighting_std
        self.val_views = val_views
        self.test_views = test_views
        self.pin_memory = pin_memory
        self.datasets: dict[str, Dataset] = {}

    @property
    def num_classes(self) -> int:
        """The number of class folders under ``root/train``."""
        return len(class_folders(self.root / "train"))

    def setup(self, stage: str) -> None:
        train_classes = class_folders(self.root / "train")
        val_classes = class_folders(self.root / "val")
        if val_classes != train_classes:
            missing = sorted(set(train_classes) ^ set(val_classes))[:5]
            raise ValueError(
                f"{self.root}/train and {self.root}/val hold different class folders "
                f"(e.g. {missing}): both splits need the same classes"
            )
        stats = stats_for_root(self.root)
        if stats is IMAGENET_STATS:
            rank_zero_info(f"{self.root} has no stats.npz: using ImageNet's published figures")
        if stage == "fit":
            train = train_transform(stats, mean=self.mean, lighting_std=self.lighting_std)
            self.datasets["train"] = ImageFolder(str(self.root / "train"), train)
        self.datasets["val"] = self._eval_set(stats, self.val_views)
        if stage == "test":
            self.datasets["test"] = self._eval_set(stats, self.test_views)

    def _eval_set(self, stats: DatasetStats, views: Views) -> Dataset:
        make = ten_crop_transform if views == "ten_crop" else val_transform
        return ImageFolder(str(self.root / "val"), make(stats, mean=self.mean))

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


class BuiltinDataModule(ImageFolderDataModule):
    """The generated dataset of shapes and textures, made in ``cache_dir`` on first use.

    It lets the whole path run for real on a machine without ImageNet; see
    :mod:`lit_alexnet.data.builtin` for what the classes are.
    """

    def __init__(
        self,
        cache_dir: str | Path,
        num_classes: int = 10,
        train_per_class: int = 100,
        val_per_class: int = 30,
        seed: int = 0,
        **kwargs: object,
    ) -> None:
        self.spec = BuiltinSpec(
            num_classes=num_classes,
            train_per_class=train_per_class,
            val_per_class=val_per_class,
            seed=seed,
        )
        self.cache_dir = Path(cache_dir).expanduser()
        super().__init__(self.cache_dir / self.spec.dirname, **kwargs)  # type: ignore[arg-type]

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def prepare_data(self) -> None:
        ensure_builtin_dataset(self.cache_dir, self.spec)
