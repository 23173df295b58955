"""The DALI backend against the torchvision backend and the paper's formulas (CPU pipelines)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from lit_alexnet import LitAlexNet
from lit_alexnet.checks import Invalid
from lit_alexnet.data.backends import builtin_datamodule, folder_datamodule
from lit_alexnet.data.bad_files import BadFilesError
from lit_alexnet.data.base import FolderDataModule
from lit_alexnet.data.dali import BuiltinDaliDataModule, DaliImageDataModule, resolve_device
from lit_alexnet.data.formats import IMAGENET_STATS, DatasetStats
from lit_alexnet.data.sharding import shard_bounds
from lit_alexnet.data.torchvision import BuiltinDataModule, ImageFolderDataModule

SPAN = 256 - 224  # the crop's freedom in each direction


def _write(root: Path, image: np.ndarray, per_class: int, classes: tuple[str, ...] = ("a", "b")):
    for split in ("train", "val"):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.fromarray(image).save(folder / f"{i:03d}.png")  # lossless: exact pixels


def _stats(mean_image: np.ndarray | None = None, mean_rgb: np.ndarray | None = None):
    return DatasetStats(
        mean_rgb=np.zeros(3) if mean_rgb is None else mean_rgb,
        std_rgb=np.ones(3),
        eigval=IMAGENET_STATS.eigval,
        eigvec=IMAGENET_STATS.eigvec,
        mean_image=mean_image,
        source="test",
    )


def _module(backend: str, root: Path, **kwargs: Any) -> FolderDataModule:
    if backend == "dali":
        return DaliImageDataModule(root, device="cpu", num_threads=1, pipeline_seed=0, **kwargs)
    return ImageFolderDataModule(root, num_workers=0, **kwargs)


def _batches(
    dm: FolderDataModule, split: str, epochs: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    dm.setup("fit" if split == "train" else "test")
    loader = {"train": dm.train_dataloader, "val": dm.val_dataloader, "test": dm.test_dataloader}
    it = loader[split]()
    xs, ys = [], []
    for _ in range(epochs):
        for x, y in it:
            xs.append(x)
            ys.append(y)
    return torch.cat(xs), torch.cat(ys)


@pytest.fixture(scope="module")
def coordinate_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """256x256 images whose red value is x and green value y; blue is 100 minus a mean image."""
    root = tmp_path_factory.mktemp("coords")
    ys, xs = np.mgrid[0:256, 0:256]
    _write(root, np.stack([xs, ys, np.full_like(xs, 100)], -1).astype(np.uint8), per_class=8)
    rng = np.random.default_rng(0)
    mean_image = np.zeros((256, 256, 3))
    mean_image[..., 2] = rng.uniform(0, 0.3, (256, 256))  # 0-1 scale, blue only
    _stats(mean_image=mean_image).save(root / "stats.npz")
    return root


def _geometry(patches: torch.Tensor, mean_blue: torch.Tensor) -> list[tuple[int, int, bool]]:
    """(top, left, flipped) of each patch, after checking it is exactly that window."""
    found = []
    for patch in patches:
        flipped = bool(patch[0, 0, 1] < patch[0, 0, 0])
        top, left = int(patch[1, 0, 0]), int(patch[0, 0, -1] if flipped else patch[0, 0, 0])
        rows = torch.arange(top, top + 224, dtype=torch.float32)
        cols = torch.arange(left, left + 224, dtype=torch.float32)
        blue = 100 - mean_blue[top : top + 224, left : left + 224]
        if flipped:
            cols, blue = cols.flip(0), blue.flip(1)
        torch.testing.assert_close(patch[0], cols.expand(224, 224), rtol=0, atol=1e-3)
        torch.testing.assert_close(patch[1], rows[:, None].expand(224, 224), rtol=0, atol=1e-3)
        torch.testing.assert_close(patch[2], blue, rtol=0, atol=1e-3)
        found.append((top, left, flipped))
    return found


@pytest.mark.parametrize("backend", [pytest.param("dali", marks=pytest.mark.dali), "torchvision"])
def test_train_crops_are_uniform_windows_of_the_mean_subtracted_square(
    backend: str, coordinate_root: Path
) -> None:
    dm = _module(backend, coordinate_root, batch_size=8, lighting_std=0.0)
    patches, _ = _batches(dm, "train", epochs=10)
    mean_blue = torch.as_tensor(dm.dataset_stats().mean_image[..., 2] * 255, dtype=torch.float32)
    geometry = _geometry(patches, mean_blue)
    tops, lefts, flips = (np.array(v) for v in zip(*geometry, strict=True))
    assert len(geometry) == 160
    for positions in (tops, lefts):
        assert positions.min() >= 0 and positions.max() <= SPAN
        # Uniform over 33 positions: 160 draws reach both ends' neighbourhoods.
        assert positions.min() <= 3 and positions.max() >= SPAN - 3
        assert abs(positions.mean() - SPAN / 2) < 3
    assert 0.3 < flips.mean() < 0.7


@pytest.mark.dali
@pytest.mark.parametrize("views", ["center", "ten_crop"])
def test_eval_views_match_the_torchvision_backend_exactly(
    coordinate_root: Path, views: str
) -> None:
    outputs = {}
    for backend in ("dali", "torchvision"):
        dm = _module(backend, coordinate_root, batch_size=4, test_views=views)
        outputs[backend], _ = _batches(dm, "test")
    torch.testing.assert_close(outputs["dali"], outputs["torchvision"], rtol=0, atol=1e-3)


@pytest.mark.dali
def test_center_crop_is_the_middle_window(coordinate_root: Path) -> None:
    dm = _module("dali", coordinate_root, batch_size=4)
    patches, _ = _batches(dm, "val")
    mean_blue = torch.as_tensor(dm.dataset_stats().mean_image[..., 2] * 255, dtype=torch.float32)
    assert set(_geometry(patches, mean_blue)) == {(SPAN // 2, SPAN // 2, False)}


@pytest.mark.dali
@pytest.mark.parametrize("mean", ["image", "channel"])
def test_mean_subtraction_matches_the_torchvision_backend(tmp_path: Path, mean: str) -> None:
    rng = np.random.default_rng(1)
    _write(tmp_path, rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), per_class=2)
    _stats(mean_image=rng.uniform(0, 1, (256, 256, 3)), mean_rgb=rng.uniform(0, 1, 3)).save(
        tmp_path / "stats.npz"
    )
    outputs = {}
    for backend in ("dali", "torchvision"):
        outputs[backend], labels = _batches(
            _module(backend, tmp_path, mean=mean, batch_size=4), "val"
        )
    torch.testing.assert_close(outputs["dali"], outputs["torchvision"], rtol=0, atol=1e-3)
    assert labels.tolist() == [0, 0, 1, 1]


@pytest.mark.dali
def test_imagenet_flat_val_folder_reads_alike_in_both_backends(tmp_path: Path) -> None:
    # train/<synset>/ folders, val/ flat with a "path synset" list, as data=imagenet documents.
    rng = np.random.default_rng(2)
    synsets = ("n01440764", "n01443537")
    lines = []
    (tmp_path / "val").mkdir()
    for i, synset in enumerate(synsets * 3):
        image = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
        (tmp_path / "train" / synset).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "train" / synset / f"{i}.png")
        Image.fromarray(image).save(tmp_path / "val" / f"ILSVRC2012_val_{i:08d}.png")
        lines.append(f"ILSVRC2012_val_{i:08d}.png {synset}")
    (tmp_path / "val.txt").write_text("\n".join(lines) + "\n")
    _stats().save(tmp_path / "stats.npz")
    outputs = {}
    for backend in ("dali", "torchvision"):
        dm = _module(backend, tmp_path, batch_size=4, val_labels=tmp_path / "val.txt")
        outputs[backend] = _batches(dm, "val")
    torch.testing.assert_close(outputs["dali"][0], outputs["torchvision"][0], rtol=0, atol=1e-3)
    assert outputs["dali"][1].tolist() == outputs["torchvision"][1].tolist() == [0, 1] * 3


@pytest.mark.dali
def test_resized_jpegs_agree_with_the_torchvision_backend(tmp_path: Path) -> None:
    # Different resize and JPEG code: close, not equal.
    ys, xs = np.mgrid[0:300, 0:400]
    smooth = np.stack([xs * 0.6, ys * 0.8, (xs + ys) * 0.35], -1).astype(np.uint8)
    for split in ("train", "val"):
        (tmp_path / split / "a").mkdir(parents=True)
        Image.fromarray(smooth).save(tmp_path / split / "a" / "0.jpg", quality=95)
    outputs = [
        _batches(_module(b, tmp_path, batch_size=1), "val")[0] for b in ("dali", "torchvision")
    ]
    assert (outputs[0] - outputs[1]).abs().mean() < 2.0  # on the 0-255 scale


def _real_world_files(folder: Path) -> dict[str, Path]:
    """Files a user's folder holds beside clean JPEGs, all of one smooth 300x400 picture."""
    ys, xs = np.mgrid[0:300, 0:400]
    picture = Image.fromarray(np.stack([xs * 0.6, ys * 0.8, xs * 0.1], -1).astype(np.uint8))
    folder.mkdir(parents=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone's portrait photo: landscape pixels, "rotate 90 clockwise"
    files = {
        "plain": ("plain.jpg", {"quality": 95}),
        "exif_rotated": ("exif.jpg", {"quality": 95, "exif": exif.tobytes()}),
        "progressive": ("progressive.jpeg", {"quality": 95, "progressive": True}),
        "jfif_extension": ("photo.jfif", {"quality": 95}),
        "png_named_jpg": ("png.jpg", {"format": "PNG"}),
    }
    for name, options in files.values():
        picture.save(folder / name, **options)
    picture.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    picture.convert("L").save(folder / "gray.jpg", quality=95)
    plain = (folder / "plain.jpg").read_bytes()
    (folder / "trailing.jpg").write_bytes(plain + b"ftypmp42" + b"\1" * 9000)
    names = {key: name for key, (name, _) in files.items()}
    names |= {"cmyk": "cmyk.jpg", "gray": "gray.jpg", "trailing": "trailing.jpg"}
    return {key: folder / name for key, name in names.items()}


@pytest.mark.dali
def test_real_world_files_train_with_the_same_pixels_on_both_backends(tmp_path: Path) -> None:
    files = _real_world_files(tmp_path / "val" / "a")
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "0.jpg").write_bytes(files["plain"].read_bytes())
    dali, tv = (_module(b, tmp_path, batch_size=1) for b in ("dali", "torchvision"))
    dali_x, tv_x = _batches(dali, "val")[0], _batches(tv, "val")[0]

    # Every file is read, in the scan's order, alike by both (different JPEG and resize code:
    # close, not equal; 0-255 scale).
    order = list(tv.image_list("val").files)
    assert sorted(order) == sorted(files.values())
    for path, a, b in zip(order, dali_x, tv_x, strict=True):
        assert (a - b).abs().mean() < 2.0, path
    # Both turned the phone photo upright: it is not the picture as stored.
    upright, stored = (tv_x[order.index(files[k])] for k in ("exif_rotated", "plain"))
    assert (upright - stored).abs().mean() > 20


@pytest.mark.parametrize("backend", [pytest.param("dali", marks=pytest.mark.dali), "torchvision"])
def test_lighting_offsets_follow_the_papers_distribution(tmp_path: Path, backend: str) -> None:
    _write(tmp_path, np.full((256, 256, 3), 128, np.uint8), per_class=16)
    _stats().save(tmp_path / "stats.npz")
    dm = _module(backend, tmp_path, batch_size=32, mean="channel", lighting_std=0.1)
    patches, _ = _batches(dm, "train", epochs=30)
    flat = patches.flatten(2)
    assert (flat.amax(2) - flat.amin(2)).max() < 1e-3  # one offset per image and channel
    offsets = flat[:, :, 0].double().numpy() - 128
    # Section 4.1: offset = [p1 p2 p3][a1 l1, a2 l2, a3 l3]^T, a_i ~ N(0, 0.1), on 0-255.
    basis = 255 * IMAGENET_STATS.eigvec * IMAGENET_STATS.eigval
    alphas = np.linalg.solve(basis, offsets.T).T
    assert len(alphas) == 960
    np.testing.assert_allclose(alphas.mean(0), 0, atol=0.015)
    np.testing.assert_allclose(alphas.std(0), 0.1, rtol=0.1)
    assert np.abs(np.corrcoef(alphas.T) - np.eye(3)).max() < 0.15
    expected = basis @ np.diag([0.1**2] * 3) @ basis.T
    assert np.linalg.norm(np.cov(offsets.T) - expected) < 0.2 * np.linalg.norm(expected)


# ----------------------------------------------------------------------------- sharding


def _numbered(root: Path, size: int) -> Path:
    """``size`` one-image classes, so that a label names its sample."""
    for split in ("train", "val"):
        for i in range(size):
            (root / split / f"c{i:03d}").mkdir(parents=True)
            Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(root / split / f"c{i:03d}/0.png")
    return root


def _rank(root: Path, rank: int, world: int, batch_size: int = 4) -> DaliImageDataModule:
    dm = DaliImageDataModule(root, batch_size=batch_size, device="cpu", num_threads=1)
    # The files checked here, as rank 0 would check them and broadcast what it found.
    dm.check_splits("train", "val")
    # What setup() needs of a Trainer under DDP; a broadcast seed as rank 0 would send it.
    strategy = SimpleNamespace(broadcast=lambda seed: 1234, root_device=torch.device("cpu"))
    dm.trainer = SimpleNamespace(global_rank=rank, world_size=world, strategy=strategy)  # type: ignore[assignment]
    dm.setup("fit")
    return dm


def _epochs(loader: Any, epochs: int) -> list[list[int]]:
    return [[label for _, y in loader for label in y.tolist()] for _ in range(epochs)]


@pytest.mark.dali
@pytest.mark.parametrize(("size", "world"), [(37, 2), (37, 3), (41, 4)])
def test_validation_shards_count_every_sample_exactly_once(
    tmp_path: Path, size: int, world: int
) -> None:
    root = _numbered(tmp_path, size)
    seen: list[list[int]] = [[], []]
    for rank in range(world):
        loader = _rank(root, rank, world).val_dataloader()
        start, end = shard_bounds(size, rank, world)
        assert len(loader) == math.ceil((end - start) / 4)
        for epoch, labels in enumerate(_epochs(loader, 2)):
            seen[epoch] += labels
    for labels in seen:
        assert sorted(labels) == list(range(size))


@pytest.mark.dali
def test_training_shards_split_each_reshuffled_epoch(tmp_path: Path) -> None:
    root = _numbered(tmp_path, 40)
    loaders = [_rank(root, rank, 2).train_dataloader() for rank in (0, 1)]
    assert [len(loader) for loader in loaders] == [5, 5]
    per_rank = [_epochs(loader, 3) for loader in loaders]
    epochs = [per_rank[0][e] + per_rank[1][e] for e in range(3)]
    for labels in epochs:
        assert sorted(labels) == list(range(40))
    assert epochs[0] != epochs[1] != epochs[2]


@pytest.mark.dali
def test_training_shards_take_the_same_number_of_steps(tmp_path: Path) -> None:
    # 33 samples on 2 ranks: shards of 16 and 17, i.e. 4 or 5 batches of 4. Under DDP an
    # extra step on one rank would hang the other, so both take 4 and one sample waits.
    root = _numbered(tmp_path, 33)
    loaders = [_rank(root, rank, 2).train_dataloader() for rank in (0, 1)]
    assert [len(loader) for loader in loaders] == [4, 4]
    per_rank = [_epochs(loader, 3) for loader in loaders]
    for epoch in range(3):
        assert [len(per_rank[r][epoch]) for r in (0, 1)] == [16, 16]
        labels = per_rank[0][epoch] + per_rank[1][epoch]
        assert len(set(labels)) == 32 and set(labels) <= set(range(33))


# ----------------------------------------------------------------------------- Lightning


class _Counter(L.Callback):
    def __init__(self) -> None:
        self.train: dict[int, list[int]] = {}
        self.val: dict[int, list[int]] = {}

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, index: int
    ) -> None:
        self.train.setdefault(trainer.current_epoch, []).append(len(batch[1]))

    def on_validation_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, *rest: int
    ) -> None:
        if not trainer.sanity_checking:
            self.val.setdefault(trainer.current_epoch, []).append(len(batch[1]))


@pytest.fixture
def small_builtin(cache_dir: Path) -> dict[str, Any]:
    return {"cache_dir": cache_dir, "num_classes": 2, "train_per_class": 5, "val_per_class": 3}


def _fit(dm: FolderDataModule, **trainer_kwargs: Any) -> tuple[L.Trainer, _Counter]:
    counter = _Counter()
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[counter],
        **trainer_kwargs,
    )
    L.seed_everything(0)
    model = LitAlexNet(num_classes=dm.num_classes, init="torch")
    trainer.fit(model, datamodule=dm)
    return trainer, counter


@pytest.mark.dali
def test_a_lightning_fit_sees_every_sample_every_epoch(
    small_builtin: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    dm = BuiltinDaliDataModule(batch_size=4, device="cpu", **small_builtin)
    with caplog.at_level(logging.WARNING):
        trainer, counter = _fit(dm, num_sanity_val_steps=0)
    assert trainer.num_training_batches == 3
    assert counter.train == {0: [4, 4, 2], 1: [4, 4, 2]}
    assert counter.val == {0: [4, 2], 1: [4, 2]}
    assert "reset" not in caplog.text


@pytest.mark.dali
def test_sanity_check_and_batch_limits_leave_later_epochs_whole(
    small_builtin: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    dm = BuiltinDaliDataModule(batch_size=4, device="cpu", **small_builtin)
    with caplog.at_level(logging.WARNING):
        _, counter = _fit(dm, num_sanity_val_steps=1, limit_train_batches=2)
    assert counter.train == {0: [4, 4], 1: [4, 4]}
    assert counter.val == {0: [4, 2], 1: [4, 2]}
    assert "reset" not in caplog.text


@pytest.mark.dali
def test_bad_files_are_left_out_or_stop_the_run(small_builtin: dict[str, Any]) -> None:
    dm = BuiltinDaliDataModule(batch_size=4, device="cpu", **small_builtin)
    dm.prepare_data()
    bad = dm.root / "train" / dm.spec.class_names[0] / "notes.jpg"
    bad.write_text("not a picture")
    skipping = BuiltinDaliDataModule(batch_size=4, device="cpu", **small_builtin)
    _, counter = _fit(skipping, num_sanity_val_steps=0)
    assert counter.train[1] == [4, 4, 2]
    bad_val = dm.root / "val" / dm.spec.class_names[1] / "cut.jpg"
    bad_val.write_bytes(b"\xff\xd8\xff\xe0")
    for backend in (BuiltinDaliDataModule, BuiltinDataModule):
        stopping = backend(batch_size=4, bad_files="error", **small_builtin)
        # One refusal names the bad files of both splits, before anything trains.
        with pytest.raises(BadFilesError, match=r"(?s)train.*notes\.jpg.*val.*cut\.jpg"):
            stopping.setup("fit")


@pytest.mark.dali
def test_channels_last_batches_hold_the_same_values(coordinate_root: Path) -> None:
    plain, _ = _batches(_module("dali", coordinate_root, batch_size=8), "train")
    dm = _module("dali", coordinate_root, batch_size=8, channels_last=True)
    fast, _ = _batches(dm, "train")
    assert fast.shape == plain.shape
    assert fast.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast, plain)


@pytest.mark.dali
def test_factories_pick_the_backend(small_builtin: dict[str, Any], tmp_path: Path) -> None:
    assert isinstance(builtin_datamodule(backend="dali", **small_builtin), DaliImageDataModule)
    tv = builtin_datamodule(backend="torchvision", num_workers=0, **small_builtin)
    assert isinstance(tv, ImageFolderDataModule) and tv.num_workers == 0
    with pytest.raises(Invalid, match=r"data\.device=gpu"):
        folder_datamodule(tmp_path, backend="torchvision", device="gpu")
    with pytest.raises(ValueError, match=r"backend='pil'"):
        folder_datamodule(tmp_path, backend="pil")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_without_one_is_a_clear_error() -> None:
    with pytest.raises(Invalid, match=r"data\.device=gpu"):
        resolve_device("gpu")
    assert resolve_device("auto") == "cpu"


@pytest.mark.dali
@pytest.mark.gpu
def test_gpu_pipeline_matches_the_cpu_pipeline(coordinate_root: Path) -> None:
    cpu, _ = _batches(_module("dali", coordinate_root, batch_size=4, test_views="ten_crop"), "test")
    dm = DaliImageDataModule(coordinate_root, batch_size=4, device="gpu", test_views="ten_crop")
    gpu, _ = _batches(dm, "test")
    assert gpu.is_cuda
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-3)


@pytest.mark.dali
def test_a_file_the_decoder_fails_on_is_named_from_dalis_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A truncated JPEG: DALI's decoder says "Failed to decode sample #i : PATH", so the file
    # is named without decoding the split again (which a GIF-in-disguise still needs).
    from lit_alexnet.data import dali
    from lit_alexnet.data.dali_culprit import UndecodableImage

    for split in ("train", "val"):
        for name in ("a", "b"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(2):
                pixels = np.random.default_rng(i).integers(0, 255, (64, 64, 3), np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)
    bad = tmp_path / "train" / "b" / "1.jpg"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    monkeypatch.setattr(dali, "find_undecodable", lambda files: pytest.fail("decoded again"))
    dm = DaliImageDataModule(tmp_path, batch_size=4, device="cpu", verify="off", stats="imagenet")
    dm.prepare_data()
    dm.setup("fit")
    with pytest.raises(UndecodableImage, match=f"DALI could not decode {bad} \\(Failed to decode"):
        for _ in dm.train_dataloader():
            pass
