"""Photo-like JPEGs for the data benchmark: ImageNet's typical 500x375, whose decoding costs
about what real photos' does, generated once into the cache (:mod:`lit_alexnet.data.cache`)."""

from __future__ import annotations

import io
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lit_alexnet.data.cache import ensure_generated
from lit_alexnet.data.dataset_stats import compute_stats
from lit_alexnet.data.formats import STATS_FILENAME
from lit_alexnet.data.images import resize_centre_crop
from lit_alexnet.data.parallel import usable_cpus

# ImageNet's most common size (width, height); the photo folder's every image has it.
PHOTO_SIZE = (500, 375)
PHOTO_QUALITY = 90
PHOTO_CLASSES = 10
# Bump whenever the drawing changes: it is part of the folder name, so stale caches are unused.
PHOTO_VERSION = 1
_PHOTO_SEED = 0
_PHOTO_MARKER = "photo.json"


def photo_dirname(images: int) -> str:
    """The photo folder's name in the cache, e.g. ``bench-photo-n1024-v1``."""
    return f"bench-photo-n{images}-v{PHOTO_VERSION}"


def render_photo(index: int) -> bytes:
    """The JPEG bytes of photo ``index``: smooth colour fields, shapes, blur and sensor noise.

    Several octaves of random colour grids give the slow gradients and mid-scale texture of
    photographs, and the noise the fine detail that makes JPEG decoding cost what it does for
    real photos (files of about 65-90 KB at quality 90). Depends on ``index`` alone.
    """
    rng = np.random.default_rng(np.random.SeedSequence(_PHOTO_SEED, spawn_key=(index,)))
    w, h = PHOTO_SIZE
    field = np.zeros((h, w, 3), np.float32)
    octaves = ((3, 1.0), (12, 0.35), (48, 0.15), (160, 0.12))  # (grid rows, amplitude)
    for rows, amplitude in octaves:
        grid = rng.integers(0, 256, size=(rows, rows * w // h + 1, 3), dtype=np.uint8)
        smooth = Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC)
        field += np.float32(amplitude) * (np.asarray(smooth, np.float32) - np.float32(128))
    # Scaled by the summed amplitudes, so the field spans about the full 0-255 range.
    field *= np.float32(1.0 / sum(a for _, a in octaves))
    field += np.float32(128)
    image = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = float(rng.uniform(-50, w)), float(rng.uniform(-50, h))
        x1, y1 = x0 + float(rng.uniform(20, 200)), y0 + float(rng.uniform(20, 200))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        shape = int(rng.integers(3))
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            corners = rng.uniform((x0, y0), (x1, y1), size=(int(rng.integers(3, 7)), 2))
            draw.polygon([(float(x), float(y)) for x, y in corners], fill=colour)
    # A lens's softness, then noise: luminance noise shared by the channels, and some chroma.
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.0))))
    pixels = np.asarray(image, np.float32)
    pixels = pixels + rng.normal(0.0, rng.uniform(6.0, 12.0), size=(h, w, 1)).astype(np.float32)
    pixels += rng.normal(0.0, 3.0, size=(h, w, 3)).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=PHOTO_QUALITY
    )
    return buffer.getvalue()


def _photo_path(root: Path, index: int) -> Path:
    return root / "train" / f"c{index % PHOTO_CLASSES:02d}" / f"{index:06d}.jpg"


def ensure_photo_dataset(cache_dir: str | Path, images: int) -> Path:
    """Return the root of ``images`` photo-like JPEGs, generating them first if absent.

    The root holds ``train/c00 .. c09/*.jpg`` (image ``i`` in class ``i % 10``) and the
    training statistics in ``stats.npz``, so the mean image is subtracted as for a real
    dataset. Written into a temporary sibling folder renamed into place at the end, so a killed
    run never leaves a folder that looks complete; when processes race, the first rename wins.
    """
    if images < 1:
        raise ValueError(f"images={images!r} must be positive")
    root = Path(cache_dir).expanduser() / photo_dirname(images)
    fingerprint = {
        "images": images,
        "size": list(PHOTO_SIZE),
        "quality": PHOTO_QUALITY,
        "classes": PHOTO_CLASSES,
        "version": PHOTO_VERSION,
    }
    return ensure_generated(
        root, _PHOTO_MARKER, fingerprint, lambda tmp: _generate_photos(tmp, images)
    )


def _generate_photos(tmp: Path, images: int) -> None:
    for label in range(min(images, PHOTO_CLASSES)):
        _photo_path(tmp, label).parent.mkdir(parents=True)

    def work(index: int) -> np.ndarray:
        data = render_photo(index)
        _photo_path(tmp, index).write_bytes(data)
        # Statistics of the decoded file, as training will read it.
        return resize_centre_crop(data)

    print(f"Generating {images} photo-like JPEGs in {tmp.parent}", file=sys.stderr)
    # numpy and Pillow release the GIL in the heavy parts, so threads use the cores.
    with ThreadPoolExecutor(max(1, min(8, usable_cpus()))) as pool:
        compute_stats(pool.map(work, range(images))).save(tmp / STATS_FILENAME)
