"""Finding corrupt and non-image files before training starts.

One unreadable JPEG stops a DALI pipeline hours into a run, and a DataLoader worker with it;
checking every file first turns that into one report at start-up. ``"fast"`` reads only the
head and tail of each file, enough to catch empty, truncated and mislabelled files in a few
minutes over ImageNet; ``"full"`` decodes every file, which catches corruption inside the
compressed data too but costs about as long as an epoch.
``python -m lit_alexnet.data.verify`` runs these checks from the command line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from lit_alexnet.checks import Invalid, check_choice
from lit_alexnet.data.choices import BAD_FILE_POLICIES, VERIFY_MODES
from lit_alexnet.data.folders import ImageList
from lit_alexnet.data.parallel import progress_bar, usable_cpus

__all__ = [
    "BAD_FILE_POLICIES",
    "DECODABLE_FORMATS",
    "VERIFY_MODES",
    "BadFile",
    "BadFilesError",
    "bad_files_report",
    "check_image_list",
    "check_image_lists",
    "find_bad_files",
]

log = logging.getLogger(__name__)


_JPEG_START = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"
_PNG_START = b"\x89PNG\r\n\x1a\n"
# JPEG encoders may append padding or junk after the end-of-image marker; libjpeg ignores it.
_TAIL_BYTES = 4096
# Pillow's names of the formats that both backends decode to the same pixels (MPO: the
# multi-picture JPEG of cameras and phones). Pillow opens more (GIF, ICO, PSD, ...), but
# DALI's decoder does not, and one such file would stop a DALI pipeline mid-epoch.
DECODABLE_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "TIFF", "WEBP", "PPM"})
# A report lists this many files, then says how many more there are.
_LISTED = 20
# Below this many files a progress bar would only flash.
_PROGRESS_MIN = 2000
# Files per thread-pool task: few enough futures for millions of files, fine enough steps
# for the progress bar.
_CHUNK = 64


@dataclass(frozen=True)
class BadFile:
    """A file that is not a readable image, and why."""

    path: Path
    reason: str


class BadFilesError(Invalid):
    """Raised by :func:`check_image_list` with ``on_bad="error"`` when any file is bad."""


def find_bad_files(
    paths: Sequence[Path],
    mode: str = "fast",
    workers: int | None = None,
    progress: bool = True,
) -> list[BadFile]:
    """The files of ``paths`` that are not readable images, in input order.

    Args:
        paths: the files to check.
        mode: ``"fast"`` checks each file's signature and end marker (JPEG, PNG) or lets
            Pillow parse its header (other formats); ``"full"`` decodes each file completely;
            ``"off"`` checks nothing.
        workers: threads to check with; by default enough to keep the disk busy in fast mode
            and every core busy in full mode.
        progress: show a progress bar (on stderr) when there are many files.
    """
    check_choice("mode", mode, VERIFY_MODES)
    if mode == "off" or not paths:
        return []
    check = _check_fast if mode == "fast" else _check_full
    if workers is None:
        cpus = usable_cpus()
        # Fast mode waits on the disk (or the network), full mode on Pillow's decoder, which
        # releases the GIL.
        workers = min(32, 4 * cpus) if mode == "fast" else cpus
    chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]

    def run(chunk: Sequence[Path]) -> list[BadFile]:
        return [bad for bad in map(check, chunk) if bad is not None]

    bad: list[BadFile] = []
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="verify") as pool:
        futures = [pool.submit(run, chunk) for chunk in chunks]
        if not (progress and len(paths) > _PROGRESS_MIN):
            for future in futures:
                bad.extend(future.result())
            return bad
        with progress_bar() as bar:
            task = bar.add_task(f"Checking images ({mode})", total=len(paths))
            for chunk, future in zip(chunks, futures, strict=True):
                bad.extend(future.result())
                bar.advance(task, len(chunk))
    return bad


def bad_files_report(bad: Sequence[BadFile], total: int, what: str = "") -> str:
    """A summary of ``bad`` among ``total`` files, listing the first ones with reasons."""
    where = f" in {what}" if what else ""
    lines = [f"{len(bad)} of {total} files{where} cannot be trained on:"]
    lines += [f"  {b.path}: {b.reason}" for b in bad[:_LISTED]]
    if len(bad) > _LISTED:
        lines.append(f"  and {len(bad) - _LISTED} more")
    return "\n".join(lines)


def check_image_list(
    images: ImageList, mode: str = "fast", on_bad: str = "skip", what: str = ""
) -> ImageList:
    """``images`` less the files that cannot be trained on, or an error naming them.

    Args:
        images: the files to check.
        mode: see :func:`find_bad_files`; ``"off"`` returns ``images`` as they are.
        on_bad: ``"skip"`` leaves bad files out with one warning that names them;
            ``"error"`` raises :class:`BadFilesError` naming them.
        what: where the files are from (e.g. ``/data/ilsvrc2012/train``), for the report.
    """
    return check_image_lists({what: images}, mode=mode, on_bad=on_bad)[what]


def check_image_lists(
    lists: Mapping[str, ImageList], mode: str = "fast", on_bad: str = "skip"
) -> dict[str, ImageList]:
    """:func:`check_image_list` of several lists (keyed by where they are from), with one
    error naming the bad files of all of them, so that one run shows what to fix."""
    check_choice("mode", mode, VERIFY_MODES)
    check_choice("on_bad", on_bad, BAD_FILE_POLICIES)
    bad = {what: find_bad_files(images.files, mode=mode) for what, images in lists.items()}
    reports = [bad_files_report(b, len(lists[what]), what) for what, b in bad.items() if b]
    if reports and on_bad == "error":
        raise BadFilesError(
            "\n".join(reports)
            + "\nFix or delete these files, or set data.bad_files=skip to leave them out."
        )
    for report in reports:
        log.warning("%s\nThese files are left out (data.bad_files=skip).", report)
    return {what: lists[what].without([b.path for b in bad[what]]) for what in lists}


def _check_fast(path: Path) -> BadFile | None:
    try:
        with path.open("rb") as f:
            head = f.read(len(_PNG_START))
            if not head:
                return BadFile(path, "empty file")
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL_BYTES))
            tail = f.read()
    except OSError as e:
        return BadFile(path, f"cannot read: {e.strerror or e}")
    if head.startswith(_JPEG_START):
        # In entropy-coded data an FF byte is always followed by 00 or a restart marker, so
        # a file cut short has no FF D9 near its end. Phones append a video or a second image
        # after the marker, though: only a decode tells such a file from a truncated one.
        return None if _JPEG_END in tail else _check_full(path)
    if head == _PNG_START:
        if b"IEND" not in tail[-12:]:
            return BadFile(path, "truncated PNG (no IEND chunk)")
        return None
    return _open_with_pillow(path, decode=False)


def _check_full(path: Path) -> BadFile | None:
    try:
        if path.stat().st_size == 0:
            return BadFile(path, "empty file")
    except OSError as e:
        return BadFile(path, f"cannot read: {e.strerror or e}")
    return _open_with_pillow(path, decode=True)


def _open_with_pillow(path: Path, decode: bool) -> BadFile | None:
    """Pillow's verdict: its structural ``verify()``, or, with ``decode``, every pixel."""
    try:
        with Image.open(path) as image:
            # ImageFile.LOAD_TRUNCATED_IMAGES stays False, so a file cut short raises here.
            if decode:
                image.load()
            else:
                image.verify()
            return _unsupported(path, image.format)
    except UnidentifiedImageError:
        return BadFile(path, "not an image file")
    except Exception as e:  # Pillow's plugins raise many kinds of errors on bad data
        return BadFile(path, f"cannot decode: {_describe(e)}")


def _unsupported(path: Path, image_format: str | None) -> BadFile | None:
    if image_format in DECODABLE_FORMATS:
        return None
    return BadFile(
        path,
        f"a {image_format} image, which DALI's decoder cannot read: convert it to JPEG or PNG "
        "(both backends train on the same files)",
    )


def _describe(e: BaseException) -> str:
    return str(e) or type(e).__name__
