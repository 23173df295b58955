"""The files lit_alexnet writes beside a dataset and reads back, in one place for the writers
(``prepare``, ``stats``, the built-in dataset) and the readers (the datamodules):

- ``stats.npz``: a training set's mean image and RGB principal components (sections 2, 4.1);
- ``prepared.json``: the manifest of a root that ``python -m lit_alexnet.data.prepare`` made;
- ``shards.json``: the index of a root of webdataset shards (``--format shards``);
- ``bad_files.txt``: the source files prepare left out.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lit_alexnet.checks import Invalid, Missing

STATS_FILENAME = "stats.npz"


@dataclass(frozen=True, eq=False)
class DatasetStats:
    """Mean, spread and RGB principal components of a training set, on the 0-1 pixel scale.

    Attributes:
        mean_rgb: per-channel mean, shape (3,).
        std_rgb: per-channel standard deviation, shape (3,).
        eigval: eigenvalues of the 3x3 RGB covariance, descending, shape (3,).
        eigvec: the matching eigenvectors as columns, shape (3, 3).
        mean_image: the per-pixel mean image after resize-256 and centre-crop-256, shape
            (256, 256, 3), or None where only per-channel figures are known.
        source: where the figures come from, for logs.
    """

    mean_rgb: np.ndarray
    std_rgb: np.ndarray
    eigval: np.ndarray
    eigvec: np.ndarray
    mean_image: np.ndarray | None = None
    source: str = "computed"

    def save(self, path: str | Path) -> None:
        """Write the statistics to an ``.npz`` file."""
        arrays = {
            "mean_rgb": self.mean_rgb,
            "std_rgb": self.std_rgb,
            "eigval": self.eigval,
            "eigvec": self.eigvec,
        }
        if self.mean_image is not None:
            arrays["mean_image"] = self.mean_image
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> DatasetStats:
        """Read statistics written by :meth:`save`."""
        with np.load(path) as f:
            return cls(
                mean_rgb=f["mean_rgb"],
                std_rgb=f["std_rgb"],
                eigval=f["eigval"],
                eigvec=f["eigvec"],
                mean_image=f.get("mean_image"),
                source=str(path),
            )


# ImageNet's published figures (0-1 scale), as used by fb.resnet.torch and torchvision.
IMAGENET_STATS = DatasetStats(
    mean_rgb=np.array([0.485, 0.456, 0.406]),
    std_rgb=np.array([0.229, 0.224, 0.225]),
    eigval=np.array([0.2175, 0.0188, 0.0045]),
    eigvec=np.array(
        [
            [-0.5675, 0.7192, 0.4009],
            [-0.5808, -0.0045, -0.8140],
            [-0.5836, -0.6948, 0.4203],
        ]
    ),
    mean_image=None,
    source="ImageNet's published figures",
)


MANIFEST = "prepared.json"


BAD_FILES = "bad_files.txt"


_FORMAT_VERSION = 1


SHARDS_INDEX = "shards.json"


# A sample's class is written as this many decimal digits: text that webdataset's decoders
# and int() read, and of a fixed length, which a DALI graph turns into a number with
# arithmetic (lit_alexnet.data.shards).
CLASS_DIGITS = 6


@dataclass(frozen=True)
class Manifest:
    """What ``prepared.json`` says about a prepared root.

    Attributes:
        size: the side of every image (256).
        quality: the JPEG quality they were written at.
        source: the root they were made from.
        complete: whether every split was done (an interrupted run writes ``False``).
        images: per split, the images written.
        bad_files: per split, the source files left out because they cannot be decoded.
        format: ``"folder"`` (an ImageFolder root) or ``"shards"`` (webdataset tars).
        shard_size: the shards' target size in MB (``format="shards"`` only).
        listing: per split, a digest of the source files and labels (``format="shards"``
            only: the shuffled order, and so every shard, depends on all of them).
    """

    size: int
    quality: int
    source: str
    complete: bool = False
    images: dict[str, int] | None = None
    bad_files: dict[str, int] | None = None
    version: int = _FORMAT_VERSION
    format: str = "folder"  # absent from the manifests of earlier versions, all folders
    shard_size: float | None = None
    listing: dict[str, str] | None = None

    def write(self, root: Path) -> None:
        tmp = root / f".{MANIFEST}.{os.getpid()}"
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, root / MANIFEST)


def read_manifest(root: str | Path) -> Manifest | None:
    """The manifest of a root that :func:`prepare_folder` completed, else None."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    try:
        fields: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest(**fields)
    except (ValueError, TypeError) as e:
        raise Invalid(
            f"{path} is not a manifest written by lit_alexnet.data.prepare ({e}): delete it, "
            "or prepare the root again"
        ) from e
    return manifest if manifest.complete else None


def read_shards_index(root: str | Path) -> dict[str, Any]:
    """``root/shards.json`` of a root that prepare completed with ``--format shards``.

    Raises:
        Missing: ``root`` is no such root (not prepared, unfinished, or a folder root).
    """
    root = Path(root).expanduser()
    manifest = read_manifest(root)
    write = f"`python -m lit_alexnet.data.prepare SRC {root} --format shards`"
    if manifest is None:
        if (root / MANIFEST).is_file():
            raise Missing(
                f"data.root={str(root)!r} was not finished by prepare: run the command that "
                f"began it again (for shards, {write})"
            )
        raise Missing(
            f"data.root={str(root)!r} is not a shards root (no {MANIFEST} of format shards): "
            f"write one with {write}, or read an image folder with data=folder"
        )
    if manifest.format != "shards":
        raise Missing(
            f"data.root={str(root)!r} holds a prepared {manifest.format}, not shards: read it "
            f"with data=folder, or write shards with {write}"
        )
    index: dict[str, Any] = json.loads((root / SHARDS_INDEX).read_text(encoding="utf-8"))
    return index


def write_shards_index(
    root: Path, classes: list[str], splits: dict[str, list[dict[str, Any]]]
) -> None:
    """Write ``root/shards.json``: the class names and each split's shards (their ``tar``,
    ``index`` and ``samples``), whole or not at all."""
    index = {"classes": list(classes), "splits": splits}
    written = root / f".{SHARDS_INDEX}.{os.getpid()}"
    written.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    os.replace(written, root / SHARDS_INDEX)
