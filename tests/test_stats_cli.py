"""Computing a folder dataset's statistics: lit_alexnet.data.dataset_stats and its command,
python -m lit_alexnet.stats."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision import transforms

from lit_alexnet.data.builtin import BuiltinSpec
from lit_alexnet.data.dataset_stats import compute_folder_stats
from lit_alexnet.data.formats import STATS_FILENAME, DatasetStats

# Wider, taller and square images, so both resize branches and the centre crop's rounding run.
SIZES = [(300, 260), (260, 301), (256, 256), (283, 270), (270, 333)]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate(SIZES):
        # Smooth colour gradients plus noise: channels that are correlated but not identical.
        ys, xs = np.mgrid[0:h, 0:w]
        base = np.stack([xs / w * 200, ys / h * 150 + 50, (xs + ys) / (w + h) * 100 + 80], -1)
        pixels = np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
        path = tmp_path / "data" / "train" / ("a" if i % 2 else "b") / f"{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, quality=90)
    # Left out with a warning: were it read, the computation would fail.
    (tmp_path / "data" / "train" / "a" / "broken.jpg").write_text("not an image")
    return tmp_path / "data"


def reference_crops(root: Path) -> np.ndarray:
    """The paper's resize-256 + centre-crop-256, by torchvision's own transforms."""
    crop = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(256)])
    files = sorted(p for p in (root / "train").glob("*/*.jpg") if p.name != "broken.jpg")
    assert len(files) == len(SIZES)
    out = []
    for path in files:
        with Image.open(path) as image:
            out.append(np.asarray(crop(image.convert("RGB")), dtype=np.float64) / 255)
    return np.stack(out)


def test_agrees_with_numpy(root: Path) -> None:
    stats, path = compute_folder_stats(root)

    assert path == root / STATS_FILENAME
    assert path.is_file()
    x = reference_crops(root)
    pixels = x.reshape(-1, 3)
    cov = np.cov(pixels, rowvar=False, bias=True)
    assert stats.mean_image is not None
    np.testing.assert_allclose(stats.mean_image, x.mean(0), atol=1e-6)
    np.testing.assert_allclose(stats.mean_rgb, pixels.mean(0), rtol=1e-9)
    np.testing.assert_allclose(stats.std_rgb, pixels.std(0), rtol=1e-9)
    np.testing.assert_allclose(
        stats.eigvec @ np.diag(stats.eigval) @ stats.eigvec.T, cov, atol=1e-12
    )
    np.testing.assert_allclose(stats.eigval, np.linalg.eigvalsh(cov)[::-1], rtol=1e-9)
    assert list(stats.eigval) == sorted(stats.eigval, reverse=True)
    # What was saved is what was returned.
    saved = DatasetStats.load(path)
    np.testing.assert_array_equal(saved.eigvec, stats.eigvec)
    assert saved.mean_image is not None
    np.testing.assert_array_equal(saved.mean_image, stats.mean_image)


def test_out_elsewhere(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "mine.npz"

    _, path = compute_folder_stats(root, out=out, verify="full")

    assert path == out
    assert out.is_file()
    assert not (root / STATS_FILENAME).exists()


def test_unreadable_file_is_named_when_not_verified(root: Path) -> None:
    with pytest.raises(ValueError, match=r"broken.jpg: cannot decode"):
        compute_folder_stats(root, verify="off")


def stats_cli(*args: str, cwd: Path, cache: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    """`python -m lit_alexnet.stats ARGS` in `cwd`, generated data in `cache`; must succeed."""
    env = {**os.environ, "LIT_ALEXNET_CACHE": str(cache), "WANDB_MODE": "offline"}
    proc = subprocess.run(
        [sys.executable, "-m", "lit_alexnet.stats", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_with_no_arguments_it_shows_the_builtin_datasets_folder_and_figures(
    tmp_path: Path,
) -> None:
    proc = stats_cli(
        "data.train_per_class=2",
        "data.val_per_class=1",
        cwd=tmp_path,
        cache=tmp_path / "cache",
        timeout=300,
    )
    root = tmp_path / "cache" / BuiltinSpec(10, 2, 1, 0).dirname
    assert f"The built-in dataset is in {root}" in proc.stdout
    assert str(root / STATS_FILENAME) in proc.stdout
    # The printed mean is the stats file's (0-1 scale there, 0-255 here).
    mean = DatasetStats.load(root / STATS_FILENAME).mean_rgb * 255
    assert "  ".join(f"{v:8.2f}" for v in mean) in proc.stdout


def test_cli_writes_the_file(root: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()

    proc = stats_cli(
        "data=folder", f"data.root={root}", cwd=work, cache=tmp_path / "cache", timeout=120
    )

    assert (root / STATS_FILENAME).is_file()
    assert f"Wrote {root / STATS_FILENAME}" in proc.stdout
    assert "mean R G B (0-255)" in proc.stdout
    assert "broken.jpg: not an image file" in proc.stdout + proc.stderr
    assert list(work.iterdir()) == []  # no outputs/ folder, no log file


def test_a_root_without_stats_gets_its_own_on_first_use_cached_for_later_runs(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from lit_alexnet.data import base
    from lit_alexnet.data.torchvision import ImageFolderDataModule

    first = ImageFolderDataModule(root, num_workers=0)
    first.prepare_data()
    stats = first.dataset_stats()

    # The training set's own figures, not ImageNet's: the mean image of its crops.
    assert stats.mean_image is not None
    np.testing.assert_allclose(stats.mean_image, reference_crops(root).mean(0), atol=1e-6)
    assert not (root / STATS_FILENAME).exists()  # the data folder is left as it was
    # A later run reads the cached file and computes nothing.
    monkeypatch.setattr(base, "compute_folder_stats", lambda *a, **k: pytest.fail("recomputed"))
    again = ImageFolderDataModule(root, num_workers=0).dataset_stats()
    np.testing.assert_array_equal(again.eigvec, stats.eigvec)


def test_the_published_figures_by_name(root: Path) -> None:
    from lit_alexnet.data.formats import IMAGENET_STATS
    from lit_alexnet.data.torchvision import ImageFolderDataModule

    assert ImageFolderDataModule(root, stats="imagenet").dataset_stats() is IMAGENET_STATS


@pytest.fixture
def ramp(tmp_path: Path) -> Path:
    """64 training images of one colour each, 16 to a class, whose colour goes with their
    place in the split: red rises and green falls through it, blue steps up with the class.
    Either half of the split alone has a mean colour far from the whole split's."""
    for i in range(64):
        colour = (4 * i, 255 - 4 * i, 80 * (i // 16))
        path = tmp_path / "data" / "train" / f"c{i // 16}" / f"{i % 16:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), colour, np.uint8)).save(path)
    return tmp_path / "data"


def test_a_sample_caps_the_images_read(ramp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``sample`` reads that many images drawn from the whole split, in the split's order, and
    the statistics are theirs: a sample's mean colour is near the whole split's, where the
    first or the last images alone are not."""
    from lit_alexnet.data import dataset_stats

    read: list[Path] = []
    crop = dataset_stats.resize_centre_crop
    monkeypatch.setattr(dataset_stats, "resize_centre_crop", lambda f: (read.append(f), crop(f))[1])

    stats, _ = compute_folder_stats(ramp, verify="off", sample=32)

    assert len(read) == len(set(read)) == 32
    assert read == sorted(read)  # read in the split's order
    # Each image's colour by numpy, over the whole split in its (sorted) order.
    files = sorted((ramp / "train").glob("*/*.png"))
    colours = np.stack(
        [np.asarray(Image.open(f).convert("RGB"), np.float64).reshape(-1, 3).mean(0) for f in files]
    )
    whole = colours.mean(0) / 255
    # Within an eighth of the scale of the whole split's mean: a sample of half the split
    # strays by its sampling error (here 13 and 18 of 255 in red and blue), while the first or
    # the last half alone miss by 64 to 80.
    tolerance = 32 / 255
    for half in (colours[:32], colours[32:]):
        assert np.abs(half.mean(0) / 255 - whole).max() > 2 * tolerance  # the test can tell
    np.testing.assert_allclose(stats.mean_rgb, whole, rtol=0, atol=tolerance)
    # And the figures are those of the images read, not of others.
    picked = colours[[files.index(f) for f in read]]
    np.testing.assert_allclose(stats.mean_rgb, picked.mean(0) / 255, rtol=0, atol=1e-9)


def test_first_use_statistics_follow_the_files_not_the_root(root: Path) -> None:
    # The cache was keyed on the root's path alone: changed data got the old statistics.
    from lit_alexnet.data.torchvision import ImageFolderDataModule

    def mean_of_first_use() -> np.ndarray:
        stats = ImageFolderDataModule(root, num_workers=0).dataset_stats()
        assert stats.mean_image is not None
        return stats.mean_image

    before = mean_of_first_use()
    np.testing.assert_array_equal(mean_of_first_use(), before)  # unchanged data: the cache
    # A new, bright image in the training split: the statistics are computed again, over
    # one more image: the mean of the five images and a near-white one.
    Image.fromarray(np.full((300, 300, 3), 250, np.uint8)).save(root / "train" / "a" / "x.png")
    after = mean_of_first_use()
    expected = (before * len(SIZES) + 250 / 255) / (len(SIZES) + 1)
    np.testing.assert_allclose(after, expected, atol=2e-3)
