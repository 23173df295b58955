"""Training-set statistics used by the paper's preprocessing (sections 2 and 4.1).

The network sees raw RGB values in 0-255 with the training mean subtracted (section 2);
PCA lighting adds ``eigvec @ (alpha * eigval)`` per image (section 4.1). Statistics are kept
on the 0-1 scale, the scale ImageNet's published figures use, and converted where applied.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from lit_alexnet.data.bad_files import check_image_list
from lit_alexnet.data.folders import ImageList, scan_split
from lit_alexnet.data.formats import STATS_FILENAME, DatasetStats
from lit_alexnet.data.images import resize_centre_crop
from lit_alexnet.data.parallel import ordered_map, progress_bar, usable_cpus


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


def sampled(files: Sequence[Path], sample: int | None) -> tuple[Path, ...]:
    """At most ``sample`` of ``files``, drawn at random (seed 0) from all of them, in order."""
    if sample is None or len(files) <= sample:
        return tuple(files)
    picked = np.sort(np.random.default_rng(0).choice(len(files), sample, replace=False))
    return tuple(files[i] for i in picked)


def compute_folder_stats(
    root: str | Path,
    out: str | Path | None = None,
    verify: str = "fast",
    sample: int | None = None,
) -> tuple[DatasetStats, Path]:
    """Compute the statistics of ``root/train/<class>/*`` and save them.

    Files that cannot be trained on are left out with a warning (``verify`` as in
    :func:`~lit_alexnet.data.bad_files.find_bad_files`). ``sample`` caps the images used: that
    many drawn at random (seed 0) from the whole training split. Returns the statistics and
    the file they were written to, ``out`` or else ``root/stats.npz``, where training looks.
    """
    root = Path(root).expanduser()
    path = root / STATS_FILENAME if out is None else Path(out).expanduser()
    train = root / "train"
    files = sampled(scan_split(root, "train").files, sample)
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
