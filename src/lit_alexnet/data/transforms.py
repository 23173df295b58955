"""The paper's image preprocessing for the torchvision backend (sections 2 and 4.1).

Every image is rescaled so its shorter side is 256 and centre-cropped to 256x256 (section 2).
The network is fed the raw RGB values, 0-255 as float32, minus the training-set mean
(section 2: "the (centered) raw RGB values of the pixels"). Training takes a random 224x224
patch, flips it horizontally with probability 0.5 and adds PCA lighting noise (section 4.1);
validation takes the centre patch; test time can average the ten patches of section 4.1.

Statistics (:class:`~lit_alexnet.data.formats.DatasetStats`) are on the 0-1 scale, so
means and lighting offsets are multiplied by 255 here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import PIL.Image
import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor, nn

from lit_alexnet.data.choices import LIGHTING_STD, MEAN_MODES
from lit_alexnet.data.formats import DatasetStats
from lit_alexnet.data.images import CROP, RESIZE

__all__ = [
    "MEAN_MODES",
    "CenterCropTransform",
    "PCALighting",
    "SubtractMean",
    "TenCropTransform",
    "TrainTransform",
    "mean_tensor",
    "ten_crop_transform",
    "train_transform",
    "val_transform",
]

_log = logging.getLogger(__name__)

PIXEL_SCALE = 255.0

ArrayLike = np.ndarray | Tensor


class PCALighting(nn.Module):
    """Section 4.1's lighting noise: add ``eigvec @ (alpha * eigval)`` to every pixel.

    ``alpha ~ N(0, std)`` is drawn once per call, i.e. once per image, from torch's global
    RNG (which DataLoader seeds per worker). ``scale`` converts the 0-1 statistics to the
    pixel scale of the input (255 for raw RGB values).
    """

    basis: Tensor

    def __init__(
        self, eigval: ArrayLike, eigvec: ArrayLike, std: float = 0.1, scale: float = PIXEL_SCALE
    ) -> None:
        super().__init__()
        eigval_t = torch.as_tensor(eigval, dtype=torch.float32)
        eigvec_t = torch.as_tensor(eigvec, dtype=torch.float32)
        if eigval_t.shape != (3,) or eigvec_t.shape != (3, 3):
            raise ValueError(
                f"expected eigval (3,) and eigvec (3, 3), got {tuple(eigval_t.shape)} "
                f"and {tuple(eigvec_t.shape)}"
            )
        if std < 0:
            raise ValueError(f"lighting std must be >= 0, got {std}")
        self.std = float(std)
        self.scale = float(scale)
        # Column i is scale * eigval[i] * eigvec[:, i], so an offset is one 3x3 @ 3 product.
        self.register_buffer("basis", eigvec_t * eigval_t * self.scale, persistent=False)

    def sample_offset(self) -> Tensor:
        """One image's offset, shape (3,): ``scale * eigvec @ (alpha * eigval)``."""
        alpha = torch.randn(3) * self.std
        return self.basis @ alpha

    def forward(self, img: Tensor) -> Tensor:
        """Return ``img`` (CxHxW float) plus one offset per channel, the same at every pixel."""
        if self.std == 0:
            return img
        if img.ndim != 3 or img.shape[0] != 3:
            raise ValueError(f"expected a 3xHxW image, got shape {tuple(img.shape)}")
        return img + self.sample_offset().view(3, 1, 1)

    def extra_repr(self) -> str:
        return f"std={self.std}, scale={self.scale}"


class SubtractMean(nn.Module):
    """Subtract the training mean (section 2): per-channel ``(3,)`` or a ``(3, H, W)`` image.

    Values are in the input's units (0-255 for raw RGB). Integer input comes out float32.
    """

    mean: Tensor
    mean_flipped: Tensor

    def __init__(self, mean: Tensor) -> None:
        super().__init__()
        mean = torch.as_tensor(mean, dtype=torch.float32)
        if mean.shape == (3,):
            mean = mean.view(3, 1, 1)
        if mean.ndim != 3 or mean.shape[0] != 3:
            raise ValueError(f"expected a mean of shape (3,) or (3, H, W), got {tuple(mean.shape)}")
        self.per_channel = mean.shape[1:] == (1, 1)
        mean = mean.contiguous()
        self.register_buffer("mean", mean, persistent=False)
        # Kept once so a flipped training patch reads its mean window without a float copy.
        flipped = mean if self.per_channel else mean.flip(-1).contiguous()
        self.register_buffer("mean_flipped", flipped, persistent=False)

    def _check(self, height: int, width: int) -> None:
        if not self.per_channel and self.mean.shape[1:] != (height, width):
            raise ValueError(
                f"mean image of shape {tuple(self.mean.shape)} does not match input of "
                f"shape (3, {height}, {width})"
            )

    def window(self, top: int, left: int, size: int, flipped: bool = False) -> Tensor:
        """The mean under a ``size`` x ``size`` patch at (top, left), mirrored if ``flipped``.

        ``flipped`` means the patch was cut at (top, left) and then flipped horizontally.
        """
        if self.per_channel:
            return self.mean
        if flipped:
            left = self.mean.shape[2] - size - left
            return self.mean_flipped[:, top : top + size, left : left + size]
        return self.mean[:, top : top + size, left : left + size]

    def forward(self, img: Tensor) -> Tensor:
        """``img - mean``; a mean image must have the input's height and width."""
        self._check(img.shape[-2], img.shape[-1])
        return torch.sub(img, self.mean)

    def extra_repr(self) -> str:
        return f"shape={tuple(self.mean.shape)}"


def mean_tensor(stats: DatasetStats, mode: str) -> Tensor:
    """The training mean in 0-255 units (section 2), float32.

    ``"image"``: the per-pixel mean image, (3, 256, 256); stats without one give the
    per-channel mean instead (the caller should log that). ``"channel"``: (3, 1, 1).
    """
    if mode not in MEAN_MODES:
        raise ValueError(f"mean mode must be one of {MEAN_MODES}, got {mode!r}")
    if mode == "image" and stats.mean_image is not None:
        image = torch.as_tensor(np.asarray(stats.mean_image), dtype=torch.float32)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 mean image, got shape {tuple(image.shape)}")
        return (image.permute(2, 0, 1) * PIXEL_SCALE).contiguous()
    rgb = torch.as_tensor(np.asarray(stats.mean_rgb), dtype=torch.float32)
    return (rgb * PIXEL_SCALE).view(3, 1, 1)


class _Preprocess(nn.Module):
    """Shared start: RGB, shorter side to ``resize``, centre ``resize`` square, mean ready."""

    def __init__(self, mean: Tensor, resize: int = RESIZE, crop: int = CROP) -> None:
        super().__init__()
        if not 0 < crop <= resize:
            raise ValueError(f"need 0 < crop <= resize, got crop={crop}, resize={resize}")
        self.resize = resize
        self.crop = crop
        self.subtract = SubtractMean(mean)
        # Fail at construction, not in a DataLoader worker, when the mean image is the wrong size.
        self.subtract._check(resize, resize)

    def decode(self, img: PIL.Image.Image) -> Tensor:
        """uint8 (3, resize, resize): geometry stays uint8 and is cut before going to float."""
        if img.mode != "RGB":
            img = img.convert("RGB")
        # A prepared image (lit_alexnet.data.prepare) is resize x resize already, and both
        # steps would leave it as it is.
        if img.size != (self.resize, self.resize):
            # PIL's bilinear resize is antialiased when it shrinks, as torchvision documents.
            img = TF.resize(img, [self.resize], interpolation=TF.InterpolationMode.BILINEAR)
            img = TF.center_crop(img, [self.resize, self.resize])
        return TF.pil_to_tensor(img)

    def patch(self, x: Tensor, top: int, left: int, flip: bool = False) -> Tensor:
        """float32 ``crop`` square of uint8 ``x`` at (top, left), optionally flipped, minus mean."""
        c = self.crop
        window = x[:, top : top + c, left : left + c]
        if flip:
            window = window.flip(-1)  # a uint8 copy: a quarter of what flipping float costs
        # uint8 - float32 promotes to float32: conversion and subtraction in one pass, written
        # into a contiguous CHW tensor (pil_to_tensor's is an HWC buffer seen as CHW).
        out = torch.empty((3, c, c), dtype=torch.float32)
        return torch.sub(window, self.subtract.window(top, left, c, flipped=flip), out=out)

    def extra_repr(self) -> str:
        return f"resize={self.resize}, crop={self.crop}"


class TrainTransform(_Preprocess):
    """Section 4.1's training input: random patch, random horizontal flip, PCA lighting.

    The patch's position is uniform over all ``(resize - crop + 1) ** 2`` positions of the
    centre square and the mean is taken from the same window, exactly as if the mean had been
    subtracted from the whole square first. Lighting is a per-image constant offset, so where
    it is added does not matter.
    """

    def __init__(
        self, mean: Tensor, lighting: PCALighting, resize: int = RESIZE, crop: int = CROP
    ) -> None:
        super().__init__(mean, resize, crop)
        self.lighting = lighting

    def forward(self, img: PIL.Image.Image) -> Tensor:
        """A float32 (3, crop, crop) training patch of a PIL image."""
        x = self.decode(img)
        span = self.resize - self.crop + 1
        top = int(torch.randint(span, ()).item())
        left = int(torch.randint(span, ()).item())
        flip = bool(torch.rand(()).item() < 0.5)
        out = self.patch(x, top, left, flip)
        if self.lighting.std > 0:
            out.add_(self.lighting.sample_offset().view(3, 1, 1))
        return out


class CenterCropTransform(_Preprocess):
    """Validation input: the centre ``crop`` square of the mean-subtracted image."""

    def forward(self, img: PIL.Image.Image) -> Tensor:
        """A float32 (3, crop, crop) centre patch of a PIL image."""
        offset = (self.resize - self.crop) // 2
        return self.patch(self.decode(img), offset, offset)


class TenCropTransform(_Preprocess):
    """Section 4.1's test-time input: the five patches and their horizontal reflections.

    Order along the first axis: top-left, top-right, bottom-left, bottom-right, centre, then
    the same five patches flipped horizontally, in the same order.
    """

    def forward(self, img: PIL.Image.Image) -> Tensor:
        """A float32 (10, 3, crop, crop) stack of a PIL image's ten patches."""
        x = self.decode(img)
        far = self.resize - self.crop
        mid = far // 2
        corners = [(0, 0), (0, far), (far, 0), (far, far), (mid, mid)]
        five = torch.stack([self.patch(x, top, left) for top, left in corners])
        return torch.cat([five, five.flip(-1)])


def _mean_for(stats: DatasetStats, mode: str) -> Tensor:
    mean = mean_tensor(stats, mode)
    if mode == "image" and stats.mean_image is None:
        _log.info("%s has no mean image: subtracting the per-channel mean", stats.source)
    return mean


def train_transform(
    stats: DatasetStats,
    *,
    resize: int = RESIZE,
    crop: int = CROP,
    mean: str = "image",
    lighting_std: float = LIGHTING_STD,
) -> Callable[[PIL.Image.Image], Tensor]:
    """Training preprocessing (sections 2 and 4.1): PIL image -> float32 (3, crop, crop)."""
    lighting = PCALighting(stats.eigval, stats.eigvec, std=lighting_std)
    return TrainTransform(_mean_for(stats, mean), lighting, resize=resize, crop=crop)


def val_transform(
    stats: DatasetStats, *, resize: int = RESIZE, crop: int = CROP, mean: str = "image"
) -> Callable[[PIL.Image.Image], Tensor]:
    """Centre-crop preprocessing (section 2): PIL image -> float32 (3, crop, crop)."""
    return CenterCropTransform(_mean_for(stats, mean), resize=resize, crop=crop)


def ten_crop_transform(
    stats: DatasetStats, *, resize: int = RESIZE, crop: int = CROP, mean: str = "image"
) -> Callable[[PIL.Image.Image], Tensor]:
    """Ten-patch test preprocessing (section 4.1): PIL image -> float32 (10, 3, crop, crop).

    Order: top-left, top-right, bottom-left, bottom-right, centre, then those five flipped.
    """
    return TenCropTransform(_mean_for(stats, mean), resize=resize, crop=crop)
