"""Dataset layouts on disk scanned into file lists, the one source of class indices.

Both data backends (torchvision's DataLoader and DALI) read the lists made here, so a class
has the same index whichever reads it, and the same index ``torchvision.datasets.ImageFolder``
gives it: class folders sorted by name.

Two layouts are understood:

- ``split_dir/<class>/**/*.jpg``, ImageFolder's (:func:`scan_class_folders`);
- ``split_dir/*.JPEG`` with a labels file, the layout ImageNet's validation set comes in
  (:func:`scan_labelled_folder`).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from torchvision.datasets.folder import IMG_EXTENSIONS

from lit_alexnet.checks import Invalid, Missing

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageList",
    "class_folders",
    "scan_class_folders",
    "scan_labelled_folder",
    "scan_split",
]

# Matched case-insensitively, as ImageFolder does: ImageNet's files end in .JPEG. ImageFolder's
# list, and the other names JPEG files go by.
IMAGE_EXTENSIONS: tuple[str, ...] = (*IMG_EXTENSIONS, ".jfif", ".jpe")

_LAYOUT = (
    "root/train/<class>/*.jpg and either root/val/<class>/*.jpg or root/val/*.jpg with a "
    "labels file"
)
# How many offending names an error message lists.
_EXAMPLES = 5


@dataclass(frozen=True)
class ImageList:
    """Image files with their class indices into ``classes``.

    Attributes:
        files: the image paths, in reading order.
        labels: each file's class index, 0-based into ``classes``.
        classes: the class names in index order (sorted folder names).
    """

    files: tuple[Path, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.files) != len(self.labels):
            raise ValueError(f"{len(self.files)} files but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.files)

    def without(self, paths: Collection[Path]) -> ImageList:
        """The same list less ``paths``, in the same order and with the same classes."""
        drop = set(paths)
        if not drop:
            return self
        kept = [(f, y) for f, y in zip(self.files, self.labels, strict=True) if f not in drop]
        return ImageList(
            files=tuple(f for f, _ in kept),
            labels=tuple(y for _, y in kept),
            classes=self.classes,
        )


def is_image_file(name: str | Path) -> bool:
    """Whether ``name`` has one of :data:`IMAGE_EXTENSIONS`, in any case, and is not hidden
    (macOS writes ``._IMG_0001.jpg`` metadata files beside the photos)."""
    name = Path(name).name
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _walk(top: Path) -> list[tuple[str, list[str]]]:
    """``(dirpath, filenames)`` under ``top`` with symlinks followed and hidden folders
    (``.ipynb_checkpoints`` holds copies of the images beside it) left out."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.append((dirpath, filenames))
    return found


def class_folders(split_dir: Path) -> list[str]:
    """The sorted class folder names of ``split_dir``, as ImageFolder indexes them; hidden
    folders (``.ipynb_checkpoints``, ``.Trash``) are never classes."""
    if not split_dir.is_dir():
        raise Missing(
            f"{split_dir} does not exist: the data root must hold train/<class>/*.jpg and "
            "val/<class>/*.jpg (set data.root=... to such a folder)"
        )
    classes = sorted(
        e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith(".")
    )
    if not classes:
        raise Missing(f"{split_dir} has no class folders: expected {split_dir}/<class>/")
    return classes


def scan_class_folders(split_dir: Path, classes: Sequence[str] | None = None) -> ImageList:
    """The images of ``split_dir/<class>/**/*.ext`` in ImageFolder's order, with its labels.

    Gives ``ImageFolder(split_dir).samples``: classes sorted, each class folder walked with
    symlinks followed, directories in sorted order, files sorted within each; but hidden files
    and folders, which ImageFolder takes for images and classes, are left out, and ``.jfif``
    and ``.jpe`` files are images.

    Args:
        split_dir: the folder holding one subfolder per class.
        classes: the class names to index by (the training split's, for validation); every
            class folder of ``split_dir`` must be among them, though some may have no folder
            here. None means the class folders of ``split_dir`` itself.

    Raises:
        Missing: ``split_dir`` is missing or has no class folders.
        Invalid: a class folder is not in ``classes``, or holds no image files.
    """
    split_dir = Path(split_dir)
    found = class_folders(split_dir)
    index = {name: i for i, name in enumerate(found if classes is None else classes)}
    unknown = [name for name in found if name not in index]
    if unknown:
        raise Invalid(
            f"{split_dir} has class folders the training split lacks: "
            f"{_examples([split_dir / name for name in unknown])}; every split needs the "
            "training split's classes (remove or rename these folders)"
        )
    files: list[Path] = []
    labels: list[int] = []
    for name in found:
        before = len(files)
        # Sorting os.walk's (dirpath, dirnames, filenames) tuples orders directories by their
        # full path string, which is what ImageFolder does; a depth-first walk would differ
        # for names like "a-b" beside "a/".
        for dirpath, filenames in sorted(_walk(split_dir / name)):
            files.extend(Path(dirpath, f) for f in sorted(filenames) if is_image_file(f))
        if len(files) == before:
            raise Invalid(
                f"{split_dir / name} holds no image files (extensions "
                f"{', '.join(IMAGE_EXTENSIONS)}): add some or delete the folder"
            )
        labels.extend([index[name]] * (len(files) - before))
    return ImageList(tuple(files), tuple(labels), tuple(index))


def scan_labelled_folder(split_dir: Path, labels_file: Path, classes: Sequence[str]) -> ImageList:
    """The images directly in ``split_dir``, labelled by ``labels_file``.

    The labels file has one of two formats, told apart by its first entry:

    - ``path label`` per line (Caffe's and DALI's ``file_list``), e.g.
      ``ILSVRC2012_val_00000001.JPEG 65``, with paths relative to ``split_dir``; images are
      read in the file's order.
    - one label per line, for the image files of ``split_dir`` in sorted filename order.

    A label is a class name from ``classes`` (``n01751748``) or a 0-based index into
    ``classes``; a name wins where both would match. Blank lines and lines starting with
    ``#`` are skipped. The ILSVRC devkit's ground-truth file numbers classes from 1 in its own
    (meta.mat) order, not the sorted synset order: convert it to synset names first.

    Raises:
        FileNotFoundError: ``split_dir``, ``labels_file`` or a listed image is missing.
        ValueError: a malformed line, an unknown label, a duplicate entry, images in
            ``split_dir`` that the file does not label, or a count that does not match.
    """
    split_dir, labels_file = Path(split_dir), Path(labels_file)
    if not split_dir.is_dir():
        raise Missing(f"{split_dir} does not exist: expected {_LAYOUT}")
    if not labels_file.is_file():
        raise Missing(
            f"labels file {labels_file} does not exist: give a file of 'path label' lines or "
            f"one label per line for the images of {split_dir}"
        )
    if not classes:
        raise Invalid(f"no classes to label {split_dir} with: the training split has none")
    entries = _read_entries(labels_file)
    if not entries:
        raise Invalid(
            f"{labels_file} holds no labels: expected 'path label' lines or one label per line"
        )
    present = sorted(e.name for e in os.scandir(split_dir) if e.is_file() and is_image_file(e.name))
    labelled = _LabelsFile(split_dir, labels_file, classes, present)
    if len(entries[0][1].split()) == 1:
        files, labels = labelled.bare(entries)
    else:
        files, labels = labelled.paths(entries)
    return ImageList(tuple(files), tuple(labels), tuple(classes))


class _LabelsFile:
    """A labels file for the images directly in ``split_dir`` (``present``, sorted)."""

    def __init__(
        self, split_dir: Path, labels_file: Path, classes: Sequence[str], present: list[str]
    ) -> None:
        self.split_dir, self.labels_file = split_dir, labels_file
        self.classes, self.present = classes, present
        self.index = {name: i for i, name in enumerate(classes)}

    def label(self, lineno: int, token: str) -> int:
        """A label token as a class index: a class name, else a 0-based index."""
        if token in self.index:
            return self.index[token]
        where, count = f"{self.labels_file}:{lineno}", len(self.classes)
        if token.isascii() and token.isdigit():
            if int(token) < count:
                return int(token)
            raise Invalid(
                f"{where}: label {token} is out of range: integer labels are 0-based indices "
                f"into the {count} sorted training class folders"
            )
        raise Invalid(
            f"{where}: label {token!r} is neither a training class folder name "
            f"(e.g. {self.classes[0]!r}) nor a class index 0-{count - 1}"
        )

    def bare(self, entries: list[tuple[int, str]]) -> tuple[list[Path], list[int]]:
        """One label per line, for the image files in sorted order."""
        for lineno, text in entries:
            if len(text.split()) != 1:
                raise Invalid(
                    f"{self.labels_file}:{lineno}: expected a single label like the lines "
                    f"before, got {text!r}"
                )
        if len(entries) != len(self.present):
            raise Invalid(
                f"{self.labels_file} holds {len(entries)} labels but {self.split_dir} holds "
                f"{len(self.present)} image files: a file of bare labels needs one per image, "
                "in sorted filename order (or use 'path label' lines)"
            )
        files = [self.split_dir / name for name in self.present]
        return files, [self.label(n, text) for n, text in entries]

    def paths(self, entries: list[tuple[int, str]]) -> tuple[list[Path], list[int]]:
        """``path label`` lines, every image listed once, in the file's order."""
        files: list[Path] = []
        labels: list[int] = []
        seen: dict[Path, int] = {}
        for lineno, text in entries:
            where = f"{self.labels_file}:{lineno}"
            parts = text.rsplit(None, 1)  # the path may hold spaces, the label does not
            if len(parts) != 2:
                raise Invalid(f"{where}: expected 'path label' like the lines before, got {text!r}")
            path = self.split_dir / parts[0]
            if path in seen:
                raise Invalid(f"{where}: {parts[0]} is listed already on line {seen[path]}")
            if not path.is_file():
                raise Missing(f"{where}: {path} does not exist")
            seen[path] = lineno
            files.append(path)
            labels.append(self.label(lineno, parts[1]))
        missing = [self.split_dir / n for n in self.present if self.split_dir / n not in seen]
        if missing:
            raise Invalid(
                f"{len(missing)} image files in {self.split_dir} have no label in "
                f"{self.labels_file}, e.g. {_examples(missing)}: label them or move them out "
                "of the folder"
            )
        return files, labels


def scan_split(
    root: Path,
    split: str,
    classes: Sequence[str] | None = None,
    labels_file: Path | None = None,
) -> ImageList:
    """The images of ``root/split``: class folders, or a flat folder with ``labels_file``.

    ``classes`` gives the class indices (pass the training split's for the others); with a
    labels file and no ``classes``, the class folders of ``root/train`` are used.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise Missing(f"data root {root} does not exist: expected {_LAYOUT}")
    split_dir = root / split
    if not split_dir.is_dir():
        raise Missing(f"{split_dir} does not exist: expected {_LAYOUT}")
    if labels_file is not None:
        if classes is None:
            classes = class_folders(root / "train")
        images = scan_labelled_folder(split_dir, labels_file, classes)
    else:
        has_classes = any(e.is_dir() and not e.name.startswith(".") for e in os.scandir(split_dir))
        flat = [e.name for e in os.scandir(split_dir) if e.is_file() and is_image_file(e.name)]
        if not has_classes and flat:
            raise Missing(
                f"{split_dir} holds {len(flat)} images but no class folders: sort them into "
                f"{split_dir}/<class>/, or label them with a labels file (data.val_labels=FILE)"
            )
        images = scan_class_folders(split_dir, classes)
    if not images:
        raise Invalid(f"{split_dir} holds no images: expected {_LAYOUT}")
    return images


def _read_entries(labels_file: Path) -> list[tuple[int, str]]:
    """The (line number, text) of each entry, less blank lines and ``#`` comment lines."""
    entries = []
    with labels_file.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            text = line.strip()
            if text and not text.startswith("#"):
                entries.append((lineno, text))
    return entries


def _examples(paths: Sequence[Path]) -> str:
    shown = ", ".join(str(p) for p in paths[:_EXAMPLES])
    return shown + (f" and {len(paths) - _EXAMPLES} more" if len(paths) > _EXAMPLES else "")
