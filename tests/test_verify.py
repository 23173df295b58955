"""Finding files that are not readable images (data.bad_files, the verify command)."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lit_alexnet.data import bad_files, verify
from lit_alexnet.data.bad_files import (
    BadFile,
    BadFilesError,
    bad_files_report,
    check_image_list,
    find_bad_files,
)
from lit_alexnet.data.folders import ImageList, scan_split
from lit_alexnet.data.verify import main

REASONS = {
    "fast": {
        # No end marker near the end: decoded to tell it from a JPEG with data appended.
        "truncated.jpg": r"^cannot decode: .*truncated",
        "text.jpg": r"^not an image file$",
        "empty.jpg": r"^empty file$",
        "anim.jpg": r"^a GIF image, which DALI's decoder cannot read",
    },
    "full": {
        "truncated.jpg": r"^cannot decode: .*truncated",
        "text.jpg": r"^not an image file$",
        "empty.jpg": r"^empty file$",
        "anim.jpg": r"^a GIF image, which DALI's decoder cannot read",
    },
}


def image_bytes(size: int, fmt: str = "JPEG", seed: int = 0) -> bytes:
    # Noise compresses badly, so even a small image has a long entropy-coded body.
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """train/ with good images of several kinds and three bad files; val/ all good."""
    good = image_bytes(32)
    for name in ("a", "b"):
        for i in range(3):
            path = tmp_path / "train" / name / f"{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(good)
        (tmp_path / "val" / name).mkdir(parents=True)
        (tmp_path / "val" / name / "0.jpg").write_bytes(good)
    bad = tmp_path / "train" / "b"
    whole = image_bytes(128, seed=1)
    (bad / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (bad / "text.jpg").write_text("this is not a JPEG\n")
    (bad / "empty.jpg").write_bytes(b"")
    # Pillow reads it, DALI does not: it would stop a DALI pipeline mid-epoch.
    frames = [Image.open(io.BytesIO(image_bytes(16, seed=s))) for s in (2, 3)]
    frames[0].save(bad / "anim.jpg", format="GIF", save_all=True, append_images=frames[1:])
    # Readable, though unusual: padding after the end-of-image marker, and other formats.
    (tmp_path / "train" / "a" / "padded.JPG").write_bytes(good + b"\0" * 300)
    # A phone's JPEG with a video appended: its end marker is far from the file's end.
    (tmp_path / "train" / "a" / "motion.jpg").write_bytes(good + b"ftypmp42" + b"\1" * 9000)
    (tmp_path / "train" / "a" / "image.png").write_bytes(image_bytes(32, "PNG"))
    (tmp_path / "train" / "a" / "image.bmp").write_bytes(image_bytes(32, "BMP"))
    return tmp_path


def bad_names(found: list[BadFile]) -> list[str]:
    return [b.path.name for b in found]


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_finds_exactly_the_bad_files(root: Path, mode: str) -> None:
    images = scan_split(root, "train")

    found = find_bad_files(images.files, mode=mode, workers=2)

    # In input order: the scan sorts b's files by name.
    assert bad_names(found) == ["anim.jpg", "empty.jpg", "text.jpg", "truncated.jpg"]
    for bad in found:
        assert bad.path.parent == root / "train" / "b"
        assert re.search(REASONS[mode][bad.path.name], bad.reason), bad.reason


def test_truncated_png(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    path.write_bytes(image_bytes(64, "PNG")[:-40])

    assert bad_names(find_bad_files([path], mode="fast")) == ["cut.png"]
    assert find_bad_files([path], mode="fast")[0].reason == "truncated PNG (no IEND chunk)"
    assert find_bad_files([path], mode="full")[0].reason.startswith("cannot decode: ")


def test_off_checks_nothing(root: Path) -> None:
    images = scan_split(root, "train")
    assert find_bad_files(images.files, mode="off") == []
    assert check_image_list(images, mode="off", on_bad="error") is images


def test_skip_leaves_bad_files_out_with_one_warning(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    images = scan_split(root, "train")

    with caplog.at_level(logging.WARNING, logger="lit_alexnet.data.bad_files"):
        kept = check_image_list(images, on_bad="skip", what=str(root / "train"))

    bad = {root / "train" / "b" / n for n in ("truncated.jpg", "text.jpg", "empty.jpg", "anim.jpg")}
    assert kept == images.without(bad)
    assert len(kept) == len(images) - 4
    assert kept.classes == images.classes
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert f"4 of {len(images)} files in {root / 'train'}" in record.getMessage()
    for path in bad:
        assert str(path) in record.getMessage()


def test_error_names_every_bad_file(root: Path) -> None:
    images = scan_split(root, "train")

    with pytest.raises(BadFilesError) as raised:
        check_image_list(images, mode="full", on_bad="error")

    message = str(raised.value)
    for name in ("truncated.jpg", "text.jpg", "empty.jpg", "anim.jpg"):
        assert str(root / "train" / "b" / name) in message
    assert "data.bad_files=skip" in message
    assert isinstance(raised.value, ValueError)


def test_all_good_returns_the_same_list(root: Path) -> None:
    images = scan_split(root, "val", classes=["a", "b"])
    assert check_image_list(images, on_bad="error") is images


def test_bad_choices() -> None:
    images = ImageList((), (), ("a",))
    with pytest.raises(ValueError, match=r"mode='quick': choose one of \['fast', 'full', 'off'\]"):
        check_image_list(images, mode="quick")
    with pytest.raises(ValueError, match=r"on_bad='ignore': choose one of \['skip', 'error'\]"):
        check_image_list(images, on_bad="ignore")
    with pytest.raises(ValueError, match=r"mode='quick'"):
        find_bad_files([], mode="quick")


def test_long_report_is_cut_short() -> None:
    bad = [BadFile(Path(f"/d/{i}.jpg"), "empty file") for i in range(25)]

    report = bad_files_report(bad, 100, "/d")

    assert report.splitlines()[0] == "25 of 100 files in /d cannot be trained on:"
    assert "/d/19.jpg: empty file" in report
    assert "/d/20.jpg" not in report
    assert report.splitlines()[-1] == "  and 5 more"


def test_progress_bar_path(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bad_files, "_PROGRESS_MIN", 1)
    monkeypatch.setattr(bad_files, "_CHUNK", 2)
    images = scan_split(root, "train")

    found = find_bad_files(images.files, progress=True)

    assert bad_names(found) == ["anim.jpg", "empty.jpg", "text.jpg", "truncated.jpg"]


def test_cli_exit_codes(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(root), "--mode", "full"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"4 of 16 files in {root} cannot be trained on:")
    assert str(root / "train" / "b" / "text.jpg") in out

    assert main([str(root), "--split", "val"]) == 0
    assert capsys.readouterr().out == "2 files checked, all readable\n"

    assert main([str(tmp_path / "missing")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: data root {tmp_path / 'missing'} does not exist")
    assert "Traceback" not in captured.err

    with pytest.raises(SystemExit) as usage:
        main([str(root), "--mode", "slow"])
    assert usage.value.code == 2


def test_cli_flat_val_with_labels(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flat = root / "val"
    for path in sorted(flat.glob("*/*.jpg")):
        path.rename(flat / f"{path.parent.name}_{path.name}")
        path.parent.rmdir()
    labels = root / "val.txt"
    labels.write_text("a_0.jpg a\nb_0.jpg 1\n")

    assert main([str(root), "--split", "val", "--val-labels", str(labels)]) == 0
    assert capsys.readouterr().out == "2 files checked, all readable\n"

    labels.write_text("a_0.jpg a\nb_0.jpg c\n")
    assert main([str(root), "--split", "val", "--val-labels", str(labels)]) == 2
    assert f"{labels}:2: label 'c'" in capsys.readouterr().err


def test_cli_with_no_root_checks_the_builtin_dataset_and_says_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lit_alexnet.data.builtin import BuiltinSpec

    monkeypatch.setenv("LIT_ALEXNET_CACHE", str(tmp_path))
    assert verify.main([]) == 0
    out = capsys.readouterr().out
    spec = BuiltinSpec()
    assert f"the built-in dataset: {tmp_path / spec.dirname}" in out
    total = spec.num_classes * (spec.train_per_class + spec.val_per_class)
    assert f"{total} files checked, all readable" in out


def test_under_ddp_only_rank_0_reads_the_files(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from lit_alexnet.data.torchvision import ImageFolderDataModule

    sent: list[object] = []

    def trainer(rank: int, received: object = None) -> SimpleNamespace:
        def broadcast(obj: object, src: int = 0) -> object:
            sent.append(obj)
            return obj if rank == 0 else received

        return SimpleNamespace(
            world_size=2, global_rank=rank, strategy=SimpleNamespace(broadcast=broadcast)
        )

    rank0 = ImageFolderDataModule(root, num_workers=0)
    rank0.trainer = trainer(0)  # type: ignore[assignment]
    rank0.check_splits("train", "val")
    # Rank 1 reads no file: it takes rank 0's findings.
    monkeypatch.setattr(bad_files, "find_bad_files", lambda *a, **k: pytest.fail("rank 1 read"))
    rank1 = ImageFolderDataModule(root, num_workers=0)
    rank1.trainer = trainer(1, received=sent[0])  # type: ignore[assignment]
    rank1.check_splits("train", "val")

    assert rank1.image_list("train") == rank0.image_list("train")
    assert len(rank1.image_list("train")) == len(scan_split(root, "train")) - 4
    # A refusal travels too: rank 1 raises the same error instead of waiting.
    stopping = ImageFolderDataModule(root, num_workers=0, bad_files="error")
    stopping.trainer = trainer(1, received="4 of 14 files ... cannot be trained on")  # type: ignore[assignment]
    with pytest.raises(BadFilesError, match="cannot be trained on"):
        stopping.check_splits("train", "val")


def test_off_a_terminal_long_work_prints_progress_lines_as_it_goes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # In a log file Rich shows only the bar's final state: hours of `prepare` looked like a hang.
    from lit_alexnet.data.parallel import progress_bar

    with progress_bar(every_s=0) as bar:
        task = bar.add_task("Checking 3 files", total=3)
        for done in range(1, 4):
            bar.advance(task)
            assert f"Checking 3 files: {done}/3 after 0:00:00" in capsys.readouterr().err
