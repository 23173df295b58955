"""A small image-classification dataset that the package generates on first use.

No dataset can be downloaded on a fresh machine, yet the default training run should exercise
the whole real path: JPEG files of varied sizes on disk in ImageFolder layout, decoded and
augmented like ImageNet. This module draws such a dataset: shapes and textures at random
positions, scales, rotations and colours, written as JPEGs under
``<cache_dir>/<spec.dirname>/{train,val}/<class>/*.jpg`` with the training set's statistics
beside them in ``stats.npz`` (see :mod:`lit_alexnet.data.dataset_stats`).

Foreground and background colours come from one distribution for every class, so only the
shape tells the classes apart. Every image has its own random generator seeded from
``(seed, split, class, index)``, so the files are byte-identical for a seed whatever the order
(or the number of threads) they are generated in, and a class's images do not depend on how
many classes or images the spec asks for.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.utilities import rank_zero_info
from PIL import Image, ImageDraw

from lit_alexnet.checks import check
from lit_alexnet.data.cache import default_cache_dir, ensure_generated, is_complete
from lit_alexnet.data.dataset_stats import compute_stats
from lit_alexnet.data.formats import STATS_FILENAME
from lit_alexnet.data.images import resize_centre_crop
from lit_alexnet.data.parallel import ordered_map, progress_bar, usable_cpus

__all__ = [
    "CLASS_NAMES",
    "FORMAT_VERSION",
    "SPEC_FILENAME",
    "BuiltinSpec",
    "ensure_builtin_dataset",
]

log = logging.getLogger(__name__)

# Bump whenever the drawing code changes what the files hold: the version is part of the
# cache folder's name, so an old cache is never mistaken for the new dataset.
FORMAT_VERSION = 1

# Written last into a finished dataset; a root without it was not made by this module.
SPEC_FILENAME = "builtin.json"

# The folder names double as class indices once sorted, hence the numeric prefix. The first
# ten are the default and the easiest to tell apart.
CLASS_NAMES: tuple[str, ...] = (
    "00_disk",
    "01_ring",
    "02_square",
    "03_frame",
    "04_triangle",
    "05_star",
    "06_cross",
    "07_stripes",
    "08_checkerboard",
    "09_dots",
    "10_zigzag",
    "11_crescent",
)

_SPLITS = ("train", "val")
# Each shape is drawn on a canvas this many times larger and reduced, for smooth edges.
_SUPERSAMPLE = 2


@dataclass(frozen=True)
class BuiltinSpec:
    """What to generate; different specs live in different cache folders.

    Attributes:
        num_classes: how many of :data:`CLASS_NAMES` to use (the first ones), at least 2.
        train_per_class: training images per class.
        val_per_class: validation images per class.
        seed: seeds every image; the same seed gives byte-identical files.
        min_side: smallest width or height in pixels; each side is uniform in
            [min_side, max_side].
        max_side: largest width or height in pixels.
        jpeg_quality: the JPEG quality the files are written with (1-95).
    """

    num_classes: int = 10
    train_per_class: int = 100
    val_per_class: int = 30
    seed: int = 0
    min_side: int = 240
    max_side: int = 360
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            check(
                isinstance(value, int) and not isinstance(value, bool),
                name,
                value,
                "must be an integer",
            )
        most = len(CLASS_NAMES)
        check(
            2 <= self.num_classes <= most,
            "num_classes",
            self.num_classes,
            f"must be between 2 and {most}",
        )
        for name in ("train_per_class", "val_per_class"):
            check(getattr(self, name) >= 1, name, getattr(self, name), "must be >= 1")
        check(self.seed >= 0, "seed", self.seed, "must be >= 0")
        # Below this the smallest shapes and textures stop being recognisable.
        check(self.min_side >= 64, "min_side", self.min_side, "must be at least 64")
        check(
            self.max_side >= self.min_side,
            "max_side",
            self.max_side,
            f"must be at least min_side ({self.min_side})",
        )
        check(
            1 <= self.jpeg_quality <= 95,
            "jpeg_quality",
            self.jpeg_quality,
            "must be between 1 and 95",
        )

    @classmethod
    def take(cls, options: dict[str, Any]) -> BuiltinSpec:
        """The spec of those of its fields that ``options`` holds, which are removed from it."""
        return cls(**{f.name: options.pop(f.name) for f in fields(cls) if f.name in options})

    @property
    def class_names(self) -> tuple[str, ...]:
        """The folder names of the classes this spec uses, in class-index order."""
        return CLASS_NAMES[: self.num_classes]

    @property
    def dirname(self) -> str:
        """The cache subfolder's name, e.g. ``builtin-c10-t100-v30-s0-v1``."""
        name = f"builtin-c{self.num_classes}-t{self.train_per_class}-v{self.val_per_class}"
        name += f"-s{self.seed}"
        default = BuiltinSpec()
        if (self.min_side, self.max_side) != (default.min_side, default.max_side):
            name += f"-px{self.min_side}-{self.max_side}"
        if self.jpeg_quality != default.jpeg_quality:
            name += f"-q{self.jpeg_quality}"
        return f"{name}-v{FORMAT_VERSION}"

    def fingerprint(self) -> str:
        """Every field and the format version as canonical JSON; equal only for equal datasets."""
        return json.dumps({**asdict(self), "format_version": FORMAT_VERSION}, sort_keys=True)


def ensure_builtin_dataset(cache_dir: str | Path, spec: BuiltinSpec | None = None) -> Path:
    """Return the root of the built-in dataset for ``spec``, generating it first if absent.

    The root holds ``train/<class>/*.jpg``, ``val/<class>/*.jpg``, the training set's
    statistics in ``stats.npz`` and the spec in ``builtin.json``. Generation writes into a
    temporary sibling folder that is renamed into place at the end, so an interrupted run never
    leaves a dataset that looks complete; when several processes race, the first rename wins
    and the others throw their copy away.
    """
    spec = BuiltinSpec() if spec is None else spec
    root = Path(cache_dir).expanduser() / spec.dirname
    fingerprint = json.loads(spec.fingerprint())
    if not is_complete(root, SPEC_FILENAME, fingerprint):
        log.info("Generating the built-in dataset (%s) in %s", spec.dirname, root.parent)
    return ensure_generated(root, SPEC_FILENAME, fingerprint, lambda tmp: _generate(tmp, spec))


@dataclass(frozen=True)
class _Job:
    split: int
    label: int
    index: int
    path: Path


def _generate(tmp: Path, spec: BuiltinSpec) -> None:
    jobs: list[_Job] = []
    for split, split_name in enumerate(_SPLITS):
        count = spec.train_per_class if split_name == "train" else spec.val_per_class
        for label, class_name in enumerate(spec.class_names):
            folder = tmp / split_name / class_name
            folder.mkdir(parents=True)
            jobs.extend(_Job(split, label, i, folder / f"{i:05d}.jpg") for i in range(count))

    def work(job: _Job) -> np.ndarray | None:
        data = _encode_jpeg(_render_image(spec, job.split, job.label, job.index), spec)
        job.path.write_bytes(data)
        # Statistics come from the decoded file, so they match what training will read.
        return resize_centre_crop(data) if job.split == 0 else None

    # numpy and Pillow release the GIL for the heavy parts, so threads do use several cores
    # without the start-up cost and fork hazards of processes.
    workers = max(1, min(4, usable_cpus()))
    progress = progress_bar()
    with progress, ThreadPoolExecutor(workers, thread_name_prefix="builtin") as pool:
        task = progress.add_task("Generating built-in dataset", total=len(jobs))

        def crops() -> Iterator[np.ndarray]:
            for crop in ordered_map(pool, work, jobs, window=4 * workers):
                progress.advance(task)
                if crop is not None:
                    yield crop

        stats = compute_stats(crops())
    stats.save(tmp / STATS_FILENAME)


def _encode_jpeg(image: np.ndarray, spec: BuiltinSpec) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=spec.jpeg_quality)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- drawing


def _rng(spec: BuiltinSpec, split: int, label: int, index: int) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence(spec.seed, spawn_key=(FORMAT_VERSION, split, label, index))
    )


def _colour_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two colours drawn alike, far enough apart that the shape is always clearly visible.

    The rejection test is symmetric in the two, so foreground and background have the same
    distribution, the same for every class: the mean colour of an image says nothing about
    its class.
    """
    luma = np.array([0.299, 0.587, 0.114])
    while True:
        a, b = rng.uniform(0.0, 255.0, size=(2, 3))
        if abs(float(luma @ (a - b))) >= 60.0 and float(np.linalg.norm(a - b)) >= 120.0:
            return a, b


@dataclass(frozen=True)
class _Placement:
    """Where one shape goes: image size, centre, radius of its bounding circle, rotation."""

    w: int
    h: int
    cx: float
    cy: float
    r: float
    angle: float


def _render_image(spec: BuiltinSpec, split: int, label: int, index: int) -> np.ndarray:
    rng = _rng(spec, split, label, index)
    w, h = (int(v) for v in rng.integers(spec.min_side, spec.max_side + 1, size=2))
    background, foreground = _colour_pair(rng)

    # Keep the shape inside the central square, which survives the resize-256 + centre crop.
    short = min(w, h)
    r = 0.5 * short * rng.uniform(0.4, 0.85)
    slack = 0.5 * short - r
    at = _Placement(
        w=w,
        h=h,
        cx=0.5 * w + rng.uniform(-slack, slack),
        cy=0.5 * h + rng.uniform(-slack, slack),
        r=r,
        angle=rng.uniform(0.0, 2.0 * math.pi),
    )
    mask = _MASKS[CLASS_NAMES[label]](rng, at)

    # A gentle linear gradient on the background and pixel noise over everything, so that the
    # task is not a matter of two flat colours.
    direction = rng.uniform(0.0, 2.0 * math.pi)
    scale = 2.0 / math.hypot(w, h)
    ramp_x = (np.arange(w, dtype=np.float32) - 0.5 * w) * np.float32(scale * math.cos(direction))
    ramp_y = (np.arange(h, dtype=np.float32) - 0.5 * h) * np.float32(scale * math.sin(direction))
    ramp = ramp_y[:, None] + ramp_x[None, :]
    shift = rng.normal(0.0, 12.0, size=3).astype(np.float32)
    # In place where possible: these full-size passes are most of the generation time.
    image = ramp[..., None] * shift
    image += background.astype(np.float32)
    cover = foreground.astype(np.float32) - image
    cover *= mask[..., None]
    image += cover
    # Uniform noise: as good as Gaussian here and several times faster to draw.
    amplitude = rng.uniform(2.0, 7.0) * math.sqrt(12.0)  # noise sd 2-7
    noise = rng.random((h, w, 3), dtype=np.float32)
    noise *= np.float32(amplitude)
    noise += np.float32(0.5 - 0.5 * amplitude)  # centres the noise and rounds to nearest
    image += noise
    return np.clip(image, 0.0, 255.0, out=image).astype(np.uint8)


# Shapes are drawn with Pillow on a supersampled canvas and reduced, which gives smooth edges
# for little time; textures are computed with numpy on the image grid.

_MaskFn = Callable[[np.random.Generator, _Placement], np.ndarray]


class _Canvas:
    """A supersampled greyscale mask that takes image coordinates."""

    def __init__(self, at: _Placement) -> None:
        self.at = at
        self.image = Image.new("L", (at.w * _SUPERSAMPLE, at.h * _SUPERSAMPLE), 0)
        self.draw = ImageDraw.Draw(self.image)

    def circle(self, cx: float, cy: float, r: float, fill: int = 255) -> None:
        s = _SUPERSAMPLE
        self.draw.ellipse((s * (cx - r), s * (cy - r), s * (cx + r), s * (cy + r)), fill=fill)

    def polygon(self, local: Sequence[tuple[float, float]], fill: int = 255) -> None:
        """Fill a polygon given in the shape's own frame: centred, then rotated by the angle."""
        self.draw.polygon(self._to_canvas(local), fill=fill)

    def polyline(self, local: Sequence[tuple[float, float]], width: float) -> None:
        points = self._to_canvas(local)
        self.draw.line(points, fill=255, width=round(_SUPERSAMPLE * width), joint="curve")
        for x, y in (points[0], points[-1]):  # round caps
            self.circle(x / _SUPERSAMPLE, y / _SUPERSAMPLE, width / 2)

    def mask(self) -> np.ndarray:
        return np.asarray(self.image.reduce(_SUPERSAMPLE), dtype=np.float32) / np.float32(255)

    def _to_canvas(self, local: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
        at, s = self.at, _SUPERSAMPLE
        c, sn = math.cos(at.angle), math.sin(at.angle)
        return [(s * (at.cx + x * c - y * sn), s * (at.cy + x * sn + y * c)) for x, y in local]


def _regular(r: float, n: int, turn: float = 0.0) -> list[tuple[float, float]]:
    """A regular n-gon with circumradius r, in the shape's frame."""
    angles = (turn + 2.0 * math.pi * k / n for k in range(n))
    return [(r * math.cos(a), r * math.sin(a)) for a in angles]


def _disk(rng: np.random.Generator, at: _Placement) -> np.ndarray:
    canvas = _Canvas(at)
    canvas.circle(at.cx, at.cy, at.r)
    return canvas.mask()


def _ring(rng: np.random.Generator, at: _Placement) -> np.ndarray:
    canvas = _Canvas(at)
    canvas.circle(at.cx, at.cy, at.r)
    canvas.circle(at.cx, at.cy, at.r * rng.uniform(0.45, 0.65), fill=0)
    return canvas.mask()


def _square(rng: np.random.Generator, at: _Placement) -> np.ndarray:
    canvas = _Canvas(at)
    canvas.polygon(_regular(at.r, 4))
    return canvas.mask()


def _frame(rng: np.random.Generator, at: _Placement) -> np.ndarray:
    canvas = _Canvas(at)
    canvas.polygon(_regular(at.r, 4))
    canvas.polygon(_regular(at.r * rng.uniform(0.5, 0.68), 4), fill=0)
    return canvas.mask()


def _triangle(rng: np.random.Generator, at: _Placement) -> np.ndarray:
    canvas = _Canvas(at)
    canvas.polygon(_regular(at.r, 3))
    return canvas.mask()


def _star(rng: np.random.Generator, at: _Placement) -> np.ndarray:
    canvas = _Canvas(at)
    outer, inner = _regular(at.r, 5), _regular(at.r * rng.uniform(0.38, 0.48), 5, math.pi / 5)
    canvas.polygon([p for pair in zip(outer, inner, strict=True) for p in pair])
    return canvas.mask()


def _cross(rng: np.random.Generator, at: _Placement) -> np.ndarray:
    canvas = _Canvas(at)
    a = at.r * rng.uniform(0.2, 0.28)  # half an arm's width
    arm = math.sqrt(at.r * at.r - a * a)  # puts the arms' outer corners on the circle
    quarter = [(arm, -a), (arm, a), (a, a)]
    # The same three corners turned by 0, 90, 180 and 270 degrees trace the plus sign.
    turns = ((1, 0), (0, 1), (-1, 0), (0, -1))
    outline = [(x * c - y * s, x * s + y * c) for c, s in turns for x, y in quarter]
    canvas.polygon(outline)
    return canvas.mask()


def _zigzag(rng: np.random.Generator, at: _Placement) -> np.ndarray:
    canvas = _Canvas(at)
    segments = 2 * int(rng.integers(2, 4))
    amplitude = at.r * rng.uniform(0.3, 0.42)
    width = at.r * rng.uniform(0.16, 0.22)
    half = at.r - width  # keeps the round caps inside the bounding circle
    canvas.polyline(
        [(-half + 2 * half * k / segments, amplitude * (-1) ** k) for k in range(segments + 1)],
        width,
    )
    return canvas.mask()


def _crescent(rng: np.random.Generator, at: _Placement) -> np.ndarray:
    canvas = _Canvas(at)
    canvas.circle(at.cx, at.cy, at.r)
    offset = at.r * rng.uniform(0.4, 0.55)
    bite = at.r * rng.uniform(0.8, 0.9)
    bx, by = at.cx + offset * math.cos(at.angle), at.cy + offset * math.sin(at.angle)
    canvas.circle(bx, by, bite, fill=0)
    return canvas.mask()


def _patch(rng: np.random.Generator, at: _Placement) -> np.ndarray:
    """Where a texture is painted: a disk or a square at random, so the outline says nothing."""
    canvas = _Canvas(at)
    if rng.random() < 0.5:
        canvas.circle(at.cx, at.cy, at.r)
    else:
        canvas.polygon(_regular(at.r, 4, rng.uniform(0.0, math.pi / 2)))
    return canvas.mask()


def _texture_frame(at: _Placement) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel centre's coordinates in the shape's frame: centred, then rotated."""
    ys, xs = np.mgrid[0 : at.h, 0 : at.w].astype(np.float32)
    xs += np.float32(0.5 - at.cx)
    ys += np.float32(0.5 - at.cy)
    c, s = np.float32(math.cos(at.angle)), np.float32(math.sin(at.angle))
    return xs * c + ys * s, ys * c - xs * s


def _stripes(rng: np.random.Generator, at: _Placement) -> np.ndarray:
    patch = _patch(rng, at)
    u, _ = _texture_frame(at)
    period = np.float32(at.r * rng.uniform(0.32, 0.45))
    return patch * (np.floor(u * (2 / period)) % 2)


def _checkerboard(rng: np.random.Generator, at: _Placement) -> np.ndarray:
    patch = _patch(rng, at)
    u, v = _texture_frame(at)
    cell = np.float32(at.r * rng.uniform(0.22, 0.32))
    return patch * ((np.floor(u / cell) + np.floor(v / cell)) % 2)


def _dots(rng: np.random.Generator, at: _Placement) -> np.ndarray:
    patch = _patch(rng, at)
    u, v = _texture_frame(at)
    pitch = np.float32(at.r * rng.uniform(0.33, 0.45))
    du = u - pitch * (np.floor(u / pitch) + np.float32(0.5))
    dv = v - pitch * (np.floor(v / pitch) + np.float32(0.5))
    dot = np.float32(pitch * rng.uniform(0.28, 0.36))
    # A one-pixel soft edge stands in for the supersampling the shapes get.
    return patch * np.clip(dot + np.float32(0.5) - np.sqrt(du * du + dv * dv), 0.0, 1.0)


_MASKS: dict[str, _MaskFn] = {
    "00_disk": _disk,
    "01_ring": _ring,
    "02_square": _square,
    "03_frame": _frame,
    "04_triangle": _triangle,
    "05_star": _star,
    "06_cross": _cross,
    "07_stripes": _stripes,
    "08_checkerboard": _checkerboard,
    "09_dots": _dots,
    "10_zigzag": _zigzag,
    "11_crescent": _crescent,
}
if tuple(_MASKS) != CLASS_NAMES:
    raise AssertionError("every class needs a drawing function, in CLASS_NAMES order")


class BuiltinMixin:
    """Points a :class:`FolderDataModule` at the generated dataset, made on first use.

    The generated dataset of shapes and textures lets the whole path run for real on a machine
    without ImageNet; see :mod:`lit_alexnet.data.builtin` for what the classes are.
    """

    def __init__(self, cache_dir: str | Path | None = None, **kwargs: Any) -> None:
        # The spec's fields (num_classes, train_per_class, val_per_class, seed, ...) say what
        # to generate; the rest are FolderDataModule's.
        self.spec = BuiltinSpec.take(kwargs)
        self.cache_dir = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
        super().__init__(self.cache_dir / self.spec.dirname, **kwargs)  # type: ignore[call-arg]

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def prepare_data(self) -> None:
        root = ensure_builtin_dataset(self.cache_dir, self.spec)
        rank_zero_info(f"built-in dataset: {root}")
