"""Opening an image file as both data backends see it: RGB, upright.

DALI's decoders turn a photo upright as its EXIF orientation tag says (a phone stores a
portrait photo as landscape pixels plus that tag), and so does every image viewer: the
torchvision backend, the dataset statistics and ``predict`` do the same here, so that all of
them see the picture the photographer saw, and the two backends train on the same pixels.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps

__all__ = ["load_rgb"]


def load_rgb(source: str | Path | bytes) -> Image.Image:
    """The image in ``source`` (a path or a file's bytes) as RGB, upright as its EXIF
    orientation says; CMYK, grayscale and palette images are converted as Pillow does."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        image.load()
        return ImageOps.exif_transpose(image).convert("RGB")
