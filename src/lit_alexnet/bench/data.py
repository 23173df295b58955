"""Benchmark for the data path: images per second of the DALI pipeline against torchvision's.

Both loaders read the same JPEG files and do the same training augmentation of section 4.1
through the two data modules' train loaders: decode, shorter side to 256, centre 256x256,
mean subtraction, random 224x224 crop, horizontal flip and PCA lighting. DALI's pipeline (on
the GPU where there is one, unless told otherwise) is tried with several CPU thread counts and
torchvision's DataLoader with several worker counts; the ratio is best against best. Both get
one more than the cores: DALI's threads and the workers both wait on file reads and hand-offs.

Each timed round is one whole epoch of one loader, so no loader carries unfinished work into
another's round (a DALI reader cannot stop mid-epoch, and a DataLoader left mid-epoch keeps its
workers busy). What a loader starts in the background at the end of its epoch (DALI prefetches
the next epoch's first batches) is waited for and counted in its own round. Rounds are taken in
turn, DALI and every DataLoader configuration, with the order rotated each repetition, so
drifts in machine load hit all of them alike; the figures are medians over the repetitions.
Building pipelines, starting workers and a warm-up epoch per loader are not timed.

The JPEG folder is a dataset root (``train/<class>/*.jpg``), the built-in generated dataset
(small shapes, 240-360 px) or generated "photo-like" images of ImageNet's typical 500x375,
whose decoding costs about what real photos' does. Every configuration is also timed, in the
same rounds, on the same images prepared once at 256x256 (:mod:`lit_alexnet.data.prepare`),
where both loaders skip the resize: the prepared/raw ratios say what that step saves.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image

from lit_alexnet.bench.model import machine_description
from lit_alexnet.checks import Invalid, Missing
from lit_alexnet.data.base import FolderDataModule
from lit_alexnet.data.dali import DaliImageDataModule, resolve_device
from lit_alexnet.data.folders import ImageList, scan_split
from lit_alexnet.data.parallel import usable_cpus
from lit_alexnet.data.prepare import (
    prepare_folder,
    prepare_shards,
    prepared_path,
    read_manifest,
)
from lit_alexnet.data.shards import ShardsDataModule, TorchShardsDataModule
from lit_alexnet.data.torchvision import ImageFolderDataModule, ImageListDataset
from lit_alexnet.data.transforms import train_transform
from lit_alexnet.data.verify import check_image_list

__all__ = [
    "KINDS",
    "default_worker_counts",
    "ensure_prepared",
    "ensure_shards",
    "format_data_results",
    "run_data_benchmark",
]

Kind = Literal["builtin", "photo"]
KINDS: tuple[Kind, ...] = ("builtin", "photo")

DALI = "dali"
TORCHVISION = "torchvision"
RAW = "raw"
PREPARED = "prepared"
SHARDS = "shards"
# How the end of a loader's background work is detected: this many quiet polls in a row.
_POLL_S = 0.01
_QUIET_POLLS = 2
_IDLE_TIMEOUT_S = 10.0


def default_worker_counts(cpus: int | None = None) -> list[int]:
    """0, 1, 2, 4, ... up to the usable cores, the core count itself, and one more."""
    cpus = usable_cpus() if cpus is None else cpus
    counts = [0]
    step = 1
    while step <= cpus:
        counts.append(step)
        step *= 2
    return list(dict.fromkeys([*counts, cpus, cpus + 1]))


def default_thread_counts(cpus: int | None = None) -> list[int]:
    """DALI CPU threads to try: the usable cores, and one more."""
    cpus = usable_cpus() if cpus is None else cpus
    return [cpus, cpus + 1]


# ----------------------------------------------------------------------------- loaders


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


def _train_files(root: Path, limit: int | None) -> tuple[ImageList, int]:
    """The checked training files both loaders read, and how many the split holds.

    Scanned and checked once for all loaders, and only the subset checked: checking every file
    of ImageNet's 1.28 million would take longer than the benchmark.
    """
    found = scan_split(root, "train")
    checked = check_image_list(
        _subset(found, limit), mode="fast", on_bad="skip", what=f"{root}/train"
    )
    return checked, len(found)


class _TorchvisionTrain(ImageFolderDataModule):
    """The torchvision module on given training files; no ``val`` split needed."""

    def __init__(self, root: Path, files: ImageList, **kwargs: Any) -> None:
        super().__init__(root, verify="off", **kwargs)
        self.files = files

    def image_list(self, split: Literal["train", "val"]) -> ImageList:
        return _train_only(self.files, split)

    def setup(self, stage: str) -> None:
        # ImageFolderDataModule's training set alone: its own setup also reads root/val.
        stats = self.dataset_stats()
        transform = train_transform(stats, mean=self.mean, lighting_std=self.lighting_std)
        self.datasets["train"] = ImageListDataset(self.image_list("train"), transform)


class _DaliTrain(DaliImageDataModule):
    """The DALI module on given training files."""

    def __init__(self, root: Path, files: ImageList, **kwargs: Any) -> None:
        super().__init__(root, verify="off", **kwargs)
        self.files = files

    def image_list(self, split: Literal["train", "val"]) -> ImageList:
        return _train_only(self.files, split)

    def check_splits(self, *splits: Literal["train", "val"]) -> None:
        # The files were checked when the benchmark chose them, and it has no val split.
        pass


def _train_only(files: ImageList, split: str) -> ImageList:
    if split != "train":
        raise ValueError(f"the data benchmark reads the training split only, not {split!r}")
    return files


@dataclass
class _Entry:
    """One loader configuration and the rates it reached."""

    loader: str
    config: str
    data: str
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
    to_device: torch.device | None = None
    rates: list[float] = field(default_factory=list)


def _busy_threads() -> int:
    """Threads of this process, other than the caller, running or waiting for a core."""
    me = threading.get_native_id()
    busy = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:  # not Linux: CPU time alone must tell
        return 0
    for task in tasks:
        if int(task) == me:
            continue
        try:
            with open(f"/proc/self/task/{task}/stat", encoding="ascii") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # the thread ended meanwhile
        busy += state == "R"
    return busy


def _idle_since(cuda: bool) -> float:
    """Wait until this process's background threads are idle; the ``perf_counter`` time they
    went quiet (to one poll). DALI prefetches the next epoch's first batches on its own threads
    after an epoch ends: that work belongs to its round, not to the next loader's."""
    if cuda:
        torch.cuda.synchronize()
    deadline = time.perf_counter() + _IDLE_TIMEOUT_S
    quiet_from, quiet = 0.0, 0
    while True:
        start, cpu = time.perf_counter(), time.process_time()
        time.sleep(_POLL_S)
        # The process's CPU time over the sleep is its other threads' alone; a thread that
        # waits for a core (state R) uses none yet is not done.
        used = time.process_time() - cpu
        if used < 0.1 * _POLL_S and _busy_threads() == 0:
            quiet_from = start if quiet == 0 else quiet_from
            quiet += 1
            if quiet >= _QUIET_POLLS:
                return quiet_from
        else:
            quiet = 0
        if start > deadline:  # e.g. a spinning thread: report the time, late but finite
            return start


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _epoch(entry: _Entry, cuda: bool) -> tuple[int, float]:
    """Read one whole epoch; (images, seconds up to the end of its background work)."""
    count = 0
    start = time.perf_counter()
    for images, labels in entry.batches:
        if entry.to_device is not None:  # where training would use them, as DALI's are
            images = images.to(entry.to_device)
            labels = labels.to(entry.to_device)
        count += labels.numel()
    return count, _idle_since(cuda) - start


def _image_sizes(files: Sequence[Path]) -> dict[str, Any]:
    """Pixel sizes and file sizes of the images, from their headers."""
    sizes = []
    for path in files:
        with Image.open(path) as image:
            sizes.append(image.size)
    areas = sorted(range(len(sizes)), key=lambda i: sizes[i][0] * sizes[i][1])
    widths = [w for w, _ in sizes]
    heights = [h for _, h in sizes]
    return {
        "median": sizes[areas[len(areas) // 2]],
        "width_range": (min(widths), max(widths)),
        "height_range": (min(heights), max(heights)),
        "mean_kb": statistics.fmean(p.stat().st_size for p in files) / 1e3,
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
    """Time training epochs of DALI and of torchvision's DataLoader on ``root``, interleaved.

    Args:
        root: a dataset root with ``train/<class>/*``; ``stats.npz`` beside it is used.
        kind: what the root is (``"root"``, ``"builtin"``, ``"photo"``), for the report.
        images: read at most this many training images per epoch, evenly spread over the
            split (``None``: all).
        batch_size: images per batch for both loaders.
        repeats: timed epochs per loader configuration, taken in turn.
        warmup: untimed epochs per configuration first (worker start-up, first allocations).
        workers: DataLoader worker counts to try (default :func:`default_worker_counts`).
        threads: DALI CPU thread counts to try (default :func:`default_thread_counts`).
        device: DALI's ``"auto"``, ``"gpu"`` or ``"cpu"``.
        prepared: the same root as written by :mod:`lit_alexnet.data.prepare` (256x256, no
            resize in either loader): every configuration is also timed on it, in the same
            rounds.
        shards: the same images as webdataset shards (``prepare --format shards``), timed
            alike; they must hold exactly the images read from ``root``.
        log: called with a line of progress now and then.

    Returns:
        ``{"machine", "versions", "gpu" (the one DALI used, or None), "gpu_present",
        "dali_device", "dataset", "settings", "rows", "best", "best_dali", "ratio",
        "prepared", "shards"}``; each row is ``{"loader", "config", "data" ("raw",
        "prepared" or "shards"), "images_per_s" (median), "min", "max", "all"}``, ``best``
        and ``best_dali`` the indices of the fastest DataLoader and DALI rows on the raw
        files, ``ratio`` DALI's images per second over the DataLoader's; ``"prepared"`` and
        ``"shards"`` (None where not given) hold ``{"root", "quality", "best", "best_dali",
        "dali_ratio", "torchvision_ratio"}``: the fastest rows on that data and each loader's
        images per second there over its own on the raw files.
    """
    if batch_size < 1 or repeats < 1 or warmup < 0 or (images is not None and images < 1):
        raise ValueError(
            f"need batch_size >= 1, repeats >= 1, warmup >= 0, images >= 1; got {batch_size}, "
            f"{repeats}, {warmup}, {images}"
        )
    workers = list(dict.fromkeys(default_worker_counts() if workers is None else workers))
    if not workers or min(workers) < 0:
        raise ValueError(f"workers={workers!r}: give one or more counts >= 0")
    threads = list(dict.fromkeys(default_thread_counts() if threads is None else threads))
    if not threads or min(threads) < 1:
        raise ValueError(f"threads={threads!r}: give one or more counts >= 1")
    root = Path(root).expanduser()
    load_before = machine_description()["load_average_1min"]
    dali_device = resolve_device(device)
    cuda = dali_device == "gpu"
    gpu = torch.device("cuda", torch.cuda.current_device()) if cuda else None

    # One torch thread, as DataLoader workers have: with 0 workers the transforms' small ops
    # run here, and intra-op threads only add barrier waits to them (8x slower on a busy
    # 2-core machine). DALI's threads are its own.
    with _torch_threads(1):
        # Fixed seeds: both loaders see the same kind of random stream on every run.
        torch.manual_seed(0)
        files, split_size = _train_files(root, images)
        roots = {RAW: (root, files)}
        if prepared is not None:
            prepared = Path(prepared).expanduser()
            roots[PREPARED] = (prepared, _same_files(files, root, prepared))
        if shards is not None:
            shards = Path(shards).expanduser()
            _check_shards(shards, root, len(files), split_size)
        dali_modules = {
            (data, count): _DaliTrain(
                data_root,
                data_files,
                batch_size=batch_size,
                device=dali_device,
                num_threads=count,
                pipeline_seed=0,
            )
            for data, (data_root, data_files) in roots.items()
            for count in threads
        }
        entries = [
            _Entry(DALI, f"{dali_device}, {_plural(count, 'thread')}", data, _train_loader(module))
            for (data, count), module in dali_modules.items()
        ]
        entries += [
            _Entry(
                TORCHVISION,
                _plural(count, "worker"),
                data,
                _train_loader(
                    _TorchvisionTrain(
                        data_root, data_files, batch_size=batch_size, num_workers=count
                    )
                ),
                gpu,
            )
            for data, (data_root, data_files) in roots.items()
            for count in workers
        ]
        if shards is not None:
            entries += _shard_entries(shards, batch_size, dali_device, threads, workers, gpu)
        # DALI first, then the DataLoader, as the table reads.
        entries.sort(key=lambda entry: entry.loader != DALI)
        _time_rounds(entries, len(files), repeats, warmup, cuda, log or (lambda line: None))
    machine = machine_description()
    machine["load_average_1min_before"] = load_before
    rows = [_row(entry) for entry in entries]
    best, best_dali = _best(rows, TORCHVISION, RAW), _best(rows, DALI, RAW)
    dali = dali_modules[RAW, threads[0]]
    stats = dali.dataset_stats()
    return {
        "machine": machine,
        "versions": _versions(),
        "gpu": torch.cuda.get_device_name(gpu) if gpu is not None else None,
        "gpu_present": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "dali_device": dali_device,
        "dataset": {
            "kind": kind,
            "root": str(root),
            "images": len(files),
            "images_in_split": split_size,
            "classes": len(set(files.labels)),
            "mean": "per-pixel mean image"
            if stats.mean_image is not None and dali.mean == "image"
            else "per-channel mean",
            "stats": stats.source,
            **_image_sizes(files.files),
        },
        "settings": {
            "batch_size": batch_size,
            "repeats": repeats,
            "warmup": warmup,
            "workers": workers,
            "threads": threads,
            "device": device,
            "lighting_std": dali.lighting_std,
        },
        "rows": rows,
        "best": best,
        "best_dali": best_dali,
        "ratio": rows[best_dali]["images_per_s"] / rows[best]["images_per_s"],
        "prepared": None
        if prepared is None
        else _summary(rows, best, best_dali, PREPARED, prepared),
        "shards": None if shards is None else _summary(rows, best, best_dali, SHARDS, shards),
    }


def ensure_prepared(root: Path, cache_dir: Path) -> Path:
    """The prepared version of the generated training images in ``root``, written into
    ``cache_dir`` by :func:`~lit_alexnet.data.prepare.prepare_folder` unless it is there."""
    prepared = Path(cache_dir).expanduser() / f"{root.name}-prepared"
    if read_manifest(prepared) is None:
        prepare_folder(root, prepared, splits=("train",))
    return prepared


def _same_files(files: ImageList, root: Path, prepared: Path) -> ImageList:
    """The prepared root's copies of ``files``, which the prepared root must hold."""
    if read_manifest(prepared) is None:
        raise Missing(
            f"{prepared} is not a prepared root: write it with `python -m "
            f"lit_alexnet.data.prepare {root} {prepared} --split train`"
        )
    copies = [prepared_path(f, root / "train", prepared / "train") for f in files.files]
    missing = [path for path in copies if not path.is_file()]
    if missing:
        raise Missing(f"{prepared} lacks {missing[0]}, the prepared copy of an image of {root}")
    return ImageList(tuple(copies), files.labels, files.classes)


def ensure_shards(root: Path, cache_dir: Path, shard_size: float = 4.0) -> Path:
    """:func:`ensure_prepared` as webdataset shards of ``shard_size`` MB (small, so that a
    benchmark epoch reads several)."""
    shards = Path(cache_dir).expanduser() / f"{root.name}-shards"
    if read_manifest(shards) is None:
        prepare_shards(root, shards, splits=("train",), shard_size=shard_size)
    return shards


def _check_shards(shards: Path, root: Path, images: int, split_size: int) -> None:
    manifest = read_manifest(shards)
    if manifest is None or manifest.format != "shards":
        raise Missing(
            f"{shards} is not a shards root: write it with `python -m lit_alexnet.data.prepare "
            f"{root} {shards} --split train --format shards`"
        )
    held = (manifest.images or {}).get("train")
    if held != images or images != split_size:
        raise Invalid(
            f"{shards} holds {held} training images, the benchmark reads {images} of "
            f"{split_size} from {root}: shards are read whole, so time them on all of a "
            "split (--images at least its size)"
        )


class _DaliShardsTrain(ShardsDataModule):
    """The DALI shards module, training split only."""

    def check_splits(self, *splits: Literal["train", "val"]) -> None:
        super().check_splits(*(split for split in splits if split == "train"))


class _TorchvisionShardsTrain(TorchShardsDataModule):
    """The torchvision shards module, training split only."""

    def check_splits(self, *splits: Literal["train", "val"]) -> None:
        super().check_splits(*(split for split in splits if split == "train"))


def _shard_entries(
    shards: Path,
    batch_size: int,
    device: Literal["gpu", "cpu"],
    threads: Sequence[int],
    workers: Sequence[int],
    gpu: torch.device | None,
) -> list[_Entry]:
    dali = [
        _Entry(
            DALI,
            f"{device}, {_plural(count, 'thread')}",
            SHARDS,
            _train_loader(
                _DaliShardsTrain(
                    shards, batch_size, device=device, num_threads=count, pipeline_seed=0
                )
            ),
        )
        for count in threads
    ]
    return dali + [
        _Entry(
            TORCHVISION,
            _plural(count, "worker"),
            SHARDS,
            _train_loader(_TorchvisionShardsTrain(shards, batch_size, num_workers=count)),
            gpu,
        )
        for count in workers
    ]


def _summary(
    rows: Sequence[dict[str, Any]], best: int, best_dali: int, data: str, root: Path
) -> dict[str, Any]:
    """The fastest rows on ``data`` (prepared or shards) and their ratios to the raw files'."""
    on_data = _best(rows, TORCHVISION, data), _best(rows, DALI, data)
    rate = [rows[i]["images_per_s"] for i in (best, best_dali, *on_data)]
    manifest = read_manifest(root)
    return {
        "root": str(root),
        "quality": None if manifest is None else manifest.quality,
        "best": on_data[0],
        "best_dali": on_data[1],
        "torchvision_ratio": rate[2] / rate[0],
        "dali_ratio": rate[3] / rate[1],
    }


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _train_loader(module: FolderDataModule) -> Iterable[Any]:
    module.setup("fit")
    return module.train_dataloader()


def _time_rounds(
    entries: Sequence[_Entry],
    images: int,
    repeats: int,
    warmup: int,
    cuda: bool,
    say: Callable[[str], None],
) -> None:
    """Warm every loader up, then time ``repeats`` epochs of each in rotating turns."""
    for entry in entries:
        for _ in range(warmup):
            _epoch(entry, cuda)
        say(f"warmed up {entry.loader} ({entry.config})")
    for rep in range(repeats):
        # Rotated, so no configuration always follows the same one.
        shift = rep % len(entries)
        for entry in [*entries[shift:], *entries[:shift]]:
            count, seconds = _epoch(entry, cuda)
            if count != images:
                raise RuntimeError(f"{entry.loader} read {count} images, not {images}")
            entry.rates.append(count / seconds)
        say(
            f"round {rep + 1}/{repeats}: "
            + ", ".join(f"{e.loader} {e.config} {e.rates[-1]:.1f}/s" for e in entries)
        )


def _row(entry: _Entry) -> dict[str, Any]:
    rates = entry.rates
    return {
        "loader": entry.loader,
        "config": entry.config,
        "data": entry.data,
        "images_per_s": statistics.median(rates),
        "min": min(rates),
        "max": max(rates),
        "all": rates,
    }


def _best(rows: Sequence[dict[str, Any]], loader: str, data: str) -> int:
    """The index of ``loader``'s fastest row on ``data`` (raw or prepared)."""
    indices = [i for i, row in enumerate(rows) if (row["loader"], row["data"]) == (loader, data)]
    return max(indices, key=lambda i: rows[i]["images_per_s"])


def _versions() -> dict[str, str]:
    import PIL
    import torchvision
    from PIL import features

    try:
        from nvidia import dali

        dali_version = str(dali.__version__)
    except ImportError:
        dali_version = "absent"
    turbo = features.version("libjpeg_turbo") if features.check_feature("libjpeg_turbo") else None
    return {
        "torchvision": torchvision.__version__,
        "nvidia-dali": dali_version,
        "Pillow": PIL.__version__ + (f" (libjpeg-turbo {turbo})" if turbo else ""),
    }


# ----------------------------------------------------------------------------- report


def busy_machine_warning(load_before: float, cores: int) -> str | None:
    """A warning where other processes kept the machine busy before the run began: the load
    average then is theirs alone (the benchmark's threads join it after), and over half a
    core of it takes time from every loader."""
    if not load_before > 0.5:  # NaN (no load average here) never warns
        return None
    return (
        f"warning: load average {load_before:.1f} before the run on {cores} cores: other "
        "processes took CPU time from both loaders, so absolute figures are low; "
        "interleaving keeps the ratio fair"
    )


def format_data_results(
    results: dict[str, Any], markdown: bool = False, command: str | None = None
) -> str:
    """The machine, data and settings, a table of the loaders; the last line is the ratio.

    With ``markdown=True``: bullet lists and a markdown table, for writing to a file, with
    ``command`` (how the run was started) near the top.
    """
    m, d, s, v = results["machine"], results["dataset"], results["settings"], results["versions"]
    load_before = m.get("load_average_1min_before", float("nan"))  # NaN: never warns
    (w, h), (w0, w1), (h0, h1) = d["median"], d["width_range"], d["height_range"]
    sizes = f"all {w}x{h}"
    if (w0, w1, h0, h1) != (w, w, h, h):
        sizes = f"median {w}x{h}, widths {w0}-{w1}, heights {h0}-{h1}"
    if results["gpu"] is None:
        present = results.get("gpu_present")
        gpu = "GPU: none used (DALI ran on the CPU)"
        if present:
            gpu = f"GPU: {present} present but not used (DALI ran on the CPU: --device cpu)"
    else:
        gpu = (
            f"GPU: {results['gpu']} (DALI decodes with nvJPEG and augments on it; the "
            "DataLoader's batches are copied to it, as training would, inside the timing)"
        )
    used = "" if d["images"] == d["images_in_split"] else f" of {d['images_in_split']}"
    if s["warmup"]:
        warmup = (
            f"{s['warmup']} untimed warm-up epoch{'s' if s['warmup'] != 1 else ''} (pipeline "
            "build and worker start-up not timed)"
        )
    else:
        warmup = "no warm-up (the first epoch includes worker start-up)"
    machine = [
        f"CPU: {m['cpu']} ({m['usable_cores']} usable of {m['logical_cores']} logical cores)",
        f"CPU kernels: {m['cpu_kernels']}; bfloat16 native: {'yes' if m['native_bf16'] else 'no'}",
        f"torch {m['torch']}, torchvision {v['torchvision']}, nvidia-dali {v['nvidia-dali']}, "
        f"Pillow {v['Pillow']}, Python {m['python']}; 1-min load average {load_before:.2f} "
        f"before, {m['load_average_1min']:.2f} after",
        gpu,
        f"data: {d['kind']} ({d['root']}): {d['images']}{used} training JPEGs in "
        f"{d['classes']} classes, {sizes}, mean {d['mean_kb']:.0f} KB",
        f"work per image (both loaders, their data modules' train loaders): decode, shorter side "
        f"to 256, centre 256x256, {d['mean']} subtracted, random 224x224 crop, flip, PCA "
        f"lighting (std {s['lighting_std']}); float32 batches of {s['batch_size']}",
        f"timing: median of {s['repeats']} whole epoch{'s' if s['repeats'] != 1 else ''} per "
        f"loader, interleaved (order rotated each round), after {warmup}; DALI's prefetch of "
        "the next epoch counted in its own epoch; torch ops in the main process on 1 thread, "
        "as in DataLoader workers",
    ]
    warning = busy_machine_warning(load_before, m["usable_cores"])
    if warning is not None:
        machine.append(warning)
    bests = {results["best"], results["best_dali"]}
    others = {data: results[data] for data in (PREPARED, SHARDS) if results.get(data)}
    for data, other in others.items():
        bests |= {other["best"], other["best_dali"]}
        how = " --format shards` (webdataset tars)" if data == SHARDS else "`"
        machine.append(
            f"{data}: the same images from {other['root']}, written once at 256x256 "
            f"(JPEG quality {other['quality']}) by `python -m lit_alexnet.data.prepare{how}: "
            "both loaders decode them and skip the resize"
        )
    best = results["rows"][results["best"]]["images_per_s"]
    header = ("loader", "data", "config", "images/s", "min", "max", "vs best torchvision")
    rows = [
        (
            row["loader"],
            row["data"],
            row["config"] + (" (best)" if i in bests else ""),
            f"{row['images_per_s']:.1f}",
            f"{row['min']:.1f}",
            f"{row['max']:.1f}",
            f"{row['images_per_s'] / best:.2f}",
        )
        for i, row in enumerate(results["rows"])
    ]
    ratios = [
        f"{loader} {data}/raw images-per-second ratio: {other[f'{loader}_ratio']:.2f}"
        for data, other in others.items()
        for loader in (TORCHVISION, DALI)
    ]
    # The prepared folder's DALI line just above the raw dali/torchvision line, the last.
    ratios.sort(key=lambda line: line.startswith(f"{DALI} {PREPARED}/"))
    summary = "\n".join(
        [*ratios, f"dali/torchvision images-per-second ratio: {results['ratio']:.2f}"]
    )
    if markdown:
        lines = ["# lit_alexnet data benchmark", ""]
        if command is not None:
            lines += ["```", command, "```", ""]
        lines += [f"- {line}" for line in machine] + [""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|---|---|---|" + "|".join(["---:"] * (len(header) - 3)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join([*lines, "", summary]) + "\n"
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    table = [
        "  ".join(
            cell.ljust(widths[i]) if i < 3 else cell.rjust(widths[i]) for i, cell in enumerate(r)
        )
        for r in [header, *rows]
    ]
    return "\n".join([*machine, "", *table, "", summary])
