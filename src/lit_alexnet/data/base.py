"""What both data backends share: the dataset's layout, its file lists, checks and statistics.

A backend (:mod:`~lit_alexnet.data.torchvision` or :mod:`~lit_alexnet.data.dali`) subclasses
:class:`FolderDataModule` and only turns the verified file lists into loaders, so the two read
the same files with the same class indices.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal, Protocol, TypedDict, TypeVar

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from lit_alexnet.checks import Invalid, Missing
from lit_alexnet.data.bad_files import BadFilesError, check_image_lists
from lit_alexnet.data.cache import default_cache_dir
from lit_alexnet.data.choices import BATCH_SIZE, LIGHTING_STD, MeanMode, Views, check_data_options
from lit_alexnet.data.dataset_stats import compute_folder_stats, sampled
from lit_alexnet.data.folders import ImageList, class_folders, scan_split
from lit_alexnet.data.formats import IMAGENET_STATS, STATS_FILENAME, DatasetStats, read_manifest
from lit_alexnet.data.images import RESIZE
from lit_alexnet.data.transforms import mean_tensor

Split = Literal["train", "val"]
# Images the statistics are computed from when a root has none: the mean image and the 3x3
# RGB covariance settle to well under one grey level long before this.
STATS_SAMPLE = 10_000
# data.stats=imagenet: the published figures, by name.
PUBLISHED = "imagenet"


class FolderOptions(TypedDict, total=False):
    """The options of :class:`FolderDataModule` that every backend's datamodule passes on,
    typed for ``**kwargs`` (PEP 692); each is described in the class docstring."""

    batch_size: int  # images per batch
    mean: MeanMode  # "image": the mean image (section 2); "channel": per-channel means
    lighting_std: float  # the PCA lighting's sigma (section 4.1); 0 turns it off
    val_views: Views  # "center" or "ten_crop" (section 4.1)
    test_views: Views
    val_labels: str | Path | None  # labels of a flat root/val folder (ImageNet's)
    stats: str | Path | None  # a stats.npz; default root/stats.npz, else ImageNet's figures
    verify: str  # "fast", "full" or "off"
    bad_files: str  # "skip" or "error"


class _ResumableLoader(Protocol):
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


_L = TypeVar("_L", bound=_ResumableLoader)


class FolderDataModule(L.LightningDataModule):
    """The paper's data (sections 2, 4.1) from ``root/train/<class>/*`` and ``root/val``.

    ``root/val`` is laid out like ``train`` (one folder per class), or flat and labelled by
    ``val_labels`` (ImageNet's own validation layout; see :mod:`lit_alexnet.data.folders`).
    Class indices are the sorted training folder names, as torchvision's ImageFolder gives.

    Before any loader is made every file is checked (``verify``: ``"fast"`` reads each file's
    head and tail, ``"full"`` decodes it, ``"off"``); files that are not readable images are
    named in one report and left out (``bad_files="skip"``) or stop the run (``"error"``).

    Statistics (the mean image and the RGB PCA of section 4.1) are the training set's own, as
    the paper's were: from ``stats`` (a file written by ``python -m lit_alexnet.stats``), else
    ``root/stats.npz``, else computed on first use from :data:`STATS_SAMPLE` training images
    drawn at random and cached in the cache directory (``$LIT_ALEXNET_CACHE/stats/``) for
    later runs. ``stats="imagenet"`` asks for ImageNet's published figures instead.
    """

    def __init__(
        self,
        root: str | Path,
        batch_size: int = BATCH_SIZE,
        mean: MeanMode = "image",
        lighting_std: float = LIGHTING_STD,
        val_views: Views = "center",
        test_views: Views = "ten_crop",
        val_labels: str | Path | None = None,
        stats: str | Path | None = None,
        verify: str = "fast",
        bad_files: str = "skip",
    ) -> None:
        super().__init__()
        check_data_options(
            batch_size=batch_size,
            mean=mean,
            lighting_std=lighting_std,
            val_views=val_views,
            test_views=test_views,
            verify=verify,
            bad_files=bad_files,
        )
        self.root = Path(root).expanduser()
        self.batch_size = batch_size
        self.mean = mean
        self.lighting_std = lighting_std
        self.val_views = val_views
        self.test_views = test_views
        self.val_labels = None if val_labels is None else Path(val_labels).expanduser()
        self.stats_path = None if stats is None else Path(stats).expanduser()
        self.verify = verify
        self.bad_files = bad_files
        self._lists: dict[str, ImageList] = {}
        self._train_loader: _ResumableLoader | None = None
        self.seed = 0  # the data's shuffle and augmentation seed, shared by every rank (setup)
        self._train_state: dict[str, Any] | None = None
        self._stats: DatasetStats | None = None

    @property
    def num_classes(self) -> int:
        """The number of class folders under ``root/train``."""
        classes = class_folders(self.root / "train")
        if len(classes) < 2:
            raise Invalid(
                f"data.root={str(self.root)!r}: train/ holds {len(classes)} class folder "
                f"({classes[0]}/); a classifier needs at least 2"
            )
        return len(classes)

    @property
    def prepared(self) -> bool:
        """Whether every image of ``root`` is 256x256 already: a root written by
        :mod:`lit_alexnet.data.prepare`, whose manifest says so (the resize is skipped)."""
        manifest = read_manifest(self.root)
        return manifest is not None and manifest.size == RESIZE

    def image_list(self, split: Split) -> ImageList:
        """The checked files and labels of a split, scanned once and kept."""
        self.check_splits(split)
        return self._lists[split]

    def split_size(self, split: Split) -> int:
        """How many images ``split`` holds (after the checks)."""
        return len(self.image_list(split))

    def check_splits(self, *splits: Split) -> None:
        """Scan and verify ``splits`` (those not done yet) together: a layout error or, with
        ``bad_files="error"``, the bad files of all of them are refused at once."""
        todo = [s for s in splits if s not in self._lists]
        if not todo:
            return
        classes = class_folders(self.root / "train")
        found = {
            f"{self.root}/{split}": scan_split(
                self.root,
                split,
                classes=classes,
                labels_file=self.val_labels if split == "val" else None,
            )
            for split in todo
        }
        checked = self._verified(found)
        for split in todo:
            self._lists[split] = checked[f"{self.root}/{split}"]

    def _verified(self, found: dict[str, ImageList]) -> dict[str, ImageList]:
        """``found`` less its bad files. Under DDP, rank 0 alone reads the files and sends the
        other ranks what it found, a refusal included, so that every rank stops alike."""
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return check_image_lists(found, mode=self.verify, on_bad=self.bad_files)
        outcome: dict[str, list[Path]] | str | None = None
        if trainer.global_rank == 0:
            try:
                checked = check_image_lists(found, mode=self.verify, on_bad=self.bad_files)
                outcome = {
                    what: sorted(set(found[what].files) - set(checked[what].files))
                    for what in found
                }
            except BadFilesError as e:
                outcome = str(e)
        outcome = trainer.strategy.broadcast(outcome, src=0)
        if isinstance(outcome, str):
            raise BadFilesError(outcome)
        assert outcome is not None
        return {what: found[what].without(outcome[what]) for what in found}

    def state_dict(self) -> dict[str, Any]:
        """Where the training data stand, saved with every checkpoint: the training loader's
        position (see :meth:`resume_at`)."""
        loader = self._train_loader
        return {} if loader is None else {"train_loader": loader.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Lightning restores a datamodule before it asks for the training loader, whereas
        # it hands a loader its own state only when nothing asked for the loader before the
        # restore (estimated_stepping_batches does): the loader is put in place when made.
        self._train_state = state_dict.get("train_loader")

    def _resumable(self, loader: _L) -> _L:
        """``loader``, the training loader just made, where a loaded checkpoint left it."""
        self._train_loader = loader
        if self._train_state is not None:
            loader.load_state_dict(self._train_state)
            self._train_state = None
        return loader

    def resume_at(self) -> int | None:
        """Where the training data of a run resumed from a checkpoint saved now begin: after
        this many batches of the current epoch, or ``None`` for the next epoch's start."""
        trainer = self.trainer
        if trainer is None:
            return None
        # Lightning has no public count of the batches done in the running epoch; its fit
        # loop's progress tracker is what its own checkpoints restore from.
        # `processed` (a _ProcessedTracker's, typed as its base): counted once the optimizer
        # has stepped, before on_train_batch_end, where a checkpoint inside an epoch is saved.
        current = trainer.fit_loop.epoch_loop.batch_progress.current
        done: int = current.processed  # type: ignore[attr-defined]
        return None if done >= trainer.num_training_batches else done

    def shared_seed(self, seed: int | None = None) -> int:
        """``seed``, or torch's (which ``seed_everything`` sets), the same on every rank."""
        seed = torch.initial_seed() if seed is None else seed
        if self.trainer is not None:
            seed = self.trainer.strategy.broadcast(seed)
        return seed % 2**31

    def preprocessing(self) -> dict[str, Any]:
        """What inference on a new image needs, saved with each checkpoint: the class names
        (in index order) and the mean subtracted in training (0-255, ``(3, 256, 256)`` for the
        mean image or ``(3, 1, 1)``)."""
        return {
            "class_names": list(self.image_list("train").classes),
            "mean": mean_tensor(self.dataset_stats(), self.mean),
        }

    def prepare_data(self) -> None:
        # Once per node (Lightning calls this on local rank 0 only); the other ranks read the
        # cached file in setup.
        self.dataset_stats()

    def _stats_key(self) -> str:
        """What the first-use statistics depend on: the root, its training files' names, and
        the size and modification time of those the sample reads. Added, removed, renamed or
        rewritten images give new statistics, not a stale file."""
        files = scan_split(self.root, "train").files
        digest = hashlib.sha1(f"{self.root.resolve()}\n{STATS_SAMPLE}\n".encode())
        for file in files:
            digest.update(f"{os.path.relpath(file, self.root)}\n".encode())
        for file in sampled(files, STATS_SAMPLE):
            info = file.stat()
            digest.update(f"{info.st_size} {info.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:16]

    def dataset_stats(self) -> DatasetStats:
        """The training set's mean and RGB principal components (see the class docstring)."""
        if self._stats is None:
            own = self.root / STATS_FILENAME
            if self.stats_path == Path(PUBLISHED):
                rank_zero_info("data.stats=imagenet: ImageNet's published mean and PCA figures")
                self._stats = IMAGENET_STATS
            elif self.stats_path is not None:
                if not self.stats_path.is_file():
                    raise Missing(
                        f"data.stats={str(self.stats_path)!r} does not exist: write it with "
                        f"`python -m lit_alexnet.stats data.root={self.root}`, or set "
                        "data.stats=null to compute them on first use"
                    )
                self._stats = DatasetStats.load(self.stats_path)
            elif own.is_file():
                self._stats = DatasetStats.load(own)
            else:
                self._stats = self._first_use_stats()
        return self._stats

    def _first_use_stats(self) -> DatasetStats:
        path = default_cache_dir() / "stats" / f"{self.root.name}-{self._stats_key()}.npz"
        if not path.is_file():
            rank_zero_info(
                f"{self.root / STATS_FILENAME} not found: computing the mean image and PCA of "
                f"{STATS_SAMPLE} random training images once, cached in {path} "
                "(data.stats=imagenet uses ImageNet's published figures instead)"
            )
            compute_folder_stats(self.root, out=path, verify=self.verify, sample=STATS_SAMPLE)
        return DatasetStats.load(path)
