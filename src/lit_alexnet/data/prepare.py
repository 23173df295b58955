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

``--format shards`` writes the same images as webdataset tar shards instead, for many nodes
reading from shared storage: ``train-000000.tar``, ... and ``val-000000.tar``, ... of about
``--shard-size`` MB each, every split's samples shuffled across its shards with a fixed
seed, each sample a ``<key>.jpg`` and a ``<key>.cls`` (see :func:`prepare_shards`); beside
each tar its DALI index (``.idx``), and ``shards.json`` listing the shards, their sample
counts and the class names::

    python -m lit_alexnet.data.prepare /data/ilsvrc2012 /shared/ilsvrc2012-shards \\
        --val-labels /data/ilsvrc2012/val.txt --format shards
    python -m lit_alexnet.train +experiment=paper data=shards data.root=/shared/ilsvrc2012-shards
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from lit_alexnet.checks import Invalid, Refused, check
from lit_alexnet.console import prog
from lit_alexnet.data.bad_files import BadFile, bad_files_report
from lit_alexnet.data.dataset_stats import compute_stats
from lit_alexnet.data.folders import ImageList, class_folders, scan_split
from lit_alexnet.data.formats import (
    BAD_FILES,
    CLASS_DIGITS,
    MANIFEST,
    STATS_FILENAME,
    Manifest,
    write_shards_index,
)
from lit_alexnet.data.images import RESIZE, resize_centre_crop
from lit_alexnet.data.parallel import ordered_map, progress_bar, usable_cpus

__all__ = [
    "QUALITY",
    "SHARD_SIZE_MB",
    "main",
    "prepare_folder",
    "prepare_shards",
    "prepared_path",
]

# JPEG quality of the prepared images: FFCV's default for ImageNet. On the benchmark's
# 500x375 photos the prepared files are a quarter of the originals' size (19 vs 77 KB), and
# tests hold their pixels within 2.5 grey levels (mean) of the uncompressed resize.
QUALITY = 90
_KEEP_SUFFIXES = (".jpg", ".jpeg")
# A few hundred MB: large enough for object storage to stream at full speed, small enough
# that an ImageNet epoch has a few hundred shards for the ranks to split between them.
SHARD_SIZE_MB = 256.0
# The seed of the shuffle across shards: fixed, so that an interrupted run carries on with
# the same order. Training reshuffles each epoch on top of it.
_SHARD_SEED = 0


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


def _prepared_jpeg(source: Path, quality: int) -> bytes | BadFile:
    """The 256x256 JPEG of ``source``, or why it cannot be made."""
    try:
        return _encode(resize_centre_crop(source), quality)
    except UnidentifiedImageError:
        return BadFile(source, "not an image file")
    except Exception as e:  # Pillow's plugins raise many kinds of errors on bad data
        return BadFile(source, f"cannot decode: {str(e) or type(e).__name__}")


def _process(job: _Job, quality: int) -> np.ndarray | BadFile | None:
    """Write ``job.target`` unless it is there; the written pixels of a training image (the
    statistics are those of what training will read), a :class:`BadFile`, or None."""
    if job.target.is_file():
        return _decode(job.target) if job.train else None
    data = _prepared_jpeg(job.source, quality)
    if isinstance(data, BadFile):
        return data
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
    src, dst = _checked_paths(src, dst, quality)
    manifest = Manifest(size=RESIZE, quality=quality, source=str(src))
    _check_resumable(dst, manifest)
    _, lists = _scan(src, splits, val_labels)
    dst.mkdir(parents=True, exist_ok=True)
    manifest.write(dst)
    jobs = [job for split in splits for job in _jobs(src, dst, split, lists[split])]
    workers = usable_cpus() if workers is None else max(1, workers)
    bad: list[BadFile] = []
    with progress_bar() as bar, ThreadPoolExecutor(workers, thread_name_prefix="prepare") as pool:
        task = bar.add_task(f"Preparing {src} at {RESIZE}x{RESIZE}", total=len(jobs))

        def train_pixels() -> Iterator[np.ndarray]:
            for result in ordered_map(pool, lambda j: _process(j, quality), jobs, 4 * workers):
                bar.advance(task)
                if isinstance(result, BadFile):
                    bad.append(result)
                elif result is not None:
                    yield result

        _save_stats(train_pixels(), dst if "train" in splits else None)
    left_out = _report_bad_files(bad, src, dst, splits, len(jobs))
    done = Manifest(
        size=RESIZE,
        quality=quality,
        source=str(src),
        complete=True,
        images={s: len(lists[s]) - left_out[s] for s in splits},
        bad_files=left_out,
    )
    done.write(dst)
    return done


def _scan(
    src: Path, splits: Sequence[str], val_labels: str | Path | None
) -> tuple[list[str], dict[str, ImageList]]:
    """The class names of ``src/train`` and the file list of each of ``splits``."""
    classes = class_folders(src / "train")
    labels = None if val_labels is None else Path(val_labels).expanduser()
    return classes, {
        split: scan_split(src, split, classes, labels if split == "val" else None)
        for split in splits
    }


def _save_stats(train_pixels: Iterator[np.ndarray], dst: Path | None) -> None:
    """Run the writing through ``train_pixels``, saving their statistics in ``dst`` (None:
    only written, a run without the training split)."""
    if dst is not None:
        compute_stats(train_pixels).save(dst / STATS_FILENAME)
    else:
        for _ in train_pixels:
            pass


def _checked_paths(src: str | Path, dst: str | Path, quality: int) -> tuple[Path, Path]:
    src_path, dst_path = Path(src).expanduser().resolve(), Path(dst).expanduser().resolve()
    check(1 <= quality <= 95, "quality", quality, "must be 1-95 (Pillow's useful range)")
    if dst_path == src_path or src_path in dst_path.parents:
        raise Invalid(
            f"the output {dst_path} is inside the source {src_path}: choose a folder outside it"
        )
    return src_path, dst_path


def _report_bad_files(
    bad: Sequence[BadFile], src: Path, dst: Path, splits: Sequence[str], total: int
) -> dict[str, int]:
    """Write (or clear) ``DST/bad_files.txt``, say so, and count the bad files per split."""
    (dst / BAD_FILES).unlink(missing_ok=True)
    if bad:
        report = bad_files_report(list(bad), total, str(src))
        (dst / BAD_FILES).write_text(report + "\n", encoding="utf-8")
        print(f"{report}\nThese files are left out (listed in {dst / BAD_FILES}).", file=sys.stderr)
    return {s: sum(b.path.is_relative_to(src / s) for b in bad) for s in splits}


@dataclass(frozen=True)
class _Sample:
    position: int  # in the split's shuffled order: the sample's key
    source: Path
    label: int

    @property
    def key(self) -> str:
        return f"{self.position:08d}"


def _shuffled(images: ImageList, seed: int) -> list[_Sample]:
    """The split's images in a fixed random order, so that every shard mixes the classes (a
    reader shuffles only within a buffer; in folder order a shard would hold one class)."""
    order = np.random.default_rng(seed).permutation(len(images))
    return [
        _Sample(position, images.files[i], images.labels[i])
        for position, i in enumerate(order.tolist())
    ]


def _tar_bytes(size: int) -> int:
    """The bytes a member of ``size`` bytes takes in a tar: a header block, data padded."""
    return tarfile.BLOCKSIZE + -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def _shard_name(split: str, index: int) -> str:
    """The file name of shard ``index`` of ``split``, without its suffix."""
    return f"{split}-{index:06d}"


class _ShardWriter:
    """Appends samples to ``DST/<split>-NNNNNN.tar``, starting the next shard when the next
    sample would take this one past ``limit`` bytes; each tar and its DALI index are written
    under temporary names and renamed, the index first, so that a tar found is complete."""

    def __init__(self, dst: Path, split: str, first: int, limit: int) -> None:
        self.dst, self.split, self.index, self.limit = dst, split, first, limit
        self.tar: tarfile.TarFile | None = None
        self.lines: list[str] = []
        self.size = 0
        self.written: list[dict[str, Any]] = []  # {"tar", "index", "samples"} of each closed

    def add(self, key: str, jpeg: bytes, label: int) -> None:
        members = (("jpg", jpeg), ("cls", f"{label:0{CLASS_DIGITS}d}".encode()))
        size = sum(_tar_bytes(len(data)) for _, data in members)
        if self.tar is not None and self.size + size > self.limit:
            self.close()
        if self.tar is None:
            name = _shard_name(self.split, self.index)
            # USTAR, mtime 0, owner 0: the same bytes in every run, resumed or not. Open
            # across add() calls, closed by close().
            self.tar = tarfile.open(  # noqa: SIM115
                self.dst / f".{name}.tar.part", "w", format=tarfile.USTAR_FORMAT
            )
            self.lines, self.size = [], 0
        line = []
        for ext, data in members:
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mode = len(data), 0o644
            self.tar.addfile(info, io.BytesIO(data))
            # The data ends the archive so far, less its padding: where DALI reads it from.
            offset = self.tar.offset - _tar_bytes(len(data)) + tarfile.BLOCKSIZE
            line.append(f"{ext} {offset} {len(data)} {info.name}")
        self.lines.append(" ".join(line))
        self.size += size

    def close(self) -> None:
        """Finish the shard being written, if any."""
        if self.tar is None:
            return
        self.tar.close()
        name = _shard_name(self.split, self.index)
        # DALI's webdataset index (its tools/wds2idx.py writes the same): version and sample
        # count, then per sample each member's extension, data offset, size and name.
        index = self.dst / f".{name}.idx.part"
        index.write_text(f"v1.2 {len(self.lines)}\n" + "\n".join(self.lines) + "\n")
        os.replace(index, self.dst / f"{name}.idx")
        os.replace(self.dst / f".{name}.tar.part", self.dst / f"{name}.tar")
        self.written.append(
            {"tar": f"{name}.tar", "index": f"{name}.idx", "samples": len(self.lines)}
        )
        self.tar = None
        self.index += 1


def _finished_shards(
    dst: Path, split: str
) -> Iterator[tuple[dict[str, Any], list[tarfile.TarInfo], tarfile.TarFile]]:
    """The shards of ``split`` a previous run completed, in order, each opened for reading."""
    index = 0
    while (dst / f"{_shard_name(split, index)}.tar").is_file():
        name = _shard_name(split, index)
        with tarfile.open(dst / f"{name}.tar") as tar:
            members = tar.getmembers()
            jpegs = [m for m in members if m.name.endswith(".jpg")]
            yield {"tar": f"{name}.tar", "index": f"{name}.idx", "samples": len(jpegs)}, jpegs, tar
        index += 1


def _write_split(
    dst: Path,
    split: str,
    samples: Sequence[_Sample],
    *,
    quality: int,
    limit: int,
    pool: ThreadPoolExecutor,
    window: int,
    bad: list[BadFile],
    shards: list[dict[str, Any]],
    advance: Callable[[], None],
) -> Iterator[np.ndarray]:
    """Write the shards of ``split`` (keeping those a previous run finished), appending them to
    ``shards`` and the files left out to ``bad``; yields each written training image's
    pixels, in the shuffled order whether resumed or not, for the statistics."""
    train = split == "train"
    done: set[int] = set()
    for record, jpegs, tar in _finished_shards(dst, split):
        shards.append(record)
        for member in jpegs:
            done.add(int(member.name.split(".", 1)[0]))
            advance()
            if train:
                extracted = tar.extractfile(member)
                assert extracted is not None  # a regular file: ours
                yield _decode(extracted.read())
    last = max(done, default=-1)
    # Those before the last finished sample and not in a shard were bad files: ask again why.
    for sample in samples[: last + 1]:
        if sample.position not in done:
            result = _prepared_jpeg(sample.source, quality)
            if not isinstance(result, BadFile):
                raise Invalid(
                    f"{sample.source} could not be read when {dst} was begun, and now can: "
                    "prepare the source again into a new output folder"
                )
            bad.append(result)
            advance()
    writer = _ShardWriter(dst, split, len(shards), limit)
    todo = samples[last + 1 :]
    encoded = ordered_map(pool, lambda s: _prepared_jpeg(s.source, quality), todo, window)
    for sample, jpeg in zip(todo, encoded, strict=True):
        advance()
        if isinstance(jpeg, BadFile):
            bad.append(jpeg)
            continue
        writer.add(sample.key, jpeg, sample.label)
        if train:
            yield _decode(jpeg)
    writer.close()
    shards.extend(writer.written)


def prepare_shards(
    src: str | Path,
    dst: str | Path,
    *,
    val_labels: str | Path | None = None,
    splits: Sequence[str] = ("train", "val"),
    quality: int = QUALITY,
    shard_size: float = SHARD_SIZE_MB,
    workers: int | None = None,
) -> Manifest:
    """Write the 256x256 images of ``src`` to ``dst`` as webdataset tar shards (section 2's
    preprocessing, the same images as :func:`prepare_folder`'s).

    Each split's images, shuffled with a fixed seed, fill ``<split>-000000.tar``, ... in turn,
    a shard closed when the next sample would take it past ``shard_size`` MB. A sample is
    ``<key>.jpg`` (the JPEG) and ``<key>.cls`` (the class index as :data:`CLASS_DIGITS`
    decimal digits); the key is the sample's place in the shuffled order. Beside each tar is
    its DALI index (``.idx``); ``shards.json`` lists every split's shards with their sample
    counts and the class names; ``stats.npz`` and ``prepared.json`` as for a folder.
    Interrupted and run again, it keeps the finished shards and writes the rest, ending with
    the bytes of an uninterrupted run.

    Args:
        src, dst, val_labels, splits, quality, workers: as for :func:`prepare_folder`.
        shard_size: each shard's target size in MB (a shard holds at least one sample).

    Raises:
        Invalid: as for :func:`prepare_folder`, or ``dst`` was begun with another format or
            shard size.
        Missing: ``src`` lacks a split or its class folders.
    """
    src, dst = _checked_paths(src, dst, quality)
    check(shard_size > 0, "shard_size", shard_size, "must be positive (MB)")
    begun = Manifest(
        size=RESIZE, quality=quality, source=str(src), format="shards", shard_size=shard_size
    )
    _check_resumable(dst, begun)
    classes, lists = _scan(src, splits, val_labels)
    if len(classes) > 10**CLASS_DIGITS:
        raise Invalid(
            f"{src / 'train'} has {len(classes)} classes; shards hold at most "
            f"{10**CLASS_DIGITS}: prepare it with --format folder"
        )
    manifest = replace(begun, listing={split: _digest(lists[split], src) for split in splits})
    _check_same_source(dst, manifest)
    dst.mkdir(parents=True, exist_ok=True)
    manifest.write(dst)
    bad, shards = _write_shards(dst, lists, quality, shard_size, workers, f"Sharding {src}")
    total = sum(len(images) for images in lists.values())
    left_out = _report_bad_files(bad, src, dst, splits, total)
    write_shards_index(dst, classes, shards)
    done = replace(
        manifest,
        complete=True,
        images={s: sum(shard["samples"] for shard in shards[s]) for s in splits},
        bad_files=left_out,
    )
    done.write(dst)
    return done


def _write_shards(
    dst: Path,
    lists: dict[str, ImageList],
    quality: int,
    shard_size: float,
    workers: int | None,
    what: str,
) -> tuple[list[BadFile], dict[str, list[dict[str, Any]]]]:
    """Write every split's shards on ``workers`` threads with one progress bar, and the
    training split's statistics; returns the files left out and each split's shards."""
    workers = usable_cpus() if workers is None else max(1, workers)
    bad: list[BadFile] = []
    shards: dict[str, list[dict[str, Any]]] = {}
    total = sum(len(images) for images in lists.values())
    with progress_bar() as bar, ThreadPoolExecutor(workers, thread_name_prefix="prepare") as pool:
        task = bar.add_task(f"{what} at {RESIZE}x{RESIZE}", total=total)
        for number, split in enumerate(lists):
            pixels = _write_split(
                dst,
                split,
                _shuffled(lists[split], _SHARD_SEED + number),
                quality=quality,
                limit=int(shard_size * 2**20),
                pool=pool,
                window=4 * workers,
                bad=bad,
                shards=shards.setdefault(split, []),
                advance=lambda: bar.advance(task),
            )
            _save_stats(pixels, dst if split == "train" else None)
    return bad, shards


def _digest(images: ImageList, src: Path) -> str:
    """A digest of a split's files (relative to ``src``) and labels, which fix its order."""
    listing = "\n".join(
        f"{path.relative_to(src)}\t{label}"
        for path, label in zip(images.files, images.labels, strict=True)
    )
    return hashlib.sha256(listing.encode()).hexdigest()


def _check_same_source(dst: Path, manifest: Manifest) -> None:
    """Refuse to carry on shards begun from another set of source files: the shuffled order,
    and so what each finished shard holds, depends on every file."""
    path = dst / MANIFEST
    if not path.is_file():
        return
    begun = json.loads(path.read_text(encoding="utf-8")).get("listing")
    if begun is not None and begun != manifest.listing:
        raise Invalid(
            f"the source files of {manifest.source} changed since {dst} was begun (files "
            "added, removed or relabelled): prepare them into a new output folder"
        )


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
        form, shard_size = begun.get("format", "folder"), begun.get("shard_size")
        if form != manifest.format or shard_size != manifest.shard_size:
            again = f"--format {form}" + (
                "" if shard_size is None else f" --shard-size {shard_size}"
            )
            raise Invalid(
                f"{dst} was begun with {again}: rerun with {again} to carry on, or give a new "
                "output folder"
            )
    elif dst.is_dir() and any(dst.iterdir()):
        raise Invalid(
            f"{dst} is not empty and holds no {MANIFEST}: give a new or empty output folder"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lit_alexnet.data.prepare SRC DST``; returns the exit status (2: refused)."""
    parser = argparse.ArgumentParser(
        prog=prog("lit_alexnet.data.prepare"),
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
    parser.add_argument(
        "--format",
        choices=["folder", "shards"],
        default="folder",
        help="an ImageFolder root (default), or webdataset tar shards for many nodes",
    )
    parser.add_argument(
        "--shard-size",
        type=float,
        default=SHARD_SIZE_MB,
        help=f"with --format shards: each shard's size in MB (default {SHARD_SIZE_MB:g})",
    )
    args = parser.parse_args(argv)
    options: dict[str, Any] = {
        "val_labels": args.val_labels,
        "splits": args.split,
        "quality": args.quality,
        "workers": args.workers,
    }
    try:
        if args.format == "shards":
            manifest = prepare_shards(args.src, args.dst, shard_size=args.shard_size, **options)
        else:
            manifest = prepare_folder(args.src, args.dst, **options)
    except Refused as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{n} {split}" for split, n in (manifest.images or {}).items())
    print(
        f"{args.dst}: {counts} images at {RESIZE}x{RESIZE}, JPEG quality "
        f"{manifest.quality}; train with data={args.format} data.root={args.dst}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
