"""The generated built-in dataset: layout, determinism, atomic caching, statistics, fairness."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lit_alexnet.data import builtin
from lit_alexnet.data.builtin import CLASS_NAMES, BuiltinSpec, ensure_builtin_dataset
from lit_alexnet.data.formats import STATS_FILENAME, DatasetStats

# Big enough for the colour test to have statistical power, small enough to build in seconds.
SHARED = BuiltinSpec(num_classes=10, train_per_class=40, val_per_class=20, seed=3)
TINY = BuiltinSpec(num_classes=3, train_per_class=3, val_per_class=2, seed=0)


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_builtin_dataset(tmp_path_factory.mktemp("cache"), SHARED)


def jpegs(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jpg"))


def relative_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in jpegs(root)}


# ----------------------------------------------------------------------------- layout


def test_class_names_sort_in_index_order() -> None:
    assert len(CLASS_NAMES) >= 10
    assert list(CLASS_NAMES) == sorted(CLASS_NAMES)
    assert len(set(CLASS_NAMES)) == len(CLASS_NAMES)


def test_layout_counts_and_real_jpegs(shared_root: Path) -> None:
    assert shared_root.name == SHARED.dirname
    assert sorted(p.name for p in shared_root.iterdir() if p.is_dir()) == ["train", "val"]
    sizes = set()
    for split, count in (("train", SHARED.train_per_class), ("val", SHARED.val_per_class)):
        folders = sorted(p for p in (shared_root / split).iterdir())
        assert [p.name for p in folders] == list(CLASS_NAMES[: SHARED.num_classes])
        for folder in folders:
            files = sorted(folder.iterdir())
            assert len(files) == count
            assert all(f.suffix == ".jpg" for f in files)
            for f in files:
                assert f.read_bytes()[:3] == b"\xff\xd8\xff"  # the JPEG start-of-image marker
                with Image.open(f) as image:
                    assert image.format == "JPEG"
                    assert image.mode == "RGB"
                    image.load()  # decodes the whole file: no truncation
                    sizes.add(image.size)
    widths = {w for w, _ in sizes}
    heights = {h for _, h in sizes}
    assert min(widths | heights) >= SHARED.min_side
    assert max(widths | heights) <= SHARED.max_side
    # Sides are drawn independently, so nearly every image has its own size.
    assert len(sizes) > 0.8 * len(jpegs(shared_root))
    assert len(widths) > 50 and len(heights) > 50


def test_images_are_not_flat(shared_root: Path) -> None:
    """Every image shows two clearly different colours (the shape and its background)."""
    for path in jpegs(shared_root)[::7]:
        pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
        lo, hi = np.percentile(pixels, [2, 98])
        assert hi - lo > 30, path


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a = ensure_builtin_dataset(tmp_path / "a", TINY)
    b = ensure_builtin_dataset(tmp_path / "b", TINY)
    files_a, files_b = relative_bytes(a), relative_bytes(b)
    assert len(files_a) == TINY.num_classes * (TINY.train_per_class + TINY.val_per_class)
    assert files_a == files_b
    stats_a, stats_b = DatasetStats.load(a / STATS_FILENAME), DatasetStats.load(b / STATS_FILENAME)
    np.testing.assert_array_equal(stats_a.mean_rgb, stats_b.mean_rgb)
    np.testing.assert_array_equal(stats_a.eigvec, stats_b.eigvec)


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    other = BuiltinSpec(num_classes=3, train_per_class=3, val_per_class=2, seed=1)
    assert other.dirname != TINY.dirname
    files_a = relative_bytes(ensure_builtin_dataset(tmp_path, TINY))
    files_b = relative_bytes(ensure_builtin_dataset(tmp_path, other))
    assert files_a.keys() == files_b.keys()
    assert all(files_a[k] != files_b[k] for k in files_a)


def test_images_do_not_depend_on_what_else_is_generated(tmp_path: Path) -> None:
    """An image depends on (seed, split, class, index) only, not on the order of generation."""
    bigger = BuiltinSpec(num_classes=4, train_per_class=5, val_per_class=3, seed=0)
    small = relative_bytes(ensure_builtin_dataset(tmp_path, TINY))
    large = relative_bytes(ensure_builtin_dataset(tmp_path, bigger))
    assert small.keys() < large.keys()
    assert all(small[k] == large[k] for k in small)


def test_splits_hold_different_images(shared_root: Path) -> None:
    train = {p.read_bytes() for p in (shared_root / "train").rglob("*.jpg")}
    val = {p.read_bytes() for p in (shared_root / "val").rglob("*.jpg")}
    assert len(train) == SHARED.num_classes * SHARED.train_per_class
    assert len(val) == SHARED.num_classes * SHARED.val_per_class
    assert not train & val


# ----------------------------------------------------------------------------- caching


def test_second_call_reuses_the_dataset(tmp_path: Path) -> None:
    root = ensure_builtin_dataset(tmp_path, TINY)
    assert [p.name for p in tmp_path.iterdir()] == [TINY.dirname]  # no temporary left over
    before = {p: p.stat().st_mtime_ns for p in [root, *root.rglob("*")]}
    assert ensure_builtin_dataset(str(tmp_path), TINY) == root
    assert {p: p.stat().st_mtime_ns for p in [root, *root.rglob("*")]} == before


def test_interrupted_generation_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_encode = builtin._encode_jpeg
    calls = 0

    def failing_encode(image: np.ndarray, spec: BuiltinSpec) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 7:
            raise KeyboardInterrupt  # what a user's Ctrl-C looks like mid-run
        return real_encode(image, spec)

    monkeypatch.setattr(builtin, "_encode_jpeg", failing_encode)
    with pytest.raises(KeyboardInterrupt):
        ensure_builtin_dataset(tmp_path, TINY)
    assert list(tmp_path.iterdir()) == []

    monkeypatch.setattr(builtin, "_encode_jpeg", real_encode)
    root = ensure_builtin_dataset(tmp_path, TINY)
    assert len(jpegs(root)) == 15
    assert relative_bytes(root) == relative_bytes(ensure_builtin_dataset(tmp_path / "x", TINY))


def test_losing_a_race_keeps_the_winners_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process finishes first while this one generates: this one discards its copy."""
    real_generate = builtin._generate
    winner: dict[str, int] = {}

    def generate_after_another_process(tmp: Path, spec: BuiltinSpec) -> None:
        monkeypatch.setattr(builtin, "_generate", real_generate)
        root = ensure_builtin_dataset(tmp_path, spec)  # the other "rank" completes first
        winner.update({str(p): p.stat().st_ino for p in root.rglob("*")})
        real_generate(tmp, spec)

    monkeypatch.setattr(builtin, "_generate", generate_after_another_process)
    root = ensure_builtin_dataset(tmp_path, TINY)
    assert winner
    assert {str(p): p.stat().st_ino for p in root.rglob("*")} == winner
    assert [p.name for p in tmp_path.iterdir()] == [TINY.dirname]


def test_stale_temporary_from_a_dead_process_is_removed(tmp_path: Path) -> None:
    dead_pid = 2**31 - 2  # above any kernel's pid_max
    stale = tmp_path / f".{TINY.dirname}.tmp-{socket.gethostname()}-{dead_pid}-abc"
    (stale / "train").mkdir(parents=True)
    live = tmp_path / f".{TINY.dirname}.tmp-{socket.gethostname()}-{os.getpid()}-def"
    live.mkdir()
    ensure_builtin_dataset(tmp_path, TINY)
    assert not stale.exists()
    assert live.exists()  # a running process's work in progress is left alone


def test_foreign_folder_is_not_taken_for_a_dataset(tmp_path: Path) -> None:
    (tmp_path / TINY.dirname / "train").mkdir(parents=True)
    with pytest.raises(RuntimeError, match="delete it"):
        ensure_builtin_dataset(tmp_path, TINY)


def test_empty_folder_is_filled(tmp_path: Path) -> None:
    (tmp_path / TINY.dirname).mkdir()
    root = ensure_builtin_dataset(tmp_path, TINY)
    assert len(jpegs(root)) == 15


# ----------------------------------------------------------------------------- statistics


def test_stats_match_the_resized_centre_crops(shared_root: Path) -> None:
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Resize

    # torchvision's own resize and crop, as the training transforms use them.
    preprocess = Compose([Resize(256, InterpolationMode.BILINEAR, antialias=True), CenterCrop(256)])
    crops = []
    for path in sorted((shared_root / "train").rglob("*.jpg")):
        with Image.open(path) as image:
            crops.append(np.asarray(preprocess(image.convert("RGB"))))
    stack = np.stack(crops)  # uint8; reductions with dtype=float64 need no float copy of it
    assert stack.shape == (SHARED.num_classes * SHARED.train_per_class, 256, 256, 3)

    stats = DatasetStats.load(shared_root / STATS_FILENAME)
    np.testing.assert_allclose(
        stats.mean_rgb, stack.mean((0, 1, 2), dtype=np.float64) / 255, atol=1e-3
    )
    assert stats.mean_image is not None
    np.testing.assert_allclose(stats.mean_image, stack.mean(0, dtype=np.float64) / 255, atol=2e-3)
    # Spread and principal components from every fourth pixel each way: close enough to tell.
    pixels = stack[:, ::4, ::4].reshape(-1, 3) / 255.0
    np.testing.assert_allclose(stats.std_rgb, pixels.std(0), atol=5e-3)
    cov = np.cov(pixels, rowvar=False)
    np.testing.assert_allclose(
        stats.eigvec @ np.diag(stats.eigval) @ stats.eigvec.T, cov, atol=1e-3
    )
    np.testing.assert_allclose(stats.eigvec.T @ stats.eigvec, np.eye(3), atol=1e-9)
    assert np.all(np.diff(stats.eigval) <= 0) and np.all(stats.eigval > 0)
    # Random colours: the channels are nearly balanced around mid-grey.
    assert np.all(np.abs(stats.mean_rgb - 0.5) < 0.1)


# ----------------------------------------------------------------------------- labels


def shape_measures(path: Path) -> tuple[float, int]:
    """(compactness, Euler number) of the foreground of a generated image, by geometry alone.

    The background is the colour of the border (the shape stays inside the central square)
    and each pixel goes to the nearer of the two colours, a 3x3 majority vote removing the
    pixel noise. Compactness is ``area / (2 pi * mean squared distance from the centroid)``:
    1 for a disk, 3/pi for a square, 3 sqrt(3) / (2 pi) for an equilateral triangle and
    ``(1 - q^2) / (1 + q^2)`` for a ring whose hole has q times its radius, whatever the
    position, size and rotation. The Euler number (8-connected pieces minus holes, from
    Gray's 2x2 bit-quad counts) is 1 for a solid shape, 0 for a ring or frame, and the
    number of pieces for stripes and dots.
    """
    with Image.open(path) as image:  # half size: the measures hardly change, reading is faster
        rgb = np.asarray(image.convert("RGB").reduce(2), dtype=np.float32)
    h, w, _ = rgb.shape
    background = np.median(np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]), axis=0)
    to_background = np.linalg.norm(rgb - background, axis=-1)
    foreground = np.median(rgb[to_background > 60], axis=0)  # colours are >= 120 apart
    mask = np.linalg.norm(rgb - foreground, axis=-1) < to_background
    padded = np.pad(mask, 1).astype(np.int8)
    mask = sum(padded[i : i + h, j : j + w] for i in range(3) for j in range(3)) >= 5
    ys, xs = np.nonzero(mask)
    compactness = len(xs) / (2 * np.pi * ((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2).mean())
    q = np.pad(mask, 1).astype(np.int8)
    a, b, c, d = q[:-1, :-1], q[:-1, 1:], q[1:, :-1], q[1:, 1:]
    ones = a + b + c + d
    diagonal = (a == d) & (b == c) & (a != b)
    euler = ((ones == 1).sum() - (ones == 3).sum() - 2 * diagonal.sum()) // 4
    return float(compactness), int(euler)


def ring(q_lo: float, q_hi: float, solid: float = 1.0) -> tuple[float, float]:
    """The compactness range, 0.02 either side for the pixel edges, of a shape of compactness
    ``solid`` with a hole of the same shape q_lo to q_hi times its size."""

    def holed(q: float) -> float:
        return solid * (1 - q * q) / (1 + q * q)

    return holed(q_hi) - 0.02, holed(q_lo) + 0.02


# What each class's drawing must measure, from the shapes' geometry: (compactness range,
# allowed Euler numbers). Textures cover about half of a disk or square patch (dots about a
# third), so their compactness is about half that of the patch.
TRIANGLE, SQUARE = 3 * np.sqrt(3) / (2 * np.pi), 3 / np.pi
SOLID, HOLED, PIECES = {1}, {0}, set(range(3, 100))
SIGNATURES = {
    "00_disk": ((0.99, 1.01), SOLID),
    "01_ring": (ring(0.45, 0.65), HOLED),  # inner radius 0.45-0.65
    "02_square": ((SQUARE - 0.01, SQUARE + 0.01), SOLID),
    "03_frame": (ring(0.5, 0.68, SQUARE), HOLED),  # inner square 0.5-0.68
    "04_triangle": ((TRIANGLE - 0.01, TRIANGLE + 0.01), SOLID),
    "05_star": ((0.6, TRIANGLE + 0.02), SOLID),
    "06_cross": ((0.55, 0.8), SOLID),
    "07_stripes": ((0.44, 0.56), PIECES),
    "08_checkerboard": ((0.44, 0.56), set(range(-100, 100))),
    "09_dots": ((0.2, 0.42), set(range(10, 100))),
}


def test_every_image_shows_its_folder_s_shape_in_both_splits(shared_root: Path) -> None:
    """The label is the folder, and the folder's shape must be what the image shows.

    Every other test here would pass if all classes drew the same shape, or if the
    validation images were drawn for other classes than their folders say (an unlearnable
    dataset with chance-level validation error). Each image is measured here by geometry
    alone and held to its folder's class; half of each folder, alternate files.
    """
    assert tuple(SIGNATURES) == CLASS_NAMES[: SHARED.num_classes]
    wrong = []
    for split in ("train", "val"):
        for name, ((lo, hi), eulers) in SIGNATURES.items():
            for path in sorted((shared_root / split / name).glob("*.jpg"))[::2]:
                compactness, euler = shape_measures(path)
                if not (lo <= compactness <= hi and euler in eulers):
                    wrong.append(f"{split}/{name}/{path.name}: {compactness:.3f}, {euler}")
    assert not wrong, wrong


# ----------------------------------------------------------------------------- fairness


def mean_colours(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    features, labels = [], []
    for label, name in enumerate(sorted(p.name for p in (root / split).iterdir())):
        for path in sorted((root / split / name).glob("*.jpg")):
            with Image.open(path) as image:
                features.append(np.asarray(image.convert("RGB"), dtype=np.float64).mean((0, 1)))
            labels.append(label)
    return np.array(features), np.array(labels)


def test_mean_colour_does_not_reveal_the_class(shared_root: Path) -> None:
    x_train, y_train = mean_colours(shared_root, "train")
    x_val, y_val = mean_colours(shared_root, "val")
    k = SHARED.num_classes
    chance = 1.0 / k

    # Nearest class centroid.
    centroids = np.stack([x_train[y_train == c].mean(0) for c in range(k)])
    nearest = np.argmin(((x_val[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert np.mean(nearest == y_val) < 2 * chance

    # Multinomial logistic regression on standardised colours (plus their squares, so that
    # a class with more or less saturated images would also show), by gradient descent.
    def expand(x: np.ndarray) -> np.ndarray:
        z = (x - x_train.mean(0)) / x_train.std(0)
        return np.hstack([z, z**2, np.ones((len(z), 1))])

    f_train, f_val = expand(x_train), expand(x_val)
    weights = np.zeros((f_train.shape[1], k))
    onehot = np.eye(k)[y_train]
    for _ in range(500):
        logits = f_train @ weights
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        weights -= 0.5 * (f_train.T @ (p - onehot) / len(f_train) + 1e-3 * weights)
    assert np.mean(np.argmax(f_val @ weights, 1) == y_val) < 2 * chance


# ----------------------------------------------------------------------------- the spec


def test_default_spec_and_cache_name() -> None:
    spec = BuiltinSpec()
    assert (spec.num_classes, spec.train_per_class, spec.val_per_class, spec.seed) == (
        10,
        100,
        30,
        0,
    )
    assert spec.dirname == f"builtin-c10-t100-v30-s0-v{builtin.FORMAT_VERSION}"
    assert spec.class_names == CLASS_NAMES[:10]


def test_every_field_changes_the_cache_name() -> None:
    base = BuiltinSpec()
    variants = [
        BuiltinSpec(num_classes=11),
        BuiltinSpec(train_per_class=101),
        BuiltinSpec(val_per_class=31),
        BuiltinSpec(seed=1),
        BuiltinSpec(min_side=200),
        BuiltinSpec(max_side=400),
        BuiltinSpec(jpeg_quality=80),
    ]
    names = {base.dirname, *(v.dirname for v in variants)}
    assert len(names) == len(variants) + 1
    fingerprints = {base.fingerprint(), *(v.fingerprint() for v in variants)}
    assert len(fingerprints) == len(variants) + 1
    assert BuiltinSpec().fingerprint() == base.fingerprint()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_classes", 1),
        ("num_classes", 0),
        ("num_classes", len(CLASS_NAMES) + 1),
        ("num_classes", 2.5),
        ("train_per_class", 0),
        ("train_per_class", -3),
        ("val_per_class", 0),
        ("seed", -1),
        ("min_side", 10),
        ("max_side", 100),
        ("jpeg_quality", 0),
        ("jpeg_quality", 101),
    ],
)
def test_bad_spec_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        BuiltinSpec(**{field: value})  # type: ignore[arg-type]


def test_largest_spec_is_accepted() -> None:
    spec = BuiltinSpec(num_classes=len(CLASS_NAMES), train_per_class=1, val_per_class=1)
    assert spec.class_names == CLASS_NAMES


def test_the_library_datamodule_finds_the_cli_s_cache_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lit_alexnet import BuiltinDataModule

    monkeypatch.setenv("LIT_ALEXNET_CACHE", str(tmp_path))
    assert BuiltinDataModule().root == tmp_path / BuiltinSpec().dirname
    monkeypatch.delenv("LIT_ALEXNET_CACHE")
    home = Path("~/.cache/lit_alexnet").expanduser()
    assert BuiltinDataModule().root == home / BuiltinSpec().dirname
