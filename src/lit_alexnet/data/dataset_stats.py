"""Training-set statistics used by the paper's preprocessing (sections 2 and 4.1).

The network sees raw RGB values in 0-255 with the training mean subtracted (section 2);
PCA lighting adds ``eigvec @ (alpha * eigval)`` per image (section 4.1). Statistics are kept
on the 0-1 scale, the scale ImageNet's published figures use, and converted where applied.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lit_alexnet.data.folders import ImageList, scan_split
from lit_alexnet.data.images import load_rgb
from lit_alexnet.data.parallel import ordered_map, progress_bar, usable_cpus
from lit_alexnet.data.verify import check_image_list

STATS_FILENAME = "stats.npz"
# The paper's preprocessing before cropping: shorter side to 256, then the centre 256x256.
STATS_SIZE = 256


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


def compute_stats(images: Iterable[np.ndarray]) -> DatasetStats:
    """Statistics of uint8 HxWx3 images that all have the same size (the 256x256 centre crops).

    Accumulates in float64 in one pass, so it runs over a dataset of any length.
    """
    total: np.ndarray | None = None
    outer = np.zeros((3, 3))
    channel_sum = np.zeros(3)
    pixels = 0
    count = 0
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected HxWx3 images, got shape {image.shape}")
        x = image.astype(np.float64) / 255.0
        if total is None:
            total = np.zeros_like(x)
        elif x.shape != total.shape:
            raise ValueError(f"image of shape {x.shape} among images of {total.shape}")
        total += x
        flat = x.reshape(-1, 3)
        channel_sum += flat.sum(0)
        outer += flat.T @ flat
        pixels += flat.shape[0]
        count += 1
    if total is None:
        raise ValueError("compute_stats needs at least one image")
    mean_rgb = channel_sum / pixels
    cov = outer / pixels - np.outer(mean_rgb, mean_rgb)
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1]
    return DatasetStats(
        mean_rgb=mean_rgb,
        std_rgb=np.sqrt(np.diag(cov)),
        eigval=eigval[order],
        eigvec=eigvec[:, order],
        mean_image=(total / count).astype(np.float32),
    )


def resize_centre_crop(source: bytes | Path) -> np.ndarray:
    """The paper's resize-256 + centre-crop-256 of an image file, as uint8 RGB, with
    torchvision's rounding (``Resize(256)`` then ``CenterCrop(256)`` on a Pillow image)."""
    rgb = load_rgb(source)
    w, h = rgb.size
    if w <= h:
        size = (STATS_SIZE, int(STATS_SIZE * h / w))
    else:
        size = (int(STATS_SIZE * w / h), STATS_SIZE)
    rgb = rgb.resize(size, Image.Resampling.BILINEAR)
    left = round((size[0] - STATS_SIZE) / 2.0)
    top = round((size[1] - STATS_SIZE) / 2.0)
    return np.asarray(rgb.crop((left, top, left + STATS_SIZE, top + STATS_SIZE)))


def compute_folder_stats(
    root: str | Path,
    out: str | Path | None = None,
    verify: str = "fast",
    sample: int | None = None,
) -> tuple[DatasetStats, Path]:
    """Compute the statistics of ``root/train/<class>/*`` and save them.

    Files that cannot be trained on are left out with a warning (``verify`` as in
    :func:`~lit_alexnet.data.verify.find_bad_files`). ``sample`` caps the images used: that
    many drawn at random (seed 0) from the whole training split. Returns the statistics and
    the file they were written to, ``out`` or else ``root/stats.npz``, where training looks.
    """
    root = Path(root).expanduser()
    path = root / STATS_FILENAME if out is None else Path(out).expanduser()
    train = root / "train"
    files = scan_split(root, "train").files
    if sample is not None and len(files) > sample:
        picked = np.sort(np.random.default_rng(0).choice(len(files), sample, replace=False))
        files = tuple(files[i] for i in picked)
    images = check_image_list(
        ImageList(files, (0,) * len(files), ("any",)), mode=verify, on_bad="skip", what=str(train)
    )

    def crop(file: Path) -> np.ndarray:
        try:
            return resize_centre_crop(file)
        except Exception as e:  # Pillow raises many kinds of errors on bad data
            raise ValueError(
                f"{file}: cannot decode ({e}); find such files with "
                f"`python -m lit_alexnet.data.verify {root} --mode full` or pass verify=full"
            ) from e

    workers = max(1, min(8, usable_cpus()))
    with progress_bar() as bar, ThreadPoolExecutor(workers, thread_name_prefix="stats") as pool:
        task = bar.add_task(f"Statistics of {train}", total=len(images))

        def crops() -> Iterator[np.ndarray]:
            for image in ordered_map(pool, crop, images.files, window=4 * workers):
                bar.advance(task)
                yield image

        stats = compute_stats(crops())
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole or not at all: another process (a rank, a node) may be reading it.
    partial = path.with_name(f".{path.name}.{os.getpid()}.npz")
    stats.save(partial)
    os.replace(partial, path)
    return DatasetStats.load(path), path
