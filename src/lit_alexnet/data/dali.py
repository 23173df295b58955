"""The DALI data backend: section 4.1's preprocessing as one NVIDIA DALI graph per split.

With a GPU the JPEGs are decoded by nvJPEG / the hardware decoder (``device="mixed"``) and
every later operator runs on the GPU; without one the same graph runs on the CPU. Both read
the file lists of :class:`~lit_alexnet.data.base.FolderDataModule`, so files and class
indices are the torchvision backend's.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, cast

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from typing_extensions import Unpack

from lit_alexnet.checks import Invalid
from lit_alexnet.data.base import FolderDataModule, FolderOptions, Split, Views
from lit_alexnet.data.builtin import BuiltinMixin
from lit_alexnet.data.choices import AUTO, Device, check_data_options
from lit_alexnet.data.dali_culprit import UndecodableImage, find_undecodable, named_in_error
from lit_alexnet.data.folders import ImageList
from lit_alexnet.data.formats import DatasetStats
from lit_alexnet.data.images import CROP, RESIZE
from lit_alexnet.data.parallel import usable_cpus
from lit_alexnet.data.sharding import equal_steps, shard_bounds
from lit_alexnet.data.transforms import PIXEL_SCALE, mean_tensor

DALI_IMPORT_ERROR: ImportError | None = None
try:
    from nvidia.dali import fn, pipeline_def, types
    from nvidia.dali.pipeline import DataNode, Pipeline
    from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy
except ImportError as error:  # the torchvision backend still works without DALI
    DALI_IMPORT_ERROR = error

__all__ = [
    "BuiltinDaliDataModule",
    "DaliImageDataModule",
    "DaliLoader",
    "EncodedImages",
    "dali_available",
    "reader_sharding",
    "resolve_device",
]


# Every position of the crop in the centre square, as DALI's relative anchors: uniform over
# these 33 values is torchvision's randint(33), and each lands on a whole pixel.
_ANCHORS = np.arange(RESIZE - CROP + 1, dtype=np.float32) / (RESIZE - CROP)
# Section 4.1's ten patches as relative (x, y) anchors: the corners and the centre, then the
# same five mirrored: the order of the torchvision backend's TenCropTransform.
_FIVE = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.5, 0.5))
_READER = "reader"
_T = TypeVar("_T")


def dali_available() -> bool:
    """Whether ``nvidia.dali`` imports here."""
    return DALI_IMPORT_ERROR is None


def resolve_device(device: str) -> Literal["gpu", "cpu"]:
    """``"auto"`` is the GPU where torch sees one; ``"gpu"`` without one is an error."""
    check_data_options(device=device)
    if device == "gpu" and not torch.cuda.is_available():
        raise Invalid(
            "data.device=gpu, but torch sees no CUDA GPU here: use data.device=auto (the GPU "
            "where there is one, else the CPU) or data.device=cpu"
        )
    if device == "cpu" or not torch.cuda.is_available():
        return "cpu"
    return "gpu"


def _require_dali() -> None:
    if DALI_IMPORT_ERROR is not None:
        raise ImportError(
            "the DALI data backend needs nvidia-dali (pip install 'lit-alexnet[dali]', or "
            f"[dali-cuda12] for CUDA 12), which failed to import ({DALI_IMPORT_ERROR}); or use "
            "data.backend=torchvision"
        ) from DALI_IMPORT_ERROR


class EncodedImages(Protocol):
    """A split stored other than as image files, which reads itself into a DALI graph (the
    webdataset shards of :mod:`lit_alexnet.data.shards`)."""

    def __len__(self) -> int: ...

    def read(
        self, *, shard_id: int, num_shards: int, shuffle: bool, shuffle_seed: int, name: str
    ) -> tuple[DataNode, DataNode]:
        """A reader named ``name``: encoded images and int labels, shard ``shard_id`` of
        ``num_shards`` padded to its full last batch; with ``shuffle``, reshuffled each epoch
        alike on every shard (seeded by ``shuffle_seed``), else the shard in stored order."""
        ...


def _read_files(
    images: ImageList, shard_id: int, num_shards: int, shuffle: bool, shuffle_seed: int
) -> tuple[DataNode, DataNode]:
    """DALI's file reader over ``images`` (see :meth:`EncodedImages.read`)."""
    encoded, labels = fn.readers.file(
        files=[str(path) for path in images.files],
        labels=list(images.labels),
        # One permutation of the whole set per epoch, the same on every shard (same seed), so
        # the shards split each epoch's samples between them.
        shuffle_after_epoch=shuffle,
        seed=shuffle_seed,
        **reader_sharding(shard_id, num_shards, shuffle, _READER),
    )
    return encoded, labels


def reader_sharding(shard_id: int, num_shards: int, shuffle: bool, name: str) -> dict[str, Any]:
    """The arguments that shard a DALI reader by rank, alike for every reader."""
    return dict(
        shard_id=shard_id,
        num_shards=num_shards,
        # Without a shuffle, keep each rank on its shard: otherwise readers move on to the next
        # shard each epoch and a rank's batch count could change between epochs.
        stick_to_shard=not shuffle,
        # Pad a shard's last batch with repeats (dropped by the iterator) rather than filling it
        # from the next epoch, which would shift what each shard reads in later epochs.
        pad_last_batch=True,
        name=name,
    )


@dataclass(frozen=True)
class _Reading:
    """Where a pipeline reads: its decoding device, its rank's shard, and whether every image
    is 256x256 already (a root from :mod:`lit_alexnet.data.prepare`: only decoded)."""

    device: str
    shard_id: int
    num_shards: int
    resized: bool


def _read_and_centre(
    images: ImageList | EncodedImages, reading: _Reading, shuffle: bool, shuffle_seed: int
) -> tuple[DataNode, DataNode]:
    """Read, decode, shorter side to 256, centre 256x256 (section 2): HWC uint8 and labels."""
    device, resized = reading.device, reading.resized
    shard_id, num_shards = reading.shard_id, reading.num_shards
    if isinstance(images, ImageList):
        encoded, labels = _read_files(images, shard_id, num_shards, shuffle, shuffle_seed)
    else:
        encoded, labels = images.read(
            shard_id=shard_id,
            num_shards=num_shards,
            shuffle=shuffle,
            shuffle_seed=shuffle_seed,
            name=_READER,
        )
    decoder = "mixed" if device == "gpu" else "cpu"
    if resized:
        decoded = fn.decoders.image(encoded, device=decoder, output_type=types.DALIImageType.RGB)
        return cast(DataNode, decoded), labels
    # Shorter side to 256 then the centre 256x256 is the centre square resized to 256x256;
    # decoding only that square (read from the header) skips the pixels the crop drops.
    height_width = fn.slice(fn.peek_image_shape(encoded), 0, 2, axes=[0])
    side = fn.cast(fn.reductions.min(height_width), dtype=types.DALIDataType.FLOAT)
    square = fn.decoders.image_crop(
        encoded,
        device=decoder,
        output_type=types.DALIImageType.RGB,
        crop_w=side,
        crop_h=side,
    )
    centre = fn.resize(
        cast(DataNode, square),
        size=(RESIZE, RESIZE),
        interp_type=types.DALIInterpType.INTERP_LINEAR,
        antialias=True,
    )
    return cast(DataNode, centre), labels


def _mean_parts(stats: DatasetStats, mean: str) -> tuple[np.ndarray | None, np.ndarray]:
    """The mean as (an HWC image to subtract first or None, a per-channel vector)."""
    subtract = mean_tensor(stats, mean)  # 0-255, (3, 256, 256) or (3, 1, 1)
    if subtract.shape[1:] == (1, 1):
        return None, subtract.flatten().numpy()
    return subtract.permute(1, 2, 0).contiguous().numpy(), np.zeros(3, np.float32)


def _subtract_image(image: DataNode, mean_image: np.ndarray | None, device: str) -> DataNode:
    if mean_image is None:
        return image
    return fn.cast(image, dtype=types.DALIDataType.FLOAT) - types.Constant(
        mean_image, device=device
    )


def _lighting(stats: DatasetStats, std: float) -> DataNode:
    """Section 4.1's offset ``eigvec @ (alpha * eigval)``, alpha ~ N(0, std) per image."""
    # Column i is 255 * eigval[i] * eigvec[:, i], the same basis as the torchvision backend's.
    basis = (np.asarray(stats.eigvec) * np.asarray(stats.eigval) * PIXEL_SCALE).astype(np.float32)
    alpha = fn.random.normal(shape=[3], stddev=std)
    offset = alpha[0] * types.Constant(basis[:, 0].copy())
    for i in (1, 2):
        offset = offset + alpha[i] * types.Constant(basis[:, i].copy())
    return offset


def _patch(centre: DataNode, *, x: Any, y: Any, mirror: Any, mean: Any, layout: str) -> DataNode:
    """The 224x224 patch at relative anchor (``x``, ``y``) of the 256x256 ``centre``, mirrored
    where ``mirror``, less the per-channel ``mean``, as float in ``layout``."""
    return fn.crop_mirror_normalize(
        centre,
        crop=(CROP, CROP),
        crop_pos_x=x,
        crop_pos_y=y,
        mirror=mirror,
        mean=mean,
        std=[1.0, 1.0, 1.0],
        dtype=types.DALIDataType.FLOAT,
        output_layout=layout,
    )


def _train_graph(
    images: ImageList | EncodedImages,
    stats: DatasetStats,
    *,
    mean: str,
    lighting_std: float,
    reading: _Reading,
    shuffle_seed: int,
    layout: str,
) -> tuple[DataNode, DataNode]:
    """Section 4.1's training patches."""
    centre, labels = _read_and_centre(images, reading, shuffle=True, shuffle_seed=shuffle_seed)
    mean_image, mean_rgb = _mean_parts(stats, mean)
    channel_mean: DataNode | list[float] = mean_rgb.tolist()
    if lighting_std > 0:
        # A constant offset over the image, so it folds into the per-channel mean.
        channel_mean = types.Constant(mean_rgb) - _lighting(stats, lighting_std)
    patch = _patch(
        _subtract_image(centre, mean_image, reading.device),
        x=fn.random.choice(_ANCHORS),
        y=fn.random.choice(_ANCHORS),
        mirror=fn.random.coin_flip(probability=0.5),
        mean=channel_mean,
        layout=layout,
    )
    return patch, labels


def _eval_graph(
    images: ImageList | EncodedImages,
    stats: DatasetStats,
    *,
    mean: str,
    views: str,
    reading: _Reading,
    layout: str,
) -> tuple[DataNode, DataNode]:
    """Section 4.1's test views: the centre, or the ten patches."""
    centre, labels = _read_and_centre(images, reading, shuffle=False, shuffle_seed=0)
    mean_image, mean_rgb = _mean_parts(stats, mean)
    centre = _subtract_image(centre, mean_image, reading.device)

    mean_list = mean_rgb.tolist()
    if views == "center":
        return _patch(centre, x=0.5, y=0.5, mirror=0, mean=mean_list, layout=layout), labels
    ten = [
        _patch(centre, x=x, y=y, mirror=mirror, mean=mean_list, layout=layout)
        for mirror in (0, 1)
        for x, y in _FIVE
    ]
    return fn.stack(*ten), labels


class DaliLoader:
    """One DALI pipeline as a Lightning dataloader: ``(images, int64 labels [B])`` batches.

    Each ``iter()`` is one epoch of exactly ``len()`` batches. An epoch left unfinished (the
    sanity check, ``limit_*_batches``) is read to its end before the next begins, because a
    DALI reader cannot restart mid-epoch. ``steps`` caps the batches per epoch: under DDP every
    rank must take the same number of optimizer steps.

    Given ``resume_at`` (a training loader), it is resumable: ``state_dict()`` is DALI's
    checkpoint of the pipeline (reader position, random generators) where a resumed run
    starts, after ``resume_at()`` batches of the epoch or, when that is ``None``, at the next
    epoch's start; ``load_state_dict()`` rebuilds the pipeline from it.
    """

    def __init__(
        self,
        build: Callable[[str | None], Pipeline],
        shard_size: int,
        batch_size: int,
        steps: int | None = None,
        channels_last: bool = False,
        files: Sequence[Path] = (),
        resume_at: Callable[[], int | None] | None = None,
    ) -> None:
        self.build = build  # a built pipeline, restored from a DALI checkpoint if given one
        self.pipeline = build(None)
        self.channels_last = channels_last
        self.files = files  # what the pipeline reads: searched for the culprit if it fails
        batches = math.ceil(shard_size / batch_size)
        self._steps = batches if steps is None else min(steps, batches)
        self.resume_at = resume_at
        self._iterator: Any = None
        self._unfinished = False
        self._done = 0  # batches of the epoch yielded
        # DALI's checkpoint after each of the last few batches yielded: a fetcher that reads
        # ahead leaves the batches the trainer has finished behind those yielded.
        self._marks: dict[int, str] = {}

    def __len__(self) -> int:
        return self._steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self._iterator is None:
            self._iterator = self._guarded(
                lambda: DALIGenericIterator(
                    self.pipeline,
                    ["images", "labels"],
                    reader_name=_READER,
                    last_batch_policy=LastBatchPolicy.PARTIAL,
                    auto_reset=False,
                )
            )
        self._finish_epoch()
        return self._epoch()

    def _epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # Unfinished once reading begins, not at iter(): Lightning makes an iterator it never
        # reads (and then another), and finishing that epoch would skip it unread.
        self._unfinished = True
        self._mark()
        while self._done < self._steps:
            out = self._next()[0]
            self._done += 1
            self._mark()
            images, labels = out["images"], out["labels"].view(-1).long()
            if self.channels_last:  # NHWC buffers seen as NCHW: channels_last memory
                images = images.permute(0, 3, 1, 2)
            yield images, labels
        self._finish_epoch()

    def _mark(self) -> None:
        if self.resume_at is not None:
            self._marks[self._done] = self._iterator.checkpoints()[0]
            self._marks.pop(self._done - 3, None)

    def _finish_epoch(self) -> None:
        """Read what the epoch has left (a tail past ``steps``, or more), then rewind."""
        if not self._unfinished:
            return
        # next(), not a for loop: iter() on a DALI iterator resets it, mid-epoch or not.
        with contextlib.suppress(StopIteration):
            while True:
                self._next()
        self._guarded(self._iterator.reset)  # which starts reading the next epoch
        self._unfinished = False
        self._done = 0
        self._marks.clear()

    def _next(self) -> Any:
        return self._guarded(lambda: next(self._iterator))

    def state_dict(self) -> dict[str, Any]:
        """Where a run resumed from a checkpoint saved now starts (see the class)."""
        if self.resume_at is None or self._iterator is None:
            return {}
        done = self.resume_at()
        if done is None:
            self._finish_epoch()  # what the next iter() would do first
            return {"pipeline": self._iterator.checkpoints()[0], "batches_done": 0}
        if done not in self._marks:
            raise RuntimeError(
                f"no DALI checkpoint after batch {done} of the epoch (kept: {sorted(self._marks)})"
            )
        return {"pipeline": self._marks[done], "batches_done": done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.pipeline = self.build(state["pipeline"])
        self._iterator = None
        self._unfinished = False
        self._done = state["batches_done"]
        self._marks.clear()

    def _guarded(self, call: Callable[[], _T]) -> _T:
        """``call()``, a step of the pipeline, with a decode error naming its file."""
        try:
            return call()
        except RuntimeError as e:
            if not self.files:
                raise
            # DALI's decoder names the file it failed on; where it names none, find it.
            found = named_in_error(str(e), self.files) or find_undecodable(self.files)
            if found is None:
                raise
            path, error = found
            raise UndecodableImage(
                f"DALI could not decode {path} ({error}), and the run stopped (a DALI pipeline "
                "cannot drop a file mid-epoch, whatever data.bad_files says): convert or delete "
                "it, and run `python -m lit_alexnet.data.verify` on the data root with --mode "
                "full to find any others before training again"
            ) from e


class DaliImageDataModule(FolderDataModule):
    """:class:`~lit_alexnet.data.base.FolderDataModule` decoded and augmented by NVIDIA DALI.

    ``device``: ``"auto"`` (the GPU where there is one), ``"gpu"`` (nvJPEG / hardware JPEG
    decoding and GPU augmentation) or ``"cpu"``. Under DDP the data are sharded by global rank
    and the GPU pipeline runs on the rank's device. ``channels_last`` makes training batches
    channels-last NCHW tensors. ``pipeline_seed`` (default: torch's seed, which
    ``seed_everything`` sets) seeds the shuffle, the same on every rank so that the shards split
    each epoch between them, and, offset by rank, the augmentation.

    Runs in a plain Lightning script too::

        dm = DaliImageDataModule("/data/imagenet", batch_size=128)
        Trainer(max_epochs=90).fit(LitAlexNet(), datamodule=dm)

    Args:
        root: a folder with ``train/<class>/*`` and ``val/`` (one folder per class, or flat
            with ``val_labels``).
        device: ``"auto"``, ``"gpu"`` or ``"cpu"``, as above.
        num_threads: DALI's CPU threads; default one per usable core.
        channels_last: deliver training batches channels-last.
        pipeline_seed: the shuffle's and augmentation's seed; default torch's.
        **kwargs: the options every backend takes (:class:`~lit_alexnet.data.base.FolderOptions`).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        device: Device = AUTO,
        num_threads: int | None = None,
        channels_last: bool = False,
        pipeline_seed: int | None = None,
        **kwargs: Unpack[FolderOptions],
    ) -> None:
        _require_dali()
        check_data_options(device=device, num_threads=num_threads)
        super().__init__(root, **kwargs)
        self.device = resolve_device(device)
        self.num_threads = num_threads or usable_cpus()
        self.channels_last = channels_last
        self.pipeline_seed = pipeline_seed

    def setup(self, stage: str) -> None:
        for name in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
            limit = getattr(self.trainer, name, 1.0)
            if isinstance(limit, int) or limit < 1.0:
                rank_zero_info(
                    f"trainer.{name}={limit}: DALI still decodes each whole epoch (a reader "
                    "cannot stop mid-epoch); only fewer batches reach the model"
                )
        # Every rank must shuffle alike for the shards to split the data.
        self.seed = self.shared_seed(self.pipeline_seed)
        rank_zero_info(f"DALI pipelines on the {self.device.upper()}")
        self.dataset_stats()  # says once where the statistics come from
        # Both splits at fit time, so that a class only in val/ or a bad val file is refused
        # before the first training epoch, not after it.
        self.check_splits(*(("train", "val") if stage == "fit" else ("val",)))

    def train_dataloader(self) -> DaliLoader:
        images = self._source("train")
        shard_id, num_shards = self._shard()
        steps = equal_steps(len(images), self.batch_size, num_shards)
        build = self._builder(
            _train_graph,
            images,
            mean=self.mean,
            lighting_std=self.lighting_std,
            layout="HWC" if self.channels_last else "CHW",
            shuffle_seed=self.seed,
            pipeline_seed=self.seed + 1 + shard_id,
        )
        loader = DaliLoader(
            build,
            self._shard_size(images),
            self.batch_size,
            steps=steps,
            channels_last=self.channels_last,
            files=_files(images),
            resume_at=self.resume_at,
        )
        return self._resumable(loader)

    def val_dataloader(self) -> DaliLoader:
        return self._eval_loader(self.val_views)

    def test_dataloader(self) -> DaliLoader:
        return self._eval_loader(self.test_views)

    def _eval_loader(self, views: Views) -> DaliLoader:
        images = self._source("val")
        build = self._builder(_eval_graph, images, mean=self.mean, views=views, layout="CHW")
        return DaliLoader(build, self._shard_size(images), self.batch_size, files=_files(images))

    def _source(self, split: Split) -> ImageList | EncodedImages:
        """What the pipelines of ``split`` read: its checked file list."""
        return self.image_list(split)

    def _shard(self) -> tuple[int, int]:
        trainer = self.trainer
        return (0, 1) if trainer is None else (trainer.global_rank, trainer.world_size)

    def _shard_size(self, images: ImageList | EncodedImages) -> int:
        start, end = shard_bounds(len(images), *self._shard())
        return end - start

    def _device_id(self) -> int | None:
        if self.device == "cpu":
            return None
        if self.trainer is not None and self.trainer.strategy.root_device.type == "cuda":
            return self.trainer.strategy.root_device.index or 0
        return torch.cuda.current_device()

    def _builder(
        self,
        graph: Any,
        images: ImageList | EncodedImages,
        pipeline_seed: int | None = None,
        **kwargs: Any,
    ) -> Callable[[str | None], Pipeline]:
        """A function building the pipeline of ``graph``, restored from a DALI checkpoint
        when given one."""
        shard_id, num_shards = self._shard()
        stats = self.dataset_stats()
        device_id = self._device_id()
        seed = self.seed + shard_id if pipeline_seed is None else pipeline_seed

        def build(checkpoint: str | None) -> Pipeline:
            defined = pipeline_def(enable_checkpointing=True)(graph)(
                images,
                stats,
                reading=_Reading(self.device, shard_id, num_shards, resized=self.prepared),
                batch_size=self.batch_size,
                num_threads=self.num_threads,
                device_id=device_id,
                seed=seed,
                checkpoint=checkpoint,
                **kwargs,
            )
            defined.build()
            return defined

        return build


def _files(images: ImageList | EncodedImages) -> Sequence[Path]:
    """The files to search for one DALI cannot decode: none outside a file list."""
    return images.files if isinstance(images, ImageList) else ()


class BuiltinDaliDataModule(BuiltinMixin, DaliImageDataModule):
    """The generated dataset of shapes and textures, read by the DALI backend."""
