"""`prepare --format shards` and `data=shards`: the shards hold the prepared folder's images
byte for byte, DALI's own wds2idx writes the same indexes, an interrupted run ends as an
uninterrupted one, and both backends read the shards as they read the prepared folder, each
epoch split between the ranks in equal steps and reshuffled."""

from __future__ import annotations

import itertools
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import hydra
import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from lit_alexnet.checks import Invalid, Missing
from lit_alexnet.data import prepare as prepare_module
from lit_alexnet.data.formats import (
    MANIFEST,
    SHARDS_INDEX,
    DatasetStats,
    read_manifest,
    read_shards_index,
)
from lit_alexnet.data.prepare import main, prepare_folder, prepare_shards

from .conftest import Composer
from .test_prepare import _picture, _source

MB = 2**20


def _samples(root: Path, split: str) -> list[tuple[str, bytes, int, str]]:
    """Every sample of the split's tars in stored order: (key, JPEG, class, tar name)."""
    found = []
    for tar_path in sorted(root.glob(f"{split}-*.tar")):
        with tarfile.open(tar_path) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
        keys = sorted({name.split(".")[0] for name in members})
        assert set(members) == {f"{k}.{e}" for k in keys for e in ("jpg", "cls")}
        found += [(k, members[f"{k}.jpg"], int(members[f"{k}.cls"]), tar_path.name) for k in keys]
    return found


def _folder_images(root: Path, split: str) -> dict[bytes, int]:
    """The prepared folder's JPEGs with their class indices (sorted class folder names)."""
    classes = sorted(p.name for p in (root / "train").iterdir())
    return {
        path.read_bytes(): classes.index(path.relative_to(root / split).parts[0])
        for path in (root / split).rglob("*")
        if path.is_file()
    }


def _member_bytes(size: int) -> int:
    return 512 + -(-size // 512) * 512  # a tar header, then the data padded to 512-byte blocks


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The test_prepare source (with its bad files) prepared as a folder and as shards."""
    base = tmp_path_factory.mktemp("prepared")
    src = base / "src"
    _source(src)
    prepare_folder(src, base / "folder", val_labels=src / "val.txt", workers=2)
    prepare_shards(src, base / "shards", val_labels=src / "val.txt", shard_size=0.03, workers=2)
    return src, base / "folder", base / "shards"


def test_shards_hold_every_good_image_once_with_its_class(
    prepared: tuple[Path, Path, Path],
) -> None:
    src, folder, shards = prepared
    manifest = read_manifest(shards)
    assert manifest is not None and manifest.format == "shards" and manifest.shard_size == 0.03
    assert manifest.images == {"train": 6, "val": 2}
    assert manifest.bad_files == {"train": 2, "val": 0}
    report = (shards / "bad_files.txt").read_text(encoding="utf-8")
    assert f"{src / 'train/cat/truncated.jpg'}: cannot decode" in report
    assert f"{src / 'train/dog/notes.jpg'}: not an image file" in report
    index = json.loads((shards / SHARDS_INDEX).read_text(encoding="utf-8"))
    assert index["classes"] == ["cat", "dog"]
    for split in ("train", "val"):
        samples = _samples(shards, split)
        # The same JPEG bytes as the prepared folder's, each exactly once, with its class.
        assert sorted((jpeg, label) for _, jpeg, label, _ in samples) == sorted(
            _folder_images(folder, split).items()
        )
        counts = {shard["tar"]: shard["samples"] for shard in index["splits"][split]}
        assert counts == {t: sum(s[3] == t for s in samples) for t in counts}
        assert sorted(counts) == sorted(p.name for p in shards.glob(f"{split}-*.tar"))


def test_samples_are_shuffled_across_shards(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for c in range(3):
        for i in range(8):
            path = src / "train" / f"c{c}" / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_picture(64, 64, 10 * c + i)).save(path)
    (src / "val/c0").mkdir(parents=True)
    Image.fromarray(_picture(64, 64, 99)).save(src / "val/c0/v.png")
    prepare_shards(src, tmp_path / "dst", shard_size=0.04, workers=2)
    labels = [label for _, _, label, _ in _samples(tmp_path / "dst", "train")]
    assert sorted(labels) == [c for c in range(3) for _ in range(8)]
    assert labels != sorted(labels)  # not in folder order
    by_shard: dict[str, set[int]] = {}
    for _, _, label, tar in _samples(tmp_path / "dst", "train"):
        by_shard.setdefault(tar, set()).add(label)
    assert len(by_shard) > 2 and sum(len(c) > 1 for c in by_shard.values()) >= 2


def test_shards_are_filled_up_to_shard_size_in_turn(
    prepared: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    src = prepared[0]
    counts = []
    for shard_size in (0.02, 0.05, 256):
        dst = tmp_path / str(shard_size)
        prepare_shards(src, dst, val_labels=src / "val.txt", shard_size=shard_size, workers=2)
        limit = shard_size * MB
        # Each shard's samples: the bytes they take in the tar, in stored order.
        sizes: dict[str, list[int]] = {}
        for _, jpeg, _, tar in _samples(dst, "train"):
            sizes.setdefault(tar, []).append(_member_bytes(len(jpeg)) + _member_bytes(6))
        shards = [sizes[name] for name in sorted(sizes)]
        for this, following in itertools.pairwise(shards):
            assert sum(this) <= limit < sum(this) + following[0]  # full: the next did not fit
        assert sum(shards[-1]) <= limit
        assert sum(len(s) for s in shards) == 6
        counts.append(len(shards))
    assert counts[0] > counts[1] > counts[2] == 1


def test_indexes_are_those_dalis_wds2idx_writes(
    prepared: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    wds2idx = pytest.importorskip("wds2idx")  # the tool DALI ships (nvidia/dali/tools)
    shards = prepared[2]
    tars = sorted(shards.glob("*.tar"))
    assert len(tars) >= 3
    for tar in tars:
        reference = tmp_path / f"{tar.stem}.idx"
        with wds2idx.IndexCreator(str(tar), str(reference), verbose=False) as creator:
            creator.create_index()
        assert tar.with_suffix(".idx").read_text() == reference.read_text(), tar.name


def test_statistics_are_the_folders(prepared: tuple[Path, Path, Path]) -> None:
    _, folder, shards = prepared
    a, b = (DatasetStats.load(root / "stats.npz") for root in (folder, shards))
    # The same images in another order: the same figures up to float summation order.
    np.testing.assert_allclose(a.mean_image, b.mean_image, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.eigval, b.eigval, rtol=1e-9)
    np.testing.assert_allclose(np.abs(a.eigvec), np.abs(b.eigvec), atol=1e-9)


def test_an_interrupted_run_keeps_finished_shards_and_ends_as_an_uninterrupted_one(
    prepared: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, _, whole = prepared
    dst = tmp_path / "dst"
    encode = prepare_module._prepared_jpeg
    calls: list[Path] = []

    def interrupted(source: Path, quality: int) -> object:
        if len(calls) == 6:
            raise KeyboardInterrupt
        calls.append(source)
        return encode(source, quality)

    monkeypatch.setattr(prepare_module, "_prepared_jpeg", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_shards(src, dst, val_labels=src / "val.txt", shard_size=0.03, workers=1)
    monkeypatch.undo()
    assert read_manifest(dst) is None
    with pytest.raises(Missing, match="not finished by prepare"):
        read_shards_index(dst)
    finished = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in dst.glob("train-*.*")}
    assert len(finished) >= 2  # at least one tar and its index

    prepare_shards(src, dst, val_labels=src / "val.txt", shard_size=0.03, workers=2)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in finished} == finished
    names = sorted(p.name for p in whole.iterdir())
    assert sorted(p.name for p in dst.iterdir()) == names  # no .part file left behind
    for name in names:
        if name != "stats.npz":  # tars, indexes, shards.json, the manifest, the report
            assert (dst / name).read_bytes() == (whole / name).read_bytes(), name
    a, b = (DatasetStats.load(root / "stats.npz") for root in (dst, whole))
    assert np.array_equal(a.mean_image, b.mean_image) and np.array_equal(a.eigvec, b.eigvec)


def test_refusals_name_the_fix(
    prepared: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, folder, shards = prepared
    labels = ["--val-labels", str(src / "val.txt")]
    assert main([str(src), str(shards), *labels]) == 2  # a folder run on a shards root
    assert "rerun with --format shards --shard-size 0.03" in capsys.readouterr().err
    assert main([str(src), str(shards), *labels, "--format", "shards"]) == 2
    assert "--shard-size 0.03" in capsys.readouterr().err
    assert main([str(src), str(folder), *labels, "--format", "shards"]) == 2
    assert "rerun with --format folder" in capsys.readouterr().err
    with pytest.raises(Missing, match="holds a prepared folder, not shards"):
        read_shards_index(folder)
    with pytest.raises(Missing, match="not a shards root"):
        read_shards_index(src)
    with pytest.raises(Invalid, match="shard_size"):
        prepare_shards(src, tmp_path / "new", shard_size=0)
    assert read_shards_index(shards)["classes"] == ["cat", "dog"]


def test_shards_are_not_carried_on_from_changed_sources(
    prepared: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    # The shuffled order, so every finished shard, depends on the whole list of files.
    src = tmp_path / "src"
    shutil.copytree(prepared[0], src)
    prepare_shards(src, tmp_path / "dst", val_labels=src / "val.txt", shard_size=0.03)
    Image.fromarray(_picture(300, 300, 42)).save(src / "train/cat/new.png")
    with pytest.raises(Invalid, match="changed since"):
        prepare_shards(src, tmp_path / "dst", val_labels=src / "val.txt", shard_size=0.03)


def test_manifests_of_earlier_versions_read_as_folders(tmp_path: Path) -> None:
    old = {"size": 256, "quality": 90, "source": "/data", "complete": True, "version": 1}
    (tmp_path / MANIFEST).write_text(json.dumps(old), encoding="utf-8")
    manifest = read_manifest(tmp_path)
    assert manifest is not None and manifest.format == "folder" and manifest.shard_size is None


# DALI reading the shards.


def _dali(root: Path, **kwargs: Any) -> Any:
    from lit_alexnet.data.dali import DaliImageDataModule
    from lit_alexnet.data.shards import ShardsDataModule

    cls = ShardsDataModule if (root / SHARDS_INDEX).is_file() else DaliImageDataModule
    return cls(root, device="cpu", num_threads=1, pipeline_seed=0, **kwargs)


def _sorted(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The batches in an order that depends on the samples alone."""
    weights = torch.linspace(1, 2, images[0].numel(), dtype=torch.float64)
    key = labels.double() * 1e12 + images.flatten(1).double() @ weights
    order = key.argsort()
    return images[order], labels[order]


@pytest.mark.dali
@pytest.mark.parametrize("views", ["center", "ten_crop"])
def test_dali_evaluates_the_shards_as_the_prepared_folder(
    prepared: tuple[Path, Path, Path], views: str
) -> None:
    _, folder, shards = prepared
    out = {}
    for root in (folder, shards):
        # One stats file for both: the shards' own differ by float summation order alone.
        dm = _dali(root, batch_size=1, test_views=views, stats=folder / "stats.npz")
        dm.setup("test")
        batches = list(dm.test_dataloader())
        out[root] = _sorted(torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches]))
    torch.testing.assert_close(out[shards][0], out[folder][0], rtol=0, atol=0)
    assert torch.equal(out[shards][1], out[folder][1])
    assert dm.num_classes == 2 and dm.preprocessing()["class_names"] == ["cat", "dog"]


@pytest.mark.dali
@pytest.mark.gpu
def test_mixed_decoding_of_the_shards_matches_the_cpu_pipeline(
    prepared: tuple[Path, Path, Path],
) -> None:
    from lit_alexnet.data.shards import ShardsDataModule

    out = {}
    for device in ("cpu", "gpu"):
        dm = ShardsDataModule(prepared[2], batch_size=2, device=device, test_views="ten_crop")
        dm.setup("test")
        batches = list(dm.test_dataloader())
        out[device] = (torch.cat([x.cpu() for x, _ in batches]), torch.cat([y for _, y in batches]))
    assert torch.equal(out["gpu"][1].cpu(), out["cpu"][1])
    # nvJPEG's IDCT and chroma upsampling are not libjpeg-turbo's: about a grey level.
    assert (out["gpu"][0] - out["cpu"][0]).abs().mean() < 1.0


def _one_image_per_class(base: Path, picture: Callable[[int], np.ndarray], mb: float) -> Path:
    """Shards of 22 classes of one image each, ``picture(class)``: a label names its sample."""
    for split in ("train", "val"):
        for c in range(22):
            path = base / "src" / split / f"c{c:02d}" / "0.png"
            path.parent.mkdir(parents=True)
            Image.fromarray(picture(c)).save(path)
    prepare_shards(base / "src", base / "shards", shard_size=mb, workers=2)
    assert len(list((base / "shards").glob("train-*.tar"))) >= 4
    return base / "shards"


@pytest.fixture(scope="module")
def numbered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shards of 22 classes of one constant 8x8 image each: a training label names its sample."""
    return _one_image_per_class(tmp_path_factory.mktemp("numbered"), _constant, 0.005)


def _constant(c: int) -> np.ndarray:
    return np.full((8, 8, 3), 10 * c, np.uint8)


def _noise(c: int) -> np.ndarray:
    """8x8 colour noise of its own for class ``c``, which prepare smooths up to 256x256."""
    return np.random.default_rng(c).integers(0, 256, (8, 8, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def textured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """As ``numbered``, but each image colour noise: neither constant nor left-right
    symmetric, so that a training patch's position and flip show in its pixels (a constant
    image looks the same from every patch and both ways round)."""
    for c in range(22):
        assert not np.array_equal(_noise(c), _noise(c)[:, ::-1])
    return _one_image_per_class(tmp_path_factory.mktemp("textured"), _noise, 0.02)


def _rank(root: Path, rank: int, world: int) -> Any:
    dm = _dali(root, batch_size=4)
    # What setup() needs of a DDP Trainer; the seed as rank 0 would broadcast it.
    strategy = SimpleNamespace(broadcast=lambda seed: 1234, root_device=torch.device("cpu"))
    dm.trainer = SimpleNamespace(global_rank=rank, world_size=world, strategy=strategy)
    dm.setup("fit")
    return dm


@pytest.mark.dali
def test_training_ranks_split_each_reshuffled_epoch_in_equal_steps(numbered: Path) -> None:
    loaders = [_rank(numbered, rank, 2).train_dataloader() for rank in (0, 1)]
    assert [len(loader) for loader in loaders] == [3, 3]  # 11 samples each, 4 a batch
    per_rank = [
        [[y for _, b in loader for y in b.tolist()] for _ in range(2)] for loader in loaders
    ]
    for epoch in range(2):
        assert sorted(per_rank[0][epoch] + per_rank[1][epoch]) == list(range(22))
    assert per_rank[0][0] + per_rank[1][0] != per_rank[0][1] + per_rank[1][1]
    # The tars are dealt anew each epoch: a rank does not read the same samples again.
    assert set(per_rank[0][0]) != set(per_rank[0][1])


@pytest.mark.dali
def test_validation_ranks_count_every_sample_once(numbered: Path) -> None:
    seen = []
    for rank in (0, 1, 2):
        seen += [y for _, b in _rank(numbered, rank, 3).val_dataloader() for y in b.tolist()]
    assert sorted(seen) == list(range(22))


@pytest.mark.dali
def test_a_checkpoint_inside_an_epoch_resumes_exactly(textured: Path) -> None:
    # Textured images: the resumed pipeline must also draw the patches and flips the
    # uninterrupted one drew (its random generators restored), not only read the same samples.
    dm = _rank(textured, 1, 2)
    dm.resume_at = lambda: 1  # a checkpoint saved after the epoch's first batch
    loader = dm.train_dataloader()
    batches = iter(loader)
    next(batches)
    state = dm.state_dict()
    rest = [*batches, *loader]  # the epoch's other batches, then the next epoch's

    resumed = _rank(textured, 1, 2)
    resumed.load_state_dict(state)
    resumed_loader = resumed.train_dataloader()
    again = [*resumed_loader, *resumed_loader]
    assert len(again) == len(rest) == 5
    for (x, y), (x2, y2) in zip(rest, again, strict=True):
        assert torch.equal(y, y2) and torch.equal(x, x2)


@pytest.mark.dali
def test_the_datamodule_refuses_a_root_that_is_not_shards(
    prepared: tuple[Path, Path, Path],
) -> None:
    from lit_alexnet.data.backends import shards_datamodule
    from lit_alexnet.data.shards import ShardsDataModule

    with pytest.raises(Missing, match="--format shards"):
        ShardsDataModule(prepared[1], device="cpu")
    dm = shards_datamodule(prepared[2], device="cpu", verify="full", num_workers=2)
    assert isinstance(dm, ShardsDataModule) and dm.prepared


# The torchvision backend reading the shards with the webdataset package.


def _torch_rank(root: Path, rank: int, world: int, num_workers: int = 0) -> Any:
    from lit_alexnet.data.shards import TorchShardsDataModule

    dm = TorchShardsDataModule(root, batch_size=4, num_workers=num_workers)
    strategy = SimpleNamespace(broadcast=lambda seed: 1234, root_device=torch.device("cpu"))
    dm.trainer = SimpleNamespace(global_rank=rank, world_size=world, strategy=strategy)
    dm.setup("fit")
    return dm


def _epoch(loader: Any, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader.sampler.set_epoch(epoch)  # as Lightning does at each epoch's start
    return list(loader)


@pytest.mark.parametrize("views", ["center", "ten_crop"])
def test_torchvision_evaluates_the_shards_as_the_prepared_folder(
    prepared: tuple[Path, Path, Path], views: str
) -> None:
    from lit_alexnet.data.shards import TorchShardsDataModule
    from lit_alexnet.data.torchvision import ImageFolderDataModule

    _, folder, shards = prepared
    out = {}
    for cls, root in ((ImageFolderDataModule, folder), (TorchShardsDataModule, shards)):
        dm = cls(root, batch_size=1, num_workers=0, test_views=views, stats=folder / "stats.npz")
        dm.setup("test")
        batches = list(dm.test_dataloader())
        out[root] = _sorted(torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches]))
    torch.testing.assert_close(out[shards][0], out[folder][0], rtol=0, atol=0)
    assert torch.equal(out[shards][1], out[folder][1])


def test_torchvision_ranks_split_each_reshuffled_epoch_in_equal_steps(numbered: Path) -> None:
    # Rank 1 in two worker processes, which split its tars between them.
    loaders = [
        _torch_rank(numbered, rank, 2, workers).train_dataloader()
        for rank, workers in ((0, 0), (1, 2))
    ]
    assert [len(loader) for loader in loaders] == [3, 3]
    per_rank = [
        [[y for _, b in _epoch(loader, epoch) for y in b.tolist()] for epoch in range(2)]
        for loader in loaders
    ]
    for epoch in range(2):
        assert [len(per_rank[r][epoch]) for r in (0, 1)] == [11, 11]
        assert sorted(per_rank[0][epoch] + per_rank[1][epoch]) == list(range(22))
    assert per_rank[0][0] + per_rank[1][0] != per_rank[0][1] + per_rank[1][1]
    assert set(per_rank[0][0]) != set(per_rank[0][1])


def test_torchvision_ranks_take_the_smallest_parts_step_count(numbered: Path) -> None:
    # 22 samples over 3 ranks: parts of 7, 7 and 8, so 2 batches each, not 3 for the last.
    loaders = [_torch_rank(numbered, rank, 3).train_dataloader() for rank in range(3)]
    assert [len(_epoch(loader, 0)) for loader in loaders] == [2, 2, 2]


def test_torchvision_resumes_inside_an_epoch_exactly(textured: Path) -> None:
    # Textured images, as for DALI: the same samples with the same patches, flips and lighting.
    dm = _torch_rank(textured, 0, 2)
    dm.resume_at = lambda: 1
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(3)
    batches = iter(loader)
    next(batches)
    state = dm.state_dict()
    rest = list(batches)

    resumed = _torch_rank(textured, 0, 2)
    resumed.load_state_dict(state)
    again = _epoch(resumed.train_dataloader(), 3)  # Lightning restores the epoch number
    assert len(again) == len(rest) == 2
    for (x, y), (x2, y2) in zip(rest, again, strict=True):
        assert torch.equal(y, y2) and torch.equal(x, x2)


def test_the_factory_picks_the_backend(prepared: tuple[Path, Path, Path]) -> None:
    from lit_alexnet.data.backends import shards_datamodule
    from lit_alexnet.data.shards import TorchShardsDataModule

    dm = shards_datamodule(prepared[2], backend="torchvision", device="auto", num_workers=0)
    assert isinstance(dm, TorchShardsDataModule) and dm.num_classes == 2
    with pytest.raises(Invalid, match=r"data\.device=gpu"):
        shards_datamodule(prepared[2], backend="torchvision", device="gpu")
    with pytest.raises(Missing, match="--format shards"):
        shards_datamodule(prepared[1], backend="torchvision")


class _Probe(L.LightningModule):
    """A linear model of the batches' mean colour, recording the training labels of each
    epoch: the data path under a real Trainer without AlexNet's CPU time."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, num_classes)
        self.seen: dict[int, list[int]] = {}

    def training_step(self, batch: Any, index: int) -> torch.Tensor:
        x, y = batch
        self.seen.setdefault(self.current_epoch, []).extend(y.tolist())
        return torch.nn.functional.cross_entropy(self.linear(x.mean((2, 3))), y)

    def validation_step(self, batch: Any, index: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.linear(x.mean((2, 3))), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


@pytest.mark.parametrize("backend", [pytest.param("dali", marks=pytest.mark.dali), "torchvision"])
def test_a_lightning_fit_from_the_config_reads_every_sample_each_epoch_anew(
    numbered: Path, composed: Composer, backend: str
) -> None:
    from lit_alexnet.config import validate

    cfg = composed(
        "data=shards",
        f"data.root={numbered}",
        f"data.backend={backend}",
        "data.batch_size=8",
        "data.device=cpu",
        "data.num_workers=0",
    )
    validate(cfg)
    dm = hydra.utils.instantiate(cfg.data)
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    L.seed_everything(0)
    probe = _Probe(dm.num_classes)
    trainer.fit(probe, datamodule=dm)
    assert trainer.num_training_batches == 3
    assert [sorted(probe.seen[epoch]) for epoch in (0, 1)] == [list(range(22))] * 2
    assert probe.seen[0] != probe.seen[1]


def test_the_config_refuses_a_missing_root(tmp_path: Path, composed: Composer) -> None:
    from lit_alexnet.config import validate

    with pytest.raises(Missing, match="--format shards"):
        validate(composed("data=shards", f"data.root={tmp_path / 'nowhere'}"))
