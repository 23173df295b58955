"""`python -m lit_alexnet.data.prepare`: the paper's 256x256 images written once, checked
against torchvision's own Resize(256) + CenterCrop(256), numpy's statistics, and a resumed
run against an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torchvision.transforms import v2

from lit_alexnet.data import prepare as prepare_module
from lit_alexnet.data.formats import MANIFEST, DatasetStats, read_manifest
from lit_alexnet.data.prepare import main, prepare_folder


def _picture(width: int, height: int, seed: int) -> np.ndarray:
    """Smooth colour with some texture, so that resizing and JPEG both have work to do."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 200 / width, ys * 200 / height, (xs + ys) * 100 / (width + height)], -1)
    return np.clip(base + rng.normal(0, 3, (height, width, 3)), 0, 255).astype(np.uint8)


def _source(root: Path) -> dict[str, Path]:
    """A root of varied real-world files: sizes both ways up, PNG, grayscale, EXIF-rotated, a
    GIF named .jpg (which DALI cannot decode), a flat val folder with a labels file, and two
    broken files."""
    files: dict[str, Path] = {}

    def save(key: str, rel: str, array: np.ndarray, **options: object) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path, **options)  # type: ignore[arg-type]
        files[key] = path

    save("landscape", "train/cat/a.jpg", _picture(500, 375, 0), quality=95)
    save("portrait", "train/cat/nested/b.JPEG", _picture(300, 420, 1), quality=95, format="JPEG")
    save("png", "train/dog/c.png", _picture(333, 256, 2))
    save("gray", "train/dog/d.jpg", _picture(400, 300, 3)[..., 0], quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone's portrait photo: landscape pixels, "rotate 90 clockwise"
    save("exif", "train/dog/e.jpg", _picture(480, 320, 4), quality=95, exif=exif.tobytes())
    save("gif", "train/dog/f.jpg", _picture(280, 260, 5), format="GIF")
    save("val0", "val/v0.JPEG", _picture(260, 300, 6), quality=95, format="JPEG")
    save("val1", "val/v1.JPEG", _picture(512, 300, 7), quality=95, format="JPEG")
    (root / "val.txt").write_text("v0.JPEG dog\nv1.JPEG cat\n", encoding="utf-8")
    whole = files["landscape"].read_bytes()
    files["truncated"] = root / "train/cat/truncated.jpg"
    files["truncated"].write_bytes(whole[: len(whole) // 2])
    files["text"] = root / "train/dog/notes.jpg"
    files["text"].write_text("not a picture", encoding="utf-8")
    return files


def _reference(path: Path) -> np.ndarray:
    """torchvision's Resize(256) + CenterCrop(256) of the upright RGB picture."""
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
    crop = v2.Compose([v2.Resize(256), v2.CenterCrop(256)])(upright)
    return np.asarray(crop)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "JPEG"
        return np.asarray(image.convert("RGB")).astype(np.float64)


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    return tmp_path / "src", _source(tmp_path / "src")


def _run(src: Path, dst: Path, workers: int = 2) -> prepare_module.Manifest:
    return prepare_folder(src, dst, val_labels=src / "val.txt", workers=workers)


def test_every_image_is_the_papers_256_square_as_torchvision_makes_it(
    source: tuple[Path, dict[str, Path]], tmp_path: Path
) -> None:
    src, files = source
    dst = tmp_path / "dst"
    manifest = _run(src, dst)
    written = {
        "landscape": dst / "train/cat/a.jpg",
        "portrait": dst / "train/cat/nested/b.JPEG",
        "png": dst / "train/dog/c.png.jpg",
        "gray": dst / "train/dog/d.jpg",
        "exif": dst / "train/dog/e.jpg",
        "gif": dst / "train/dog/f.jpg",
        # The flat val folder comes out sorted into class folders by its labels.
        "val0": dst / "val/dog/v0.JPEG",
        "val1": dst / "val/cat/v1.JPEG",
    }
    for key, path in written.items():
        pixels = _pixels(path)
        assert pixels.shape == (256, 256, 3), key
        # JPEG at quality 90 against the uncompressed resize: about one grey level.
        assert np.abs(pixels - _reference(files[key])).mean() < 2.5, key
    assert sorted(p for p in dst.rglob("*") if p.is_file() and p.suffix != ".npz") == sorted(
        [*written.values(), dst / MANIFEST, dst / "bad_files.txt"]
    )
    assert manifest.complete and manifest.quality == 90 and manifest.size == 256
    assert manifest.images == {"train": 6, "val": 2}
    assert manifest.bad_files == {"train": 2, "val": 0}
    report = (dst / "bad_files.txt").read_text(encoding="utf-8")
    assert "2 of 10 files" in report
    assert f"{files['truncated']}: cannot decode" in report
    assert f"{files['text']}: not an image file" in report
    # The upright picture, not the stored one.
    stored = np.asarray(Image.open(files["exif"]).convert("RGB").resize((256, 256)), np.float64)
    assert np.abs(_pixels(written["exif"]) - stored).mean() > 20


def test_statistics_are_those_of_the_written_training_images(
    source: tuple[Path, dict[str, Path]], tmp_path: Path
) -> None:
    src, _ = source
    dst = tmp_path / "dst"
    _run(src, dst)
    stats = DatasetStats.load(dst / "stats.npz")
    images = np.stack([_pixels(p) / 255 for p in sorted((dst / "train").rglob("*.*"))])
    pixels = images.reshape(-1, 3)
    np.testing.assert_allclose(stats.mean_image, images.mean(0), atol=1e-6)
    np.testing.assert_allclose(stats.mean_rgb, pixels.mean(0), atol=1e-9)
    eigval = np.linalg.eigvalsh(np.cov(pixels.T, bias=True))[::-1]
    np.testing.assert_allclose(stats.eigval, eigval, rtol=1e-6)


def test_an_interrupted_run_carries_on_and_ends_as_an_uninterrupted_one(
    source: tuple[Path, dict[str, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, _ = source
    whole = tmp_path / "whole"
    _run(src, whole)

    dst = tmp_path / "dst"
    process = prepare_module._process
    done: list[Path] = []

    def interrupted(job: prepare_module._Job, quality: int) -> object:
        if len(done) == 3:
            raise KeyboardInterrupt
        done.append(job.target)
        return process(job, quality)

    monkeypatch.setattr(prepare_module, "_process", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(src, dst, workers=1)
    monkeypatch.undo()
    assert read_manifest(dst) is None  # begun, not complete: training would resize
    kept = {p: p.stat().st_mtime_ns for p in done if p.is_file()}  # the bad file is not
    assert len(kept) == 2

    _run(src, dst)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # kept, not written again
    files = sorted(p.relative_to(whole) for p in whole.rglob("*") if p.is_file())
    assert sorted(p.relative_to(dst) for p in dst.rglob("*") if p.is_file()) == files
    for rel in files:
        if rel.suffix != ".npz":
            assert (dst / rel).read_bytes() == (whole / rel).read_bytes(), rel
    a, b = (DatasetStats.load(root / "stats.npz") for root in (dst, whole))
    assert np.array_equal(a.mean_image, b.mean_image) and np.array_equal(a.eigvec, b.eigvec)
    assert json.loads((dst / MANIFEST).read_text()) == json.loads((whole / MANIFEST).read_text())


def test_refusals_name_the_folder_and_the_fix(
    source: tuple[Path, dict[str, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, _ = source
    argv = ["--val-labels", str(src / "val.txt")]
    assert main([str(src), str(src / "out"), *argv]) == 2
    assert "inside the source" in capsys.readouterr().err

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "thesis.tex").write_text("keep me", encoding="utf-8")
    assert main([str(src), str(occupied), *argv]) == 2
    assert f"{occupied} is not empty" in capsys.readouterr().err
    assert (occupied / "thesis.tex").read_text(encoding="utf-8") == "keep me"

    dst = tmp_path / "dst"
    assert main([str(src), str(dst), *argv, "--quality", "80"]) == 0
    assert f"data.root={dst}" in capsys.readouterr().out
    assert main([str(src), str(dst), *argv]) == 2
    assert "rerun with --quality 80" in capsys.readouterr().err

    assert main([str(tmp_path / "nowhere"), str(tmp_path / "new"), *argv]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("backend", [pytest.param("dali", marks=pytest.mark.dali), "torchvision"])
def test_a_prepared_root_reads_as_the_same_root_without_its_manifest(
    source: tuple[Path, dict[str, Path]], tmp_path: Path, backend: str
) -> None:
    """With the manifest the pipelines skip their resize, which on 256x256 images must change
    nothing: the same batches as the resize path, which other tests hold to torchvision's."""
    from lit_alexnet.data.dali import DaliImageDataModule
    from lit_alexnet.data.torchvision import ImageFolderDataModule

    src, _ = source
    dst = tmp_path / "dst"
    _run(src, dst)

    def val_batch(root: Path) -> torch.Tensor:
        if backend == "dali":
            dm = DaliImageDataModule(root, batch_size=2, device="cpu", num_threads=1)
        else:
            dm = ImageFolderDataModule(root, batch_size=2, num_workers=0)
        assert dm.prepared == (root / MANIFEST).is_file()
        dm.setup("test")
        return torch.cat([x for x, _ in dm.test_dataloader()])

    prepared = val_batch(dst)
    (dst / MANIFEST).rename(tmp_path / MANIFEST)
    assert torch.equal(prepared, val_batch(dst))
