"""Benchmark for the data path: images per second of the DALI pipeline against torchvision's.

Both loaders read the same JPEGs through their data modules' train loaders, with section
4.1's augmentation: decode, shorter side to 256, centre 256x256, mean subtraction, random
224x224 crop, flip and PCA lighting. DALI is tried with several CPU thread counts, the
DataLoader with several worker counts (both up to one more than the cores: they also wait on
reads and hand-offs); the ratio is best against best. A timed round is one whole epoch of one
loader, up to the end of what it does in the background (:func:`idle_since`), taken in turns
(:meth:`Timer.rounds`). The same images prepared at 256x256 (:mod:`lit_alexnet.data.prepare`),
as a folder and as webdataset shards, are timed in the same rounds: the prepared/raw ratios
say what skipping the resize saves.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image

from lit_alexnet.bench import report
from lit_alexnet.bench.timing import Timer
from lit_alexnet.checks import Invalid, Missing
from lit_alexnet.data.bad_files import check_image_list
from lit_alexnet.data.base import FolderDataModule
from lit_alexnet.data.dali import DaliImageDataModule, resolve_device
from lit_alexnet.data.folders import ImageList, scan_split
from lit_alexnet.data.formats import Manifest, read_manifest
from lit_alexnet.data.parallel import usable_cpus
from lit_alexnet.data.prepare import prepare_folder, prepare_shards, prepared_path
from lit_alexnet.data.shards import ShardsDataModule, TorchShardsDataModule
from lit_alexnet.data.torchvision import ImageFolderDataModule

DALI, TORCHVISION = "dali", "torchvision"
RAW, PREPARED, SHARDS = "raw", "prepared", "shards"
# A loader's background work has ended after this many quiet polls in a row.
_POLL_S, _QUIET_POLLS, _IDLE_TIMEOUT_S = 0.01, 2, 10.0
# Each data's root, files (shards: None) and manifest (raw: None).
Sources = dict[str, tuple[Path, ImageList | None, Manifest | None]]
Job = Callable[[], int]
Key = tuple[str, str, str]  # a row: (loader, configuration, data)


def default_worker_counts(cpus: int | None = None) -> list[int]:
    """0, 1, 2, 4, ... up to the usable cores, the core count itself, and one more."""
    cpus = usable_cpus() if cpus is None else cpus
    return list(dict.fromkeys([0, *(2**i for i in range(cpus.bit_length())), cpus, cpus + 1]))


def _subset(images: ImageList, limit: int | None) -> ImageList:
    """At most ``limit`` files, evenly spaced through the sorted list so every class stays."""
    if limit is None or limit >= len(images):
        return images
    keep = [i * len(images) // limit for i in range(limit)]
    return ImageList(
        files=tuple(images.files[i] for i in keep),
        labels=tuple(images.labels[i] for i in keep),
        classes=images.classes,
    )


def _sources(
    root: Path, images: int | None, prepared: Path | None, shards: Path | None
) -> tuple[Sources, ImageList, int]:
    """The data to time, the raw training files (at most ``images``, evenly spread) and how
    many the split holds. Scanned and checked once for all loaders, and only those read."""
    found = scan_split(root, "train")
    subset = _subset(found, images)
    files = check_image_list(subset, mode="fast", on_bad="skip", what=f"{root}/train")
    sources: Sources = {RAW: (root, files, None)}
    if prepared is not None:
        manifest = _manifest(prepared, root, PREPARED)
        copies = [prepared_path(f, root / "train", prepared / "train") for f in files.files]
        missing = [path for path in copies if not path.is_file()]
        if missing:
            raise Missing(f"{prepared} lacks {missing[0]}, the prepared copy of an image of {root}")
        copied = ImageList(tuple(copies), files.labels, files.classes)
        sources[PREPARED] = (prepared, copied, manifest)
    if shards is not None:
        manifest = _manifest(shards, root, SHARDS)
        held = (manifest.images or {}).get("train")
        if held != len(files) or len(files) != len(found):
            raise Invalid(
                f"{shards} holds {held} training images, the benchmark reads {len(files)} of "
                f"{len(found)} from {root}: shards are read whole, so time them on all of a "
                "split (--images at least its size)"
            )
        sources[SHARDS] = (shards, None, manifest)
    return sources, files, len(found)


def _manifest(out: Path, root: Path, data: str) -> Manifest:
    """The manifest of ``out``, which must be ``root`` written as ``data`` (prepared or shards)
    by :mod:`lit_alexnet.data.prepare`."""
    manifest = read_manifest(out)
    if manifest is None or (data == SHARDS and manifest.format != "shards"):
        how = " --format shards" if data == SHARDS else ""
        raise Missing(
            f"{out} is not a {data} root: write it with `python -m lit_alexnet.data.prepare "
            f"{root} {out} --split train{how}`"
        )
    return manifest


class _TrainSplit(FolderDataModule):
    """A data module reading the training split alone (the photo set has no ``val/``), from
    ``files`` where given (checked once, by the benchmark, for every loader)."""

    files: ImageList | None = None

    def check_splits(self, *splits: Literal["train", "val"]) -> None:
        if self.files is None:  # shards: checked by their module, the training split only
            super().check_splits("train")

    def image_list(self, split: Literal["train", "val"]) -> ImageList:
        assert self.files is not None  # torchvision's unused validation set gets them too
        return self.files


def train_split(kind: type[Any], root: Path, files: ImageList | None, **options: Any) -> Any:
    """A ``kind`` data module on ``root`` with ``options``, which reads the training split
    alone, from ``files`` where given (shards: None), and verifies nothing more."""
    return type(f"Bench{kind.__name__}", (_TrainSplit, kind), {"files": files})(root, **options)


def _epoch(module: FolderDataModule, images: int, to: torch.device | None = None) -> Job:
    """Reading a whole epoch of ``module``'s training loader, as a :meth:`Timer.rounds` job;
    ``to``: where to copy the batches, as training would (DataLoader batches to DALI's GPU)."""
    module.setup("fit")
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]] = module.train_dataloader()

    def read() -> int:
        count = 0
        for batch, labels in loader:
            if to is not None:
                batch, labels = batch.to(to), labels.to(to)
            count += labels.numel()
        if count != images:
            raise RuntimeError(f"{type(module).__name__} read {count} images, not {images}")
        return count

    return read


def _epochs(
    sources: Sources, images: int, batch: int, device: str, threads: list[int], workers: list[int]
) -> dict[Key, Job]:
    """An epoch of each loader configuration on each source, DALI's first."""
    gpu = torch.device("cuda", torch.cuda.current_device()) if device == "gpu" else None
    dali, loaders = {}, {}
    for data, (root, files, _) in sources.items():
        dali_kind = ShardsDataModule if files is None else DaliImageDataModule
        torch_kind = TorchShardsDataModule if files is None else ImageFolderDataModule
        for n in threads:
            options = {"device": device, "num_threads": n, "pipeline_seed": 0}
            module = train_split(dali_kind, root, files, batch_size=batch, **options)
            dali[DALI, f"{device}, {_plural(n, 'thread')}", data] = _epoch(module, images)
        for n in workers:
            module = train_split(torch_kind, root, files, batch_size=batch, num_workers=n)
            loaders[TORCHVISION, _plural(n, "worker"), data] = _epoch(module, images, gpu)
    return dali | loaders


def _others_busy() -> bool:
    """Whether a thread of this process, other than the caller, runs or waits for a core."""
    me = str(threading.get_native_id())
    try:
        tasks = [task for task in os.listdir("/proc/self/task") if task != me]
    except OSError:  # not Linux: CPU time alone must tell
        return False
    for task in tasks:
        stat = f"/proc/self/task/{task}/stat"
        # OSError, IndexError: the thread ended meanwhile.
        with contextlib.suppress(OSError, IndexError), open(stat, encoding="ascii") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "R":
                return True
    return False


def idle_since() -> float:
    """Wait until the GPU and this process's other threads are idle; the ``perf_counter``
    time they went quiet (to one poll). DALI prefetches the next epoch's first batches after
    an epoch ends: work that belongs to that epoch's round, not to the next loader's."""
    Timer.clock()  # waits for the GPU
    deadline = time.perf_counter() + _IDLE_TIMEOUT_S
    quiet_from, quiet = 0.0, 0
    while True:
        start, cpu = time.perf_counter(), time.process_time()
        time.sleep(_POLL_S)
        # The CPU time over the sleep is the other threads'; a thread waiting for a core
        # (state R) uses none yet is not done.
        if time.process_time() - cpu < 0.1 * _POLL_S and not _others_busy():
            quiet_from, quiet = (start if quiet == 0 else quiet_from), quiet + 1
            if quiet >= _QUIET_POLLS:
                return quiet_from
        else:
            quiet = 0
        if start > deadline:  # e.g. a spinning thread: report the time, late but finite
            return start


def _dataset(kind: str, root: Path, files: ImageList, split_size: int) -> dict[str, Any]:
    """What the report says of the data: counts, the mean subtracted, the images' sizes (all
    alike, or the median and the ranges)."""
    module = FolderDataModule(root)  # its defaults are both loaders' options
    stats = module.dataset_stats()
    sizes = []
    for path in files.files:
        with Image.open(path) as image:
            sizes.append(image.size)
    w, h = sorted(sizes, key=lambda size: size[0] * size[1])[len(sizes) // 2]
    widths, heights = [w for w, _ in sizes], [h for _, h in sizes]
    described = f"all {w}x{h}"
    if set(sizes) != {(w, h)}:
        described = (
            f"median {w}x{h}, widths {min(widths)}-{max(widths)}, heights "
            f"{min(heights)}-{max(heights)}"
        )
    per_pixel = stats.mean_image is not None and module.mean == "image"
    return {
        "kind": kind,
        "root": str(root),
        "images": len(files),
        "images_in_split": split_size,
        "classes": len(set(files.labels)),
        "mean": "per-pixel mean image" if per_pixel else "per-channel mean",
        "lighting_std": module.lighting_std,
        "sizes": described,
        "mean_kb": statistics.fmean(p.stat().st_size for p in files.files) / 1e3,
    }


def run_data_benchmark(
    root: str | Path,
    *,
    kind: str = "root",
    images: int | None = None,
    batch_size: int = 64,
    repeats: int = 5,
    warmup: int = 1,
    workers: Sequence[int] | None = None,
    threads: Sequence[int] | None = None,
    device: str = "auto",
    prepared: str | Path | None = None,
    shards: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time ``warmup`` untimed then ``repeats`` timed training epochs of each loader
    configuration on at most ``images`` of ``root``'s training images, evenly spread.

    ``workers``: DataLoader worker counts (default :func:`default_worker_counts`);
    ``threads``: DALI's CPU threads (default the usable cores and one more); ``device``:
    DALI's; ``prepared`` and ``shards``: the same images as ``data.prepare`` writes them,
    timed alike (shards: all of the split). Returns the report's figures: ``rows`` (each
    loader's median, min, max images per second), ``fastest`` (the index of each loader's
    fastest row on each data), DALI's ``ratio`` to the DataLoader on the raw files (best
    against best), and where the ``prepared`` and ``shards`` data came from.
    """
    cpus = usable_cpus()
    workers = list(dict.fromkeys(default_worker_counts(cpus) if workers is None else workers))
    threads = list(dict.fromkeys([cpus, cpus + 1] if threads is None else threads))
    counts = (warmup, *workers)
    sizes = (batch_size, repeats, 1 if images is None else images, *threads)
    if not (workers and threads) or min(counts) < 0 or min(sizes) < 1:
        raise ValueError(
            f"need batch_size, repeats, images and threads >= 1, warmup and workers >= 0; got "
            f"{batch_size}, {repeats}, {images}, {threads}, {warmup}, {workers}"
        )
    root, load_before = Path(root).expanduser(), report.load_average()
    dali_device = resolve_device(device)
    # One torch thread, as DataLoader workers have: with 0 workers the transforms' small ops
    # run here, and intra-op threads only add barrier waits (8x slower on a busy 2 cores).
    with report.torch_threads(1):
        torch.manual_seed(0)  # the same kind of random stream on every run
        sources, files, split_size = _sources(root, images, _path(prepared), _path(shards))
        jobs = _epochs(sources, len(files), batch_size, dali_device, threads, workers)
        named = {" ".join(key): job for key, job in jobs.items()}
        timers = Timer.rounds(named, repeats, warmup, end=idle_since, log=log)
    rows = [_row(key, timer) for key, timer in zip(jobs, timers.values(), strict=True)]
    fastest = _fastest(rows)
    raw = [rows[fastest[loader, RAW]]["images_per_s"] for loader in (DALI, TORCHVISION)]
    written = {  # where the prepared and shards data came from
        data: {"root": str(path), "quality": manifest.quality}
        for data, (path, _, manifest) in sources.items()
        if manifest is not None
    }
    return {
        "machine": report.machine_description(load_before),
        "gpu": torch.cuda.get_device_name() if dali_device == "gpu" else None,
        "gpu_present": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "dataset": _dataset(kind, root, files, split_size),
        "settings": {"batch_size": batch_size, "repeats": repeats, "warmup": warmup},
        "rows": rows,
        "fastest": fastest,
        "ratio": raw[0] / raw[1],
        **{data: written.get(data) for data in (PREPARED, SHARDS)},
    }


def _path(path: str | Path | None) -> Path | None:
    return None if path is None else Path(path).expanduser()


def _row(key: Key, timer: Timer) -> dict[str, Any]:
    figures = {"images_per_s": timer.per_s, "min": min(timer.rates), "max": max(timer.rates)}
    return {"loader": key[0], "config": key[1], "data": key[2], **figures}


def _fastest(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """The index of each loader's fastest row on each data (raw, prepared or shards)."""
    fastest: dict[tuple[str, str], int] = {}
    for i, row in enumerate(rows):
        key = row["loader"], row["data"]
        if key not in fastest or row["images_per_s"] > rows[fastest[key]]["images_per_s"]:
            fastest[key] = i
    return fastest


def ensure_prepared(root: Path, cache_dir: Path, shards: bool = False) -> Path:
    """The generated images of ``root`` at 256x256 in ``cache_dir``, written by
    :mod:`lit_alexnet.data.prepare` unless there: a folder, or shards of 4 MB (small, so that
    an epoch reads several)."""
    out = Path(cache_dir).expanduser() / f"{root.name}-{SHARDS if shards else PREPARED}"
    if read_manifest(out) is None and shards:
        prepare_shards(root, out, splits=("train",), shard_size=4.0)
    elif read_manifest(out) is None:
        prepare_folder(root, out, splits=("train",))
    return out


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def busy_machine_warning(load_before: float, cores: int) -> str | None:
    """A warning where other processes kept the machine busy before the run (the load
    average then is theirs alone): over half a core of it takes time from every loader."""
    if not load_before > 0.5:  # NaN (no load average here) never warns
        return None
    return (
        f"warning: load average {load_before:.1f} before the run on {cores} cores: other "
        "processes took CPU time from both loaders, so absolute figures are low; "
        "interleaving keeps the ratio fair"
    )


def _machine_lines(results: dict[str, Any]) -> list[str]:
    m, d, s = results["machine"], results["dataset"], results["settings"]
    gpu = "GPU: none used (DALI ran on the CPU)"
    if results["gpu"] is not None:
        gpu = (
            f"GPU: {results['gpu']} (DALI decodes with nvJPEG and augments on it; the "
            "DataLoader's batches are copied to it, as training would, inside the timing)"
        )
    elif results.get("gpu_present"):
        gpu = f"GPU: {results['gpu_present']} present but not used (DALI ran on the CPU)"
    used = "" if d["images"] == d["images_in_split"] else f" of {d['images_in_split']}"
    warmup = "no warm-up (the first epoch includes worker start-up)"
    if s["warmup"]:
        warmup = (
            f"{_plural(s['warmup'], 'untimed warm-up epoch')} (pipeline build and worker "
            "start-up not timed)"
        )
    warning = busy_machine_warning(m["load_average_1min_before"], m["usable_cores"])
    lines = report.machine_lines(
        m,
        f"torchvision {m['torchvision']}, nvidia-dali {m['nvidia-dali']}, Pillow {m['Pillow']}",
        gpu,
        f"data: {d['kind']} ({d['root']}): {d['images']}{used} training JPEGs in "
        f"{d['classes']} classes, {d['sizes']}, mean {d['mean_kb']:.0f} KB",
        f"work per image (both loaders, their data modules' train loaders): decode, shorter side "
        f"to 256, centre 256x256, {d['mean']} subtracted, random 224x224 crop, flip, PCA "
        f"lighting (std {d['lighting_std']}); float32 batches of {s['batch_size']}",
        f"timing: median of {_plural(s['repeats'], 'whole epoch')} per loader, interleaved "
        f"(order rotated each round), after {warmup}; DALI's prefetch of the next epoch "
        "counted in its own epoch; torch ops in the main process on 1 thread, as in "
        "DataLoader workers",
        *([warning] if warning else []),
    )
    for data in (PREPARED, SHARDS):
        if results[data]:
            how = " --format shards` (webdataset tars)" if data == SHARDS else "`"
            lines.append(
                f"{data}: the same images from {results[data]['root']}, written once at "
                f"256x256 (JPEG quality {results[data]['quality']}) by `python -m "
                f"lit_alexnet.data.prepare{how}: both loaders decode them and skip the resize"
            )
    return lines


def format_data_results(
    results: dict[str, Any], markdown: bool = False, command: str | None = None
) -> str:
    """The machine, data and settings, a table of the loaders; the last line is the ratio.
    ``markdown=True``: a file, with ``command`` (how the run was started) near the top."""
    fastest = results["fastest"]
    rate = {key: results["rows"][i]["images_per_s"] for key, i in fastest.items()}
    header = ("loader", "data", "config", "images/s", "min", "max", "vs best torchvision")
    rows = [
        (
            row["loader"],
            row["data"],
            row["config"] + (" (best)" if i in fastest.values() else ""),
            *(f"{row[key]:.1f}" for key in ("images_per_s", "min", "max")),
            f"{row['images_per_s'] / rate[TORCHVISION, RAW]:.2f}",
        )
        for i, row in enumerate(results["rows"])
    ]
    # Each loader's prepared/raw ratios, the prepared folder's DALI line just above the raw
    # dali/torchvision line, the last.
    order = ((TORCHVISION, PREPARED), (TORCHVISION, SHARDS), (DALI, SHARDS), (DALI, PREPARED))
    ratios = [
        f"{loader} {data}/raw images-per-second ratio: {rate[loader, data] / rate[loader, RAW]:.2f}"
        for loader, data in order
        if (loader, data) in rate
    ]
    ratios.append(f"dali/torchvision images-per-second ratio: {results['ratio']:.2f}")
    lines, body = _machine_lines(results), [*report.table(header, rows, markdown, 3), "", *ratios]
    if markdown:
        return report.document("lit_alexnet data benchmark", command, lines, body)
    return "\n".join([*lines, "", *body])
