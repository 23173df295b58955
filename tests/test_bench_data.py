"""The data benchmark: the photo-like JPEG folder, the idle wait and the CLI on tiny settings."""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lit_alexnet.bench import data as bench_data
from lit_alexnet.bench import photos
from lit_alexnet.bench.__main__ import main
from lit_alexnet.bench.data import default_worker_counts, run_data_benchmark
from lit_alexnet.bench.photos import PHOTO_SIZE, ensure_photo_dataset, photo_dirname, render_photo
from lit_alexnet.bench.timing import Timer
from lit_alexnet.checks import Invalid, Missing
from lit_alexnet.data.folders import scan_split
from lit_alexnet.data.formats import STATS_FILENAME, DatasetStats

RATIO_LINE = re.compile(r"^dali/torchvision images-per-second ratio: (\d+\.\d\d)$")
PREPARED_LINE = re.compile(r"^dali prepared/raw images-per-second ratio: (\d+\.\d\d)$")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("LIT_ALEXNET_CACHE", str(path))
    return path


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.jpg"))}


# ----------------------------------------------------------------------------- photo folder


def test_photo_folder_is_deterministic_jpegs_of_the_stated_size(tmp_path: Path) -> None:
    first = ensure_photo_dataset(tmp_path / "a", 12)
    second = ensure_photo_dataset(tmp_path / "b", 12)
    assert first.name == photo_dirname(12) == "bench-photo-n12-v1"
    files = _files(first)
    assert files == _files(second)  # byte-identical, whichever thread drew which image
    assert len(files) == 12
    assert len(set(files.values())) == 12  # every image its own
    # ImageFolder layout: train/<class>/*.jpg, image i in class i % 10.
    images = scan_split(first, "train")
    assert images.classes == tuple(f"c{i:02d}" for i in range(10))
    assert sorted(images.labels) == sorted(i % 10 for i in range(12))
    for path in images.files:
        with Image.open(path) as image:
            assert image.format == "JPEG"
            assert image.size == PHOTO_SIZE == (500, 375)
            assert image.mode == "RGB"
        assert 30_000 < path.stat().st_size < 200_000  # photo-like detail, not flat colour
    # The mean image is there, so both loaders subtract it as for a real dataset.
    stats = DatasetStats.load(first / STATS_FILENAME)
    assert stats.mean_image is not None
    assert stats.mean_image.shape == (256, 256, 3)
    assert not list(tmp_path.glob("*/.*tmp*"))  # no temporary folder left


def test_photo_folder_is_generated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = ensure_photo_dataset(tmp_path, 3)
    before = _files(root)

    def fail(tmp: Path, images: int) -> None:
        raise AssertionError("generated again")

    monkeypatch.setattr(photos, "_generate_photos", fail)
    assert ensure_photo_dataset(tmp_path, 3) == root
    assert _files(root) == before


def test_photos_have_colour_structure() -> None:
    with Image.open(io.BytesIO(render_photo(5))) as image:
        pixels = np.asarray(image.convert("RGB"), np.float32)
    assert pixels.std() > 30  # spread over the range, not one colour
    assert np.abs(np.diff(pixels, axis=1)).mean() > 3  # fine detail for the decoder to work on


# ----------------------------------------------------------------------------- helpers


def test_default_worker_counts() -> None:
    assert default_worker_counts(1) == [0, 1, 2]
    assert default_worker_counts(2) == [0, 1, 2, 3]
    assert default_worker_counts(6) == [0, 1, 2, 4, 6, 7]
    assert default_worker_counts(16) == [0, 1, 2, 4, 8, 16, 17]


def test_subset_is_evenly_spread(tmp_path: Path) -> None:
    images = scan_split(ensure_photo_dataset(tmp_path, 20), "train")
    subset = bench_data._subset(images, 10)
    assert len(subset) == 10
    assert set(subset.files) <= set(images.files)
    assert len(set(subset.labels)) >= 5  # not the first class or two only
    assert bench_data._subset(images, None) is images
    assert bench_data._subset(images, 50) is images


def test_timed_rounds_take_turns_in_rotated_order_after_untimed_warmup() -> None:
    order: list[str] = []

    def job(name: str, items: int) -> Callable[[], int]:
        def run() -> int:
            order.append(name)
            time.sleep(0.02)
            return items

        return run

    timers = Timer.rounds({"a": job("a", 2), "b": job("b", 4)}, rounds=3, warmup=1)
    assert order == ["b", "a", "a", "b", "b", "a", "a", "b"]  # warm-up round first
    a, b = timers["a"], timers["b"]
    assert len(a.seconds) == 3 and a.items == [2, 2, 2] and b.items == [4, 4, 4]
    assert 0.02 <= a.min_s <= a.median_s < 1.0
    assert a.per_s == pytest.approx(2 / a.median_s)
    assert a.rates == pytest.approx([2 / s for s in a.seconds])
    with pytest.raises(RuntimeError, match="without a start"):
        a.stop()


def test_idle_wait_counts_background_work() -> None:
    assert bench_data.idle_since() - time.perf_counter() < 1.0
    done = threading.Event()

    def spin() -> None:
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            pass
        done.set()

    start = time.perf_counter()
    threading.Thread(target=spin).start()
    quiet = bench_data.idle_since()
    assert done.is_set()
    assert quiet - start >= 0.25  # waited for the thread, and dated the quiet after it


# ----------------------------------------------------------------------------- benchmark


@pytest.mark.dali
def test_cli_prints_both_loaders_and_the_ratio_last(
    cache: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "out" / "data.md"
    argv = [
        "data", "--kind", "photo", "--images", "6", "--batch-size", "4", "--repeats", "2",
        "--warmup", "0", "--workers", "0", "--device", "cpu", "--threads", "1",
        "--output", str(report),
    ]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    match, prepared_match = RATIO_LINE.match(lines[-1]), PREPARED_LINE.match(lines[-2])
    assert match and prepared_match, lines[-2:]
    ratio, prepared_ratio = float(match.group(1)), float(prepared_match.group(1))
    assert (cache / photo_dirname(6) / "train").is_dir()  # generated into LIT_ALEXNET_CACHE
    # ... and prepared there once, at 256x256.
    prepared = cache / f"{photo_dirname(6)}-prepared" / "train"
    raw = cache / photo_dirname(6) / "train"
    assert sorted(p.relative_to(prepared) for p in prepared.rglob("*.jpg")) == sorted(
        p.relative_to(raw) for p in raw.rglob("*.jpg")
    )

    rows = {
        tuple(line.split()[:2]): line
        for line in lines
        if line.startswith(("dali ", "torchvision ")) and "ratio" not in line
    }
    assert set(rows) == {
        (loader, data)
        for loader in ("dali", "torchvision")
        for data in ("raw", "prepared", "shards")
    }
    assert "cpu, 1 thread (best)" in rows["dali", "prepared"]
    assert "0 workers (best)" in rows["torchvision", "raw"]
    # The first decimal number in a row is its median images/s.
    rate = {key: float(re.findall(r"\d+\.\d+", row)[0]) for key, row in rows.items()}
    assert all(r > 0 for r in rate.values())
    assert ratio == pytest.approx(rate["dali", "raw"] / rate["torchvision", "raw"], abs=0.02)
    dali_prepared = rate["dali", "prepared"] / rate["dali", "raw"]
    assert prepared_ratio == pytest.approx(dali_prepared, abs=0.02)
    shards_line = next(line for line in lines if line.startswith("dali shards/raw"))
    shards_ratio = float(shards_line.rsplit(" ", 1)[1])
    assert shards_ratio == pytest.approx(rate["dali", "shards"] / rate["dali", "raw"], abs=0.02)
    assert (cache / f"{photo_dirname(6)}-shards" / "train-000000.tar").is_file()
    assert "6 training JPEGs in 6 classes, all 500x375" in "\n".join(lines)
    assert "GPU: none used" in "\n".join(lines)

    text = report.read_text()
    assert text.splitlines()[-1] == lines[-1]
    assert "python -m lit_alexnet.bench data --kind photo --images 6" in text
    assert "| dali | raw | cpu, 1 thread (best) |" in text
    assert "| torchvision | prepared | 0 workers (best) |" in text


@pytest.mark.dali
def test_benchmark_reads_a_root_subset(tmp_path: Path) -> None:
    root = ensure_photo_dataset(tmp_path, 8)
    results = run_data_benchmark(
        root, images=5, batch_size=2, repeats=1, warmup=1, workers=[0, 0], device="cpu", threads=[1]
    )
    dataset = results["dataset"]
    assert (dataset["images"], dataset["images_in_split"]) == (5, 8)
    assert dataset["mean"] == "per-pixel mean image"
    assert [(r["loader"], r["config"], r["data"]) for r in results["rows"]] == [
        ("dali", "cpu, 1 thread", "raw"),
        ("torchvision", "0 workers", "raw"),  # a repeated count is tried once
    ]
    assert results["prepared"] is None
    rates = [r["images_per_s"] for r in results["rows"]]
    assert all(rate > 0 for rate in rates)
    assert results["ratio"] == pytest.approx(rates[0] / rates[1])
    assert results["gpu"] is None


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="repeats"):
        run_data_benchmark(tmp_path, repeats=0)
    with pytest.raises(SystemExit):
        main(["data", "--workers", "1,-2"])


@pytest.mark.dali
def test_a_prepared_root_must_hold_the_same_images(tmp_path: Path) -> None:
    root = ensure_photo_dataset(tmp_path, 4)
    settings = {"batch_size": 2, "repeats": 1, "warmup": 0, "workers": [0], "threads": [1]}
    with pytest.raises(Missing, match="is not a prepared root: write it with"):
        run_data_benchmark(root, device="cpu", prepared=tmp_path / "nothing", **settings)
    prepared = bench_data.ensure_prepared(root, tmp_path)
    next((prepared / "train").rglob("*.jpg")).unlink()
    with pytest.raises(Missing, match="the prepared copy of an image of"):
        run_data_benchmark(root, device="cpu", prepared=prepared, **settings)


@pytest.mark.dali
def test_shards_are_timed_on_a_whole_split_only(tmp_path: Path) -> None:
    root = ensure_photo_dataset(tmp_path, 4)
    shards = bench_data.ensure_prepared(root, tmp_path, shards=True)
    settings = {"batch_size": 2, "repeats": 1, "warmup": 0, "workers": [0], "threads": [1]}
    with pytest.raises(Invalid, match="holds 4 training images, the benchmark reads 3 of 4"):
        run_data_benchmark(root, device="cpu", images=3, shards=shards, **settings)
    with pytest.raises(Missing, match="is not a shards root"):
        run_data_benchmark(root, device="cpu", shards=root, **settings)


def test_only_other_processes_busy_before_the_run_give_a_warning() -> None:
    # The benchmark itself runs more threads than cores; only the load before it counts.
    assert bench_data.busy_machine_warning(0.2, 2) is None
    assert bench_data.busy_machine_warning(float("nan"), 2) is None
    warning = bench_data.busy_machine_warning(1.6, 2)
    assert warning is not None and warning.startswith("warning: load average 1.6 before the run")
