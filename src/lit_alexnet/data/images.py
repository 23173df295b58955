"""Opening an image file as both data backends see it: RGB, upright, and at the paper's size.

DALI's decoders turn a photo upright as its EXIF orientation tag says (a phone stores a
portrait photo as landscape pixels plus that tag), and so does every image viewer: the
torchvision backend, the dataset statistics and ``predict`` do the same here, so that all of
them see the picture the photographer saw, and the two backends train on the same pixels.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lit_alexnet.checks import Invalid
from lit_alexnet.nn.alexnet import INPUT_SIZE

__all__ = ["CROP", "RESIZE", "NotAnImage", "load_rgb", "open_image", "resize_centre_crop"]

# Section 2: images are down-sampled to 256x256 (shorter side to 256, then the centre).
RESIZE = 256
# Section 4.1: the network sees 224x224 patches of them.
CROP = INPUT_SIZE


def load_rgb(source: str | Path | bytes) -> Image.Image:
    """The image in ``source`` (a path or a file's bytes) as RGB, upright as its EXIF
    orientation says; CMYK, grayscale and palette images are converted as Pillow does."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        image.load()
        return ImageOps.exif_transpose(image).convert("RGB")


class NotAnImage(Invalid):
    """A file Pillow cannot read as an image."""


def open_image(path: str | Path) -> Image.Image:
    """:func:`load_rgb` of a file a user named, refused in one line if it is no image."""
    try:
        return load_rgb(path)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise NotAnImage(f"{path}: not an image Pillow can read ({e})") from None


def resize_centre_crop(source: bytes | Path) -> np.ndarray:
    """The paper's resize-256 + centre-crop-256 of an image file, as uint8 RGB, with
    torchvision's rounding (``Resize(256)`` then ``CenterCrop(256)`` on a Pillow image)."""
    rgb = load_rgb(source)
    w, h = rgb.size
    size = (RESIZE, int(RESIZE * h / w)) if w <= h else (int(RESIZE * w / h), RESIZE)
    rgb = rgb.resize(size, Image.Resampling.BILINEAR)
    left = round((size[0] - RESIZE) / 2.0)
    top = round((size[1] - RESIZE) / 2.0)
    return np.asarray(rgb.crop((left, top, left + RESIZE, top + RESIZE)))
