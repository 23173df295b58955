"""``data=shards``: the paper's 256x256 images (section 2) read from webdataset tar shards.

For many nodes reading one copy of the data from shared storage (a network file system, or
an object store mounted as one; the paths are files): a root written by
``python -m lit_alexnet.data.prepare SRC DST --format shards`` holds ``train-NNNNNN.tar``
and ``val-NNNNNN.tar`` shards with their DALI indexes, ``shards.json`` (every shard's sample
count and the class names), ``stats.npz`` and ``prepared.json``. DALI's webdataset reader
reads them, sharded by global rank as the folder reader is, with the same section 4.1
augmentation and evaluation views (:mod:`lit_alexnet.data.dali`); the torchvision backend
reads them with the ``webdataset`` package and the transforms of
:mod:`lit_alexnet.data.transforms`, split between the ranks the same way.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, default_collate
from typing_extensions import override

from lit_alexnet.checks import Invalid, Missing
from lit_alexnet.data.base import FolderDataModule, Split
from lit_alexnet.data.choices import Views
from lit_alexnet.data.dali import DaliImageDataModule, reader_sharding
from lit_alexnet.data.folders import ImageList
from lit_alexnet.data.formats import (
    CLASS_DIGITS,
    DatasetStats,
    read_shards_index,
)
from lit_alexnet.data.images import load_rgb
from lit_alexnet.data.resumable import sample_seed
from lit_alexnet.data.sharding import equal_steps, shard_bounds
from lit_alexnet.data.torchvision import ImageFolderDataModule
from lit_alexnet.data.transforms import (
    mean_tensor,
    ten_crop_transform,
    train_transform,
    val_transform,
)

with contextlib.suppress(ImportError):  # dali.py says what is missing when a module is made
    from nvidia.dali import fn, types

if TYPE_CHECKING:
    from nvidia.dali.pipeline import DataNode

__all__ = [
    "ShardLoader",
    "ShardSet",
    "ShardStream",
    "ShardsDataModule",
    "TorchShardsDataModule",
]

# Samples each rank's reader holds to draw its batches from at random. The order within a
# shard is already random (prepare shuffles across shards) and the shards are visited in a
# new order each epoch; the buffer mixes neighbouring samples too, at a few tens of MB.
SHUFFLE_BUFFER = 1024
# The place values of a .cls member's digits, most significant first.
_PLACES = np.array([10**k for k in reversed(range(CLASS_DIGITS))], dtype=np.int64)


@dataclass(frozen=True)
class ShardSet:
    """A split's tar shards, as DALI's webdataset reader reads them.

    Attributes:
        tars: the shards, in the order prepare wrote them.
        indexes: each shard's DALI index (so the reader need not scan the tars at start).
        counts: each shard's sample count.
    """

    tars: tuple[Path, ...]
    indexes: tuple[Path, ...]
    counts: tuple[int, ...]

    def __len__(self) -> int:
        return sum(self.counts)

    def read(
        self, *, shard_id: int, num_shards: int, shuffle: bool, shuffle_seed: int, name: str
    ) -> tuple[DataNode, DataNode]:
        """The JPEGs and int64 labels of shard ``shard_id`` of ``num_shards`` (DALI shards by
        sample: rank r reads samples ``shard_bounds(len(self), r, num_shards)`` of the tars
        in their order of the epoch); see :class:`~lit_alexnet.data.dali.EncodedImages`."""
        outputs = fn.readers.webdataset(
            paths=[str(path) for path in self.tars],
            index_paths=[str(path) for path in self.indexes],
            ext=["jpg", "cls"],
            missing_component_behavior="error",
            # A new order of the tars each epoch, the same on every rank (same seed), so
            # that the ranks split each epoch's samples between them and each rank reads
            # different tars each epoch; within its part, a rank draws from a buffer.
            shuffle_after_epoch=shuffle,
            shuffle_after_epoch_seed=shuffle_seed,
            random_shuffle=shuffle,
            initial_fill=SHUFFLE_BUFFER,
            **reader_sharding(shard_id, num_shards, shuffle, name),
        )
        jpegs, digits = cast(list["DataNode"], outputs)  # one output per ext
        return jpegs, _class_index(digits)


def _class_index(digits: DataNode) -> DataNode:
    """The number a .cls member's ASCII digits spell (prepare writes exactly
    :data:`~lit_alexnet.data.prepare.CLASS_DIGITS` of them)."""
    values = fn.cast(digits, dtype=types.DALIDataType.INT64) - ord("0")
    return fn.reductions.sum(values * types.Constant(_PLACES))


class _ShardsRoot(FolderDataModule):
    """What both backends' shard datamodules change of
    :class:`~lit_alexnet.data.base.FolderDataModule`: the splits are ``shards.json``'s shards,
    not scanned folders, and no file is verified, because prepare decoded every image, left
    out (and reported) those it could not, and wrote the others as JPEGs that both backends
    decode; statistics are the root's ``stats.npz`` (prepare computed them from every
    training image) unless ``stats`` names others."""

    def __init__(self, root: str | Path, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.index = read_shards_index(self.root)
        self.classes: tuple[str, ...] = tuple(self.index["classes"])
        self._sets: dict[str, ShardSet] = {}

    @property
    @override
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    @override
    def prepared(self) -> bool:
        return True  # every image in a shard is 256x256

    def shards(self, split: Split) -> ShardSet:
        """The shards of ``split``, checked to be there."""
        self.check_splits(split)
        return self._sets[split]

    @override
    def check_splits(self, *splits: Split) -> None:
        """Check that the shards of ``splits`` are all there (their images were verified when
        they were written)."""
        for split in splits:
            if split in self._sets:
                continue
            shards = self.index["splits"].get(split)
            if not shards:
                raise Missing(
                    f"data.root={str(self.root)!r} holds no {split} shards: prepare it with "
                    f"--split train val (it was prepared with --split "
                    f"{' '.join(self.index['splits'])})"
                )
            tars = tuple(self.root / shard["tar"] for shard in shards)
            indexes = tuple(self.root / shard["index"] for shard in shards)
            for path in (*tars, *indexes):
                if not path.is_file():
                    raise Missing(
                        f"{path} is missing from the shards root {self.root}: copy it again, "
                        "or prepare the root again"
                    )
            self._sets[split] = ShardSet(tars, indexes, tuple(s["samples"] for s in shards))

    @override
    def image_list(self, split: Split) -> ImageList:
        """Refused: a shards root has no image files to list (:meth:`shards` has the tars)."""
        raise Invalid(
            f"data=shards: {self.root} holds its {split} images in tar shards, not files; "
            "for what reads image files (Figure 4's neighbours), add data=folder "
            "data.root=<the image folder the shards were written from>"
        )

    @override
    def split_size(self, split: Split) -> int:
        return len(self.shards(split))

    @override
    def preprocessing(self) -> dict[str, Any]:
        return {
            "class_names": list(self.classes),
            "mean": mean_tensor(self.dataset_stats(), self.mean),
        }

    @override
    def _first_use_stats(self) -> DatasetStats:
        raise Missing(
            f"{self.root}/stats.npz is missing (prepare writes it with the training split): "
            "prepare the root again with --split train val, or set data.stats=imagenet"
        )

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (0, 1) if trainer is None else (trainer.global_rank, trainer.world_size)


class ShardsDataModule(_ShardsRoot, DaliImageDataModule):
    """:class:`~lit_alexnet.data.dali.DaliImageDataModule` over a shards root (what differs:
    see ``_ShardsRoot``). Sharding over ranks, equal steps per rank, the per-epoch reshuffle
    and resuming mid-epoch from a checkpoint (DALI checkpoints the webdataset reader, and
    :class:`~lit_alexnet.data.dali.DaliLoader` restores it) are the parent's.

    Args:
        root: a root written by ``python -m lit_alexnet.data.prepare SRC DST --format shards``.
        **kwargs: the parent's (``batch_size``, ``device``, ``num_threads``, ``mean``, ...),
            less the file checks (``verify``, ``bad_files``) and ``val_labels``.

    Raises:
        Missing: ``root`` is not a completed shards root.
    """

    @override
    def _source(self, split: Split) -> ShardSet:
        return self.shards(split)


def _pieces(
    shards: ShardSet, order: list[int], rank: int, world: int
) -> list[tuple[str, int, int]]:
    """``(tar, skip, take)``: the samples rank ``rank`` of ``world`` reads when the tars are in
    ``order`` (the samples ``shard_bounds(len(shards), rank, world)`` of them, as DALI's
    reader deals them)."""
    start, end = shard_bounds(len(shards), rank, world)
    pieces, offset = [], 0
    for i in order:
        first, last = max(start, offset), min(end, offset + shards.counts[i])
        if first < last:
            pieces.append((str(shards.tars[i]), first - offset, last - first))
        offset += shards.counts[i]
    return pieces


class ShardStream(IterableDataset[tuple[torch.Tensor, int]]):
    """One rank's samples of a split's shards, decoded and transformed: the torchvision
    backend's reading of a shards root, with the ``webdataset`` package.

    The ranks split each epoch as DALI's do (the tars in an order drawn from ``(seed,
    epoch)`` alike on every rank, each rank a contiguous part of their samples), so each epoch
    reads every sample once; DataLoader workers split a rank's tars (``split_by_worker``)
    and each draws from a :data:`SHUFFLE_BUFFER` of samples. Everything random is seeded by
    ``seed``, the epoch, the rank and the worker or the sample alone, so that an epoch read
    again with as many workers is the same epoch (which a resumed run relies on). Without
    ``shuffle`` the tars and samples are read in stored order.
    """

    def __init__(
        self,
        shards: ShardSet,
        transform: Callable[..., torch.Tensor],
        *,
        seed: int,
        rank: int,
        world: int,
        shuffle: bool,
    ) -> None:
        self.shards, self.transform = shards, transform
        self.seed, self.rank, self.world, self.shuffle = seed, rank, world, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch read next (Lightning calls this at each epoch's start)."""
        self.epoch = epoch

    def pieces(self) -> list[tuple[str, int, int]]:
        """This rank's ``(tar, skip, take)`` of the epoch."""
        order = list(range(len(self.shards.tars)))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(order).tolist()
        return _pieces(self.shards, order, self.rank, self.world)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        worker = torch.utils.data.get_worker_info()
        samples = self._samples(wds.split_by_worker(self.pieces()))
        if self.shuffle:
            stream = [self.seed, self.epoch, self.rank, 0 if worker is None else worker.id]
            rng = random.Random(int(np.random.SeedSequence(stream).generate_state(1)[0]))
            samples = wds.shuffle(SHUFFLE_BUFFER, initial=SHUFFLE_BUFFER, rng=rng)(samples)
        for sample in samples:
            key = int(sample["__key__"].rsplit("/", 1)[-1])  # the place prepare gave it
            # The augmentation is drawn from (seed, epoch, sample) alone, as the folder
            # backend's is, whichever worker runs it.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed(self.seed, self.epoch, key))
                image = self.transform(load_rgb(sample["jpg"]))
            yield image, int(sample["cls"])

    @staticmethod
    def _samples(pieces: Iterator[tuple[str, int, int]]) -> Iterator[dict[str, Any]]:
        for url, skip, take in pieces:
            tar = wds.tarfile_to_samples()([{"url": url}])
            yield from itertools.islice(tar, skip, skip + take)


class ShardLoader:
    """A :class:`ShardStream` as a Lightning dataloader of exactly ``steps`` batches an epoch.

    Batches are put together here, not in the workers (which would each end on a part
    batch), so that an epoch is ``ceil(samples / batch_size)`` batches, cut to ``steps``:
    under DDP every rank must take the same number of steps. ``sampler`` is the stream, whose
    ``set_epoch`` Lightning calls. Given ``resume_at`` (a training loader), ``state_dict()``
    says how many batches of the epoch a checkpoint saved now follows, and a loader given it
    reads those again and drops them, so that a resumed run goes on with the batches the
    uninterrupted run had next (decoding the epoch's first part twice; with as many workers).
    """

    def __init__(
        self,
        stream: ShardStream,
        batch_size: int,
        steps: int,
        num_workers: int = 0,
        pin_memory: bool = False,
        resume_at: Callable[[], int | None] | None = None,
    ) -> None:
        # What Lightning looks for: a sampler with set_epoch (the stream), and no batch
        # sampler; it leaves a loader that is not a DataLoader as it is.
        self.sampler: ShardStream = stream
        self.batch_sampler = None
        self.batch_size = batch_size
        self.steps = steps
        # Not persistent: each epoch's workers get the stream with that epoch set.
        self.loader = DataLoader(
            stream, batch_size=None, num_workers=num_workers, pin_memory=pin_memory
        )
        self.resume_at = resume_at
        self._skip = 0

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        skip, self._skip = self._skip, 0  # when reading begins (see DaliLoader)
        samples = iter(self.loader)
        for step in range(self.steps):
            batch = list(itertools.islice(samples, self.batch_size))
            if step >= skip:
                yield default_collate(batch)

    def state_dict(self) -> dict[str, Any]:
        """Where a run resumed from a checkpoint saved now starts (see the class)."""
        if self.resume_at is None:
            return {}
        return {"batches_done": self.resume_at() or 0}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._skip = state.get("batches_done", 0)


class TorchShardsDataModule(_ShardsRoot, ImageFolderDataModule):
    """The torchvision backend over a shards root: :class:`ShardStream` and the transforms of
    :mod:`lit_alexnet.data.transforms` (the folder backend's), in DataLoader workers.

    Args:
        root: a root written by ``python -m lit_alexnet.data.prepare SRC DST --format shards``.
        **kwargs: :class:`~lit_alexnet.data.torchvision.ImageFolderDataModule`'s
            (``batch_size``, ``num_workers``, ``pin_memory``, ``mean``, ...), less the file
            checks (``verify``, ``bad_files``) and ``val_labels``.

    Raises:
        Missing: ``root`` is not a completed shards root.
    """

    @override
    def setup(self, stage: str) -> None:
        self.dataset_stats()
        self.seed = self.shared_seed()
        self.check_splits(*(("train", "val") if stage == "fit" else ("val",)))

    def train_dataloader(self) -> ShardLoader:
        shards = self.shards("train")
        rank, world = self._rank()
        steps = equal_steps(len(shards), self.batch_size, world)
        stats = self.dataset_stats()
        transform = train_transform(stats, mean=self.mean, lighting_std=self.lighting_std)
        stream = ShardStream(
            shards, transform, seed=self.seed, rank=rank, world=world, shuffle=True
        )
        loader = ShardLoader(
            stream, self.batch_size, steps, self.num_workers, self.pin_memory, self.resume_at
        )
        return self._resumable(loader)

    def val_dataloader(self) -> ShardLoader:
        return self._eval_loader(self.val_views)

    def test_dataloader(self) -> ShardLoader:
        return self._eval_loader(self.test_views)

    def _eval_loader(self, views: Views) -> ShardLoader:
        shards = self.shards("val")
        rank, world = self._rank()
        make = ten_crop_transform if views == "ten_crop" else val_transform
        transform = make(self.dataset_stats(), mean=self.mean)
        stream = ShardStream(shards, transform, seed=0, rank=rank, world=world, shuffle=False)
        start, end = shard_bounds(len(shards), rank, world)
        steps = math.ceil((end - start) / self.batch_size)
        return ShardLoader(stream, self.batch_size, steps, self.num_workers, self.pin_memory)
