"""The paper's preprocessing done once: every image of a dataset at 256x256 (section 2).

The paper "down-sampled the images to a fixed resolution of 256 x 256": shorter side to 256,
then the central 256x256 patch. Training reads each image 90 times; doing this step once
leaves the pipelines to decode a small JPEG and cut a patch, instead of decoding a full-size
photo and resizing it every epoch::

    python -m lit_alexnet.data.prepare /data/ilsvrc2012 /data/ilsvrc2012-256 \\
        --val-labels /data/ilsvrc2012/val.txt
    python -m lit_alexnet.train +experiment=paper data.root=/data/ilsvrc2012-256

The output is an ImageFolder root (``train/<class>/``, ``val/<class>/``: a flat validation
folder with a labels file comes out sorted into class folders) of JPEGs at quality
:data:`QUALITY`, upright (EXIF orientation applied) and RGB, whatever the source format
Pillow read. Beside them: ``stats.npz`` (the mean image and RGB PCA of every training image,
as written, computed on the way) and ``prepared.json``, which tells both data backends to
skip their resize. Files that cannot be decoded are reported and left out. An interrupted run
started again keeps the files already written and carries on.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from lit_alexnet.checks import Invalid, Refused, check
from lit_alexnet.data.dataset_stats import (
    STATS_FILENAME,
    STATS_SIZE,
    compute_stats,
    resize_centre_crop,
)
from lit_alexnet.data.folders import ImageList, class_folders, scan_split
from lit_alexnet.data.parallel import ordered_map, progress_bar, usable_cpus
from lit_alexnet.data.verify import BadFile, bad_files_report

__all__ = [
    "MANIFEST",
    "QUALITY",
    "Manifest",
    "main",
    "prepare_folder",
    "prepared_path",
    "read_manifest",
]

MANIFEST = "prepared.json"
BAD_FILES = "bad_files.txt"
# JPEG quality of the prepared images: FFCV's default for ImageNet; at 256x256 the files
# average about a third of ILSVRC-2012's originals, and the mean absolute difference from
# the uncompressed resize is about one grey level.
QUALITY = 90
_FORMAT_VERSION = 1
_KEEP_SUFFIXES = (".jpg", ".jpeg")


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
    """

    size: int
    quality: int
    source: str
    complete: bool = False
    images: dict[str, int] | None = None
    bad_files: dict[str, int] | None = None
    version: int = _FORMAT_VERSION

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


@dataclass(frozen=True)
class _Job:
    source: Path
    target: Path
    train: bool


def prepared_path(source: Path, split_dir: Path, prepared_split_dir: Path) -> Path:
    """Where the prepared copy of ``source``, an image of a class folder of ``split_dir``,
    is written: the same path under ``prepared_split_dir``, with ``.jpg`` appended to the
    names of non-JPEG files (which no two sources can share), so that a prepared file is
    found by the original's name."""
    rel = source.relative_to(split_dir)
    name = rel.name if rel.suffix.lower() in _KEEP_SUFFIXES else rel.name + ".jpg"
    return prepared_split_dir / rel.parent / name


def _jobs(src: Path, dst: Path, split: str, images: ImageList) -> list[_Job]:
    jobs = []
    split_dir = src / split
    for path, label in zip(images.files, images.labels, strict=True):
        # Class folders keep their inner layout; a flat, labelled folder is sorted into them.
        flat = path.parent == split_dir
        target = prepared_path(
            path, split_dir, dst / split / (images.classes[label] if flat else "")
        )
        jobs.append(_Job(path, target, split == "train"))
    seen: dict[Path, Path] = {}
    for job in jobs:
        if job.target in seen:
            raise Invalid(
                f"{seen[job.target]} and {job.source} would both be written to {job.target}: "
                "rename one of them"
            )
        seen[job.target] = job.source
    return jobs


def _encode(pixels: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _decode(data: bytes | Path) -> np.ndarray:
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
        return np.asarray(image.convert("RGB"))


def _process(job: _Job, quality: int) -> np.ndarray | BadFile | None:
    """Write ``job.target`` unless it is there; the written pixels of a training image (the
    statistics are those of what training will read), a :class:`BadFile`, or None."""
    if job.target.is_file():
        return _decode(job.target) if job.train else None
    try:
        data = _encode(resize_centre_crop(job.source), quality)
    except UnidentifiedImageError:
        return BadFile(job.source, "not an image file")
    except Exception as e:  # Pillow's plugins raise many kinds of errors on bad data
        return BadFile(job.source, f"cannot decode: {str(e) or type(e).__name__}")
    job.target.parent.mkdir(parents=True, exist_ok=True)
    # Written whole or not at all, so that a file found by a restarted run is complete.
    partial = job.target.with_name(f".{job.target.name}.part")
    partial.write_bytes(data)
    os.replace(partial, job.target)
    return _decode(data) if job.train else None


def prepare_folder(
    src: str | Path,
    dst: str | Path,
    *,
    val_labels: str | Path | None = None,
    splits: Sequence[str] = ("train", "val"),
    quality: int = QUALITY,
    workers: int | None = None,
) -> Manifest:
    """Write the 256x256 version of the dataset root ``src`` to ``dst`` (see the module).

    Args:
        src: a root with ``train/<class>/*`` and ``val/`` (class folders, or flat with
            ``val_labels``).
        dst: where the prepared root goes; files already there from an interrupted run with
            the same settings are kept.
        val_labels: the labels of a flat ``src/val`` (see
            :func:`~lit_alexnet.data.folders.scan_labelled_folder`).
        splits: the splits to prepare; ``stats.npz`` needs ``"train"`` among them.
        quality: the JPEG quality of the written images.
        workers: threads (Pillow decodes, resizes and encodes without the GIL); default all
            usable cores.

    Raises:
        Invalid: ``dst`` is ``src`` or inside it, or was begun with another quality.
        Missing: ``src`` lacks a split or its class folders.
    """
    src, dst = Path(src).expanduser().resolve(), Path(dst).expanduser().resolve()
    check(1 <= quality <= 95, "quality", quality, "must be 1-95 (Pillow's useful range)")
    if dst == src or src in dst.parents:
        raise Invalid(f"the output {dst} is inside the source {src}: choose a folder outside it")
    manifest = Manifest(size=STATS_SIZE, quality=quality, source=str(src))
    _check_resumable(dst, manifest)
    classes = class_folders(src / "train")
    labels = None if val_labels is None else Path(val_labels).expanduser()
    lists = {
        split: scan_split(src, split, classes, labels if split == "val" else None)
        for split in splits
    }
    dst.mkdir(parents=True, exist_ok=True)
    manifest.write(dst)
    jobs = [job for split in splits for job in _jobs(src, dst, split, lists[split])]
    workers = usable_cpus() if workers is None else max(1, workers)
    bad: list[BadFile] = []
    with progress_bar() as bar, ThreadPoolExecutor(workers, thread_name_prefix="prepare") as pool:
        task = bar.add_task(f"Preparing {src} at {STATS_SIZE}x{STATS_SIZE}", total=len(jobs))

        def train_pixels() -> Iterator[np.ndarray]:
            for result in ordered_map(pool, lambda j: _process(j, quality), jobs, 4 * workers):
                bar.advance(task)
                if isinstance(result, BadFile):
                    bad.append(result)
                elif result is not None:
                    yield result

        if "train" in splits:
            compute_stats(train_pixels()).save(dst / STATS_FILENAME)
        else:
            for _ in train_pixels():
                pass
    left_out = {s: sum(b.path.is_relative_to(src / s) for b in bad) for s in splits}
    (dst / BAD_FILES).unlink(missing_ok=True)
    if bad:
        report = bad_files_report(bad, len(jobs), str(src))
        (dst / BAD_FILES).write_text(report + "\n", encoding="utf-8")
        print(f"{report}\nThese files are left out (listed in {dst / BAD_FILES}).", file=sys.stderr)
    done = Manifest(
        size=STATS_SIZE,
        quality=quality,
        source=str(src),
        complete=True,
        images={s: len(lists[s]) - left_out[s] for s in splits},
        bad_files=left_out,
    )
    done.write(dst)
    return done


def _check_resumable(dst: Path, manifest: Manifest) -> None:
    """Refuse to add to a ``dst`` begun with other settings, or one that is not ours."""
    path = dst / MANIFEST
    if path.is_file():
        try:
            begun = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            begun = {}
        if begun.get("quality") != manifest.quality or begun.get("size") != manifest.size:
            raise Invalid(
                f"{dst} was prepared with quality={begun.get('quality')}, "
                f"size={begun.get('size')}: rerun with --quality {begun.get('quality')} to "
                "carry on, or give a new output folder"
            )
    elif dst.is_dir() and any(dst.iterdir()):
        raise Invalid(
            f"{dst} is not empty and holds no {MANIFEST}: give a new or empty output folder"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lit_alexnet.data.prepare SRC DST``; returns the exit status (2: refused)."""
    parser = argparse.ArgumentParser(
        prog="python -m lit_alexnet.data.prepare",
        description="Write the paper's 256x256 version of a dataset root (section 2): shorter "
        "side to 256, centre crop, JPEG; with stats.npz and a manifest that tells training "
        "to skip its resize. Interrupted, it carries on where it stopped when run again.",
    )
    parser.add_argument("src", type=Path, help="the source root: train/<class>/* and val/")
    parser.add_argument("dst", type=Path, help="the output root (new, or an interrupted one)")
    parser.add_argument(
        "--val-labels",
        type=Path,
        help="labels of a flat src/val folder: 'path label' lines or one label per line",
    )
    parser.add_argument(
        "--split", nargs="+", default=["train", "val"], help="the splits (default train val)"
    )
    parser.add_argument(
        "--quality", type=int, default=QUALITY, help=f"JPEG quality (default {QUALITY})"
    )
    parser.add_argument("--workers", type=int, help="threads (default: all usable cores)")
    args = parser.parse_args(argv)
    try:
        manifest = prepare_folder(
            args.src,
            args.dst,
            val_labels=args.val_labels,
            splits=args.split,
            quality=args.quality,
            workers=args.workers,
        )
    except Refused as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{n} {split}" for split, n in (manifest.images or {}).items())
    print(
        f"{args.dst}: {counts} images at {STATS_SIZE}x{STATS_SIZE}, JPEG quality "
        f"{manifest.quality}; train with data=folder data.root={args.dst}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
