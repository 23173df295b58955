"""The paper's pictures and the report's chart, as arrays and PNG files.

:func:`kernel_grid` draws Figure 3 (the conv1 kernels, one row block per tower) pixel for
pixel, so the PNG holds exactly the stretched weights; :func:`neighbours_figure` (Figure 4)
and :func:`error_chart` (the ablation report) are matplotlib figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

KERNELS_PER_ROW = 16
_GAP = 1  # pixels between kernels
_TOWER_GAP = 4  # pixels between the towers' blocks
_BACKGROUND = 255


def stretch(kernel: Tensor) -> np.ndarray:
    """One ``(3, h, w)`` kernel as uint8 ``(h, w, 3)``, its own minimum at 0 and maximum at
    255, as the paper shows each kernel."""
    k = kernel.detach().double().cpu()
    low, high = k.min(), k.max()
    scaled = (k - low) / (high - low) if high > low else torch.zeros_like(k)
    return (scaled * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def kernel_grid(weight: Tensor, towers: int, scale: int = 4) -> np.ndarray:
    """Figure 3: ``weight`` ``(n, 3, h, w)`` (conv1's, towers concatenated) as a uint8 RGB
    picture; each tower's ``n / towers`` kernels fill a block of rows, ``KERNELS_PER_ROW`` to a
    row, each kernel enlarged ``scale`` times (nearest neighbour) and stretched on its own."""
    n, _, h, w = weight.shape
    per_tower = n // towers
    rows = -(-per_tower // KERNELS_PER_ROW)
    cell_h, cell_w = h * scale + _GAP, w * scale + _GAP
    block_h = rows * cell_h
    height = towers * block_h + (towers - 1) * _TOWER_GAP + _GAP
    width = KERNELS_PER_ROW * cell_w + _GAP
    grid = np.full((height, width, 3), _BACKGROUND, dtype=np.uint8)
    for index in range(n):
        y, x = kernel_origin(index, per_tower, (h, w), scale)
        big = stretch(weight[index]).repeat(scale, 0).repeat(scale, 1)
        grid[y : y + h * scale, x : x + w * scale] = big
    return grid


def kernel_origin(index: int, per_tower: int, size: tuple[int, int], scale: int) -> tuple[int, int]:
    """The top-left pixel of kernel ``index`` in :func:`kernel_grid`'s picture."""
    h, w = size
    tower, within = divmod(index, per_tower)
    rows = -(-per_tower // KERNELS_PER_ROW)
    row, col = divmod(within, KERNELS_PER_ROW)
    block_y = tower * (rows * (h * scale + _GAP) + _TOWER_GAP)
    return _GAP + block_y + row * (h * scale + _GAP), _GAP + col * (w * scale + _GAP)


def colour_selectivity(weight: Tensor) -> float:
    """The mean over kernels of the share of a kernel's energy that is not in its grey
    component (the channel mean): 0 for colour-blind kernels, towards 1 for colour blobs;
    the figure behind section 6.1's "one tower colour-agnostic, the other colour-specific"."""
    w = weight.detach().double()
    grey = w.mean(dim=1, keepdim=True)
    energy = w.pow(2).sum(dim=(1, 2, 3)).clamp_min(1e-30)
    return float(((w - grey).pow(2).sum(dim=(1, 2, 3)) / energy).mean())


def save_png(picture: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 RGB array as a PNG (lossless), making its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(path)
    return path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, none assumed
    import matplotlib.pyplot as plt

    return plt


def neighbours_figure(
    queries: Sequence[np.ndarray],
    neighbours: Sequence[Sequence[np.ndarray]],
    distances: Sequence[Sequence[float]],
    path: str | Path,
) -> Path:
    """Figure 4: each query image (first column) followed by its nearest training images,
    each titled with its fc7 distance."""
    plt = _pyplot()
    cols = 1 + max(len(row) for row in neighbours)
    fig, axes = plt.subplots(
        len(queries), cols, figsize=(1.6 * cols, 1.7 * len(queries)), squeeze=False
    )
    for r, (query, row, dists) in enumerate(zip(queries, neighbours, distances, strict=True)):
        axes[r][0].imshow(query)
        axes[r][0].set_title("validation", fontsize=7)
        for c, (image, d) in enumerate(zip(row, dists, strict=True), start=1):
            axes[r][c].imshow(image)
            axes[r][c].set_title(f"{d:.1f}", fontsize=7)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle("Nearest training images by fc7 distance (Figure 4)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def error_chart(
    labels: Sequence[str], errors: Mapping[str, Sequence[float]], path: str | Path
) -> Path:
    """A grouped bar chart: one group per job (``labels``), one bar per series of
    ``errors`` (``{"val top-1": [...], ...}``, NaN where a job has none)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(labels) + 2), 3.5))
    width = 0.8 / max(1, len(errors))
    x = np.arange(len(labels))
    for i, (name, values) in enumerate(errors.items()):
        ax.bar(x + (i - (len(errors) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("error")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


# The curves a run draws (LearningCurves): what each figure's panel shows.
CURVE_PANELS = {
    "loss": ("train/loss", "val/loss"),
    "error": ("val/top1_error", "val/top5_error"),
    "learning rate": ("lr",),
}


def learning_curves(
    runs: Mapping[str, Sequence[Mapping[str, float]]], path: str | Path, title: str = ""
) -> Path:
    """Loss, validation errors and learning rate against epoch, one line per run and key:
    ``runs`` maps a run's label to its rows (``{"epoch": e, "val/top1_error": ..., ...}``, a
    key left out where the epoch has none)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(CURVE_PANELS), figsize=(4.2 * len(CURVE_PANELS), 3.4))
    for ax, (panel, keys) in zip(axes, CURVE_PANELS.items(), strict=True):
        for label, rows in runs.items():
            for key in keys:
                points = [(r["epoch"], r[key]) for r in rows if key in r]
                if points:
                    name = key if len(runs) == 1 else f"{label}: {key}"
                    ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_title(panel, fontsize=10)
        if panel == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        elif panel == "error":
            ax.set_ylim(0, 1)
        if ax.has_data():
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path
