"""``python -m lit_alexnet.data.verify ROOT``: report the files of a dataset that cannot be
trained on, before training finds them (the checks are :mod:`lit_alexnet.data.bad_files`'s).

    python -m lit_alexnet.data.verify /data/ilsvrc2012 --val-labels val.txt --mode full
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lit_alexnet.console import prog
from lit_alexnet.data.bad_files import BadFile, bad_files_report, find_bad_files
from lit_alexnet.data.builtin import ensure_builtin_dataset
from lit_alexnet.data.cache import default_cache_dir
from lit_alexnet.data.folders import class_folders, scan_split


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog("lit_alexnet.data.verify"),
        description="Find the files of a dataset root that are not readable images.",
    )
    parser.add_argument(
        "root",
        type=Path,
        nargs="?",
        default=None,
        help="the data root, holding train/ and val/ (default: the built-in dataset, made if "
        "it is not there yet)",
    )
    parser.add_argument("--split", nargs="+", default=["train", "val"], help="the splits to check")
    parser.add_argument(
        "--val-labels",
        type=Path,
        help="labels for a flat val/ folder: 'path label' lines or one label per line",
    )
    parser.add_argument(
        "--mode",
        choices=["fast", "full"],
        default="fast",
        help="fast: each file's head and tail; full: decode every file (default: fast)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lit_alexnet.data.verify ROOT``: report the unreadable files of a dataset.

    Returns 0 when every file is readable, 1 when some are not, 2 when the dataset cannot be
    scanned (its layout or a labels file is wrong).
    """
    args = _parser().parse_args(argv)
    if args.root is None:
        root = ensure_builtin_dataset(default_cache_dir())
        print(f"the built-in dataset: {root}")
    else:
        root = args.root.expanduser()
    try:
        train = root / "train"
        classes = class_folders(train) if train.is_dir() else None
        lists = [
            scan_split(
                root,
                split,
                classes=classes,
                labels_file=args.val_labels if split == "val" else None,
            )
            for split in args.split
        ]
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    total = sum(len(images) for images in lists)
    bad: list[BadFile] = []
    for images in lists:
        bad += find_bad_files(images.files, mode=args.mode)
    if bad:
        print(bad_files_report(bad, total, str(root)))
        return 1
    print(f"{total} files checked, all readable")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
