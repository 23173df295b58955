"""Scanning dataset layouts into file lists (lit_alexnet.data.folders)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from torchvision.datasets import ImageFolder

from lit_alexnet.data.folders import (
    ImageList,
    class_folders,
    scan_class_folders,
    scan_labelled_folder,
    scan_split,
)

CLASSES = ["n01", "n02", "n03"]


def touch(path: Path) -> Path:
    # Scanning never opens the files, so any bytes will do.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff")
    return path


def make_classes(split_dir: Path, per_class: int = 2, classes: list[str] = CLASSES) -> None:
    for name in classes:
        for i in range(per_class):
            touch(split_dir / name / f"{i}.jpg")


def make_flat_val(split_dir: Path, count: int) -> list[str]:
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, count + 1)]
    for name in names:
        touch(split_dir / name)
    return names


def pairs(images: ImageList) -> list[tuple[Path, int]]:
    return list(zip(images.files, images.labels, strict=True))


def test_matches_imagefolder_with_nesting_case_and_symlinks(tmp_path: Path) -> None:
    split = tmp_path / "train"
    for rel in [
        "zebra/b.JPG",
        "zebra/a.jpeg",
        "zebra/notes.txt",  # not an image extension: left out
        "zebra/sub/c.PNG",
        "zebra/sub-x/d.Jpg",  # "sub-x" sorts before "sub/" as a path string
        "zebra/sub/deeper/e.webp",
        "apple/z.tif",
        "apple/Y.jpg",
        "apple/.hidden/q.bmp",
        "mango/only.JPEG",
    ]:
        touch(split / rel)
    (tmp_path / "elsewhere").mkdir()
    touch(tmp_path / "elsewhere" / "linked.jpg")
    os.symlink(tmp_path / "elsewhere", split / "mango" / "link")

    images = scan_class_folders(split)
    reference = ImageFolder(str(split))

    assert images.classes == tuple(reference.classes) == ("apple", "mango", "zebra")
    # ImageFolder's samples but the hidden folder's file.
    visible = [(Path(p), y) for p, y in reference.samples if "/." not in p]
    assert pairs(images) == visible
    assert split / "mango" / "link" / "linked.jpg" in images.files
    assert len(images) == 9


def test_jpeg_extensions_count_and_hidden_files_do_not(tmp_path: Path) -> None:
    for rel in ["a/x.jfif", "a/y.JPE", "a/._y.jpg", "a/.DS_Store", "a/.ipynb_checkpoints/y.jpg"]:
        touch(tmp_path / "train" / rel)

    images = scan_class_folders(tmp_path / "train")

    assert images.files == (tmp_path / "train/a/x.jfif", tmp_path / "train/a/y.JPE")


def test_given_classes_keep_their_indices(tmp_path: Path) -> None:
    make_classes(tmp_path / "val", per_class=1, classes=["n03", "n01"])

    images = scan_class_folders(tmp_path / "val", classes=CLASSES)

    assert images.classes == tuple(CLASSES)
    assert pairs(images) == [(tmp_path / "val/n01/0.jpg", 0), (tmp_path / "val/n03/0.jpg", 2)]


def test_unknown_class_folder_is_named(tmp_path: Path) -> None:
    make_classes(tmp_path / "val", per_class=1, classes=["n01", "n99"])

    with pytest.raises(ValueError, match=r"val/n99"):
        scan_class_folders(tmp_path / "val", classes=CLASSES)


def test_class_folder_without_images_is_named(tmp_path: Path) -> None:
    make_classes(tmp_path / "train", per_class=1, classes=["n01"])
    touch(tmp_path / "train" / "n02" / "readme.txt")

    with pytest.raises(ValueError, match=r"train/n02 holds no image files"):
        scan_class_folders(tmp_path / "train")


def test_class_folders_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing does not exist"):
        class_folders(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no class folders"):
        class_folders(tmp_path / "empty")


def test_hidden_folders_are_never_classes(tmp_path: Path) -> None:
    make_classes(tmp_path / "train", per_class=1)
    touch(tmp_path / "train" / ".ipynb_checkpoints" / "0.jpg")
    (tmp_path / "train" / ".Trash").mkdir()

    assert class_folders(tmp_path / "train") == CLASSES
    assert scan_class_folders(tmp_path / "train").classes == tuple(CLASSES)
    # A flat folder beside a hidden one is still flat: the error says to sort or label it.
    make_flat_val(tmp_path / "val", 2)
    (tmp_path / "val" / ".ipynb_checkpoints").mkdir()
    with pytest.raises(FileNotFoundError, match="no class folders"):
        scan_split(tmp_path, "val")


def test_without_keeps_order_and_classes(tmp_path: Path) -> None:
    files = tuple(tmp_path / f"{i}.jpg" for i in range(4))
    images = ImageList(files, (0, 1, 2, 1), ("a", "b", "c"))

    kept = images.without([files[1], files[3], tmp_path / "absent.jpg"])

    assert kept == ImageList((files[0], files[2]), (0, 2), ("a", "b", "c"))
    assert images.without([]) == images


def test_path_label_lines(tmp_path: Path) -> None:
    val = tmp_path / "val"
    names = make_flat_val(val, 4)
    labels = tmp_path / "val.txt"
    labels.write_text(
        f"# path label\n{names[2]} 2\n\n{names[0]} n02\n  {names[3]}   0  \n{names[1]} n03\n"
    )

    images = scan_labelled_folder(val, labels, CLASSES)

    assert pairs(images) == [
        (val / names[2], 2),
        (val / names[0], 1),
        (val / names[3], 0),
        (val / names[1], 2),
    ]
    assert images.classes == tuple(CLASSES)


def test_bare_labels_follow_sorted_filenames(tmp_path: Path) -> None:
    val = tmp_path / "val"
    names = make_flat_val(val, 3)
    touch(val / "readme.txt")  # not an image: needs no label
    labels = tmp_path / "ground_truth.txt"
    labels.write_text("n03\n# a comment\n0\n\nn02\n")

    images = scan_labelled_folder(val, labels, CLASSES)

    assert pairs(images) == [(val / names[0], 2), (val / names[1], 0), (val / names[2], 1)]


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("{0} n01\n{1} n07\n{2} 0\n", ValueError, r"val.txt:2: label 'n07'"),
        ("{0} 0\n{1} 3\n{2} 0\n", ValueError, r"val.txt:2: label 3 is out of range"),
        ("{0} 0\n{1} 1\n{2} 0\nnope.JPEG 1\n", FileNotFoundError, r"val.txt:4: .*nope.JPEG"),
        ("{0} 0\n{1} 1\n", ValueError, r"1 image files in .* have no label .*00000003"),
        ("{0} 0\n{1} 1\n{0} 2\n", ValueError, r"val.txt:3: .*listed already on line 1"),
        ("{0} 0\n{1}\n{2} 0\n", ValueError, r"val.txt:2: expected 'path label'"),
        ("0\n1 2\n0\n", ValueError, r"val.txt:2: expected a single label"),
        ("0\n1\n", ValueError, r"val.txt holds 2 labels but .* holds 3 image files"),
        ("2\n-1\n0\n", ValueError, r"val.txt:2: label '-1'"),
        ("# nothing\n\n", ValueError, r"val.txt holds no labels"),
    ],
)
def test_labels_file_errors(tmp_path: Path, text: str, error: type, match: str) -> None:
    val = tmp_path / "val"
    names = make_flat_val(val, 3)
    labels = tmp_path / "val.txt"
    labels.write_text(text.format(*names))

    with pytest.raises(error, match=match):
        scan_labelled_folder(val, labels, CLASSES)


def test_unlabelled_images_are_counted_with_examples(tmp_path: Path) -> None:
    val = tmp_path / "val"
    names = make_flat_val(val, 9)
    labels = tmp_path / "val.txt"
    labels.write_text(f"{names[0]} 0\n")

    with pytest.raises(ValueError, match=r"^8 image files .* and 3 more: label them"):
        scan_labelled_folder(val, labels, CLASSES)


def test_scan_split_layouts(tmp_path: Path) -> None:
    make_classes(tmp_path / "train")
    names = make_flat_val(tmp_path / "val", 2)
    labels = tmp_path / "val.txt"
    labels.write_text("n02\n2\n")

    train = scan_split(tmp_path, "train")
    val = scan_split(tmp_path, "val", labels_file=labels)  # classes from train

    assert train.classes == val.classes == tuple(CLASSES)
    assert len(train) == 6
    assert pairs(val) == [(tmp_path / "val" / names[0], 1), (tmp_path / "val" / names[1], 2)]


def test_scan_split_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"data root .*nowhere does not exist.*train/"):
        scan_split(tmp_path / "nowhere", "train")
    make_classes(tmp_path / "train")
    with pytest.raises(FileNotFoundError, match=r"val does not exist: expected root/train/"):
        scan_split(tmp_path, "val")
    make_flat_val(tmp_path / "val", 2)
    with pytest.raises(FileNotFoundError, match=r"val holds 2 images but no class folders"):
        scan_split(tmp_path, "val", classes=CLASSES)
    (tmp_path / "test").mkdir()
    with pytest.raises(FileNotFoundError, match=r"test has no class folders"):
        scan_split(tmp_path, "test")
