"""The paper's pictures and the report's chart, as arrays and PNG files.

:func:`kernel_grid` draws Figure 3 (the conv1 kernels, one row block per tower) pixel for
pixel, so the PNG holds exactly the stretched weights; :func:`kernel_figure` (the same,
titled and labelled), :func:`neighbours_figure` (Figure 4) and :func:`error_chart` (the
ablation report) are matplotlib figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid

KERNELS_PER_ROW = 16
_GAP = 1  # pixels between kernels
_TOWER_GAP = 4  # pixels between the towers' blocks
_BACKGROUND = 255


def kernel_grid(weight: Tensor, towers: int, scale: int = 4) -> np.ndarray:
    """Figure 3: ``weight`` ``(n, 3, h, w)`` (conv1's, towers concatenated) as a uint8 RGB
    picture, pixel for pixel; each tower's ``n / towers`` kernels fill a block of rows,
    ``KERNELS_PER_ROW`` to a row (torchvision's ``make_grid``, each kernel stretched on its own),
    each kernel enlarged ``scale`` times (nearest neighbour)."""
    big = weight.detach().double().cpu().repeat_interleave(scale, 2).repeat_interleave(scale, 3)
    blocks = []
    for tower in big.chunk(towers):
        grid = make_grid(
            tower, KERNELS_PER_ROW, _GAP, normalize=True, scale_each=True, pad_value=1.0
        )
        blocks.append((grid * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())
    # make_grid pads every kernel on all sides, so the towers' blocks touch at one gap; the
    # rest of the space between them, and a full row of columns where a tower is short, is
    # background.
    width = max(b.shape[1] for b in blocks)
    space = np.full((_TOWER_GAP - _GAP, width, 3), _BACKGROUND, dtype=np.uint8)
    rows = [
        np.pad(b, ((0, 0), (0, width - b.shape[1]), (0, 0)), constant_values=_BACKGROUND)
        for b in blocks
    ]
    return np.concatenate([part for r in rows for part in (r, space)][:-1])


def kernel_figure(weight: Tensor, towers: int, path: str | Path, title: str) -> Path:
    """Figure 3 as a person reads it: :func:`kernel_grid` with ``title`` above and each
    tower's block labelled as the paper's two GPUs, at a size where an 11x11 kernel shows."""
    picture = kernel_grid(weight, towers)
    plt = pyplot()
    height, width = picture.shape[:2]
    fig, ax = plt.subplots(figsize=(width / 90 + 1.2, height / 90 + 0.6))
    ax.imshow(picture, interpolation="nearest")
    block = height / towers
    for tower in range(towers):
        name = f"tower {tower + 1}" + (f" (GPU {tower + 1})" if towers > 1 else "")
        ax.text(-8, (tower + 0.5) * block, name, rotation=90, ha="right", va="center", fontsize=9)
    ax.set_axis_off()
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


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


def pyplot() -> Any:
    """matplotlib's pyplot on its file-only backend, imported on first use (a command that
    draws nothing never loads it)."""
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
    plt = pyplot()
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
    return save_figure(fig, path)


def error_chart(
    labels: Sequence[str],
    errors: Mapping[str, Sequence[Sequence[float]]],
    path: str | Path,
    failed: Sequence[int] = (),
    chance: float | None = None,
    running: Sequence[int] = (),
) -> Path:
    """Grouped bars: one group per arm (``labels``), one bar per series of ``errors``
    (``{"val top-1": [[each seed's error in arm 0], ...], ...}``) at the mean of the arm's
    values, its sample standard deviation as an error bar and each value as a dot; under each
    arm its number of values and of ``failed`` and ``running`` jobs. An arm with no value is a
    hatched empty slot labelled "failed" (or "running" where none failed); ``chance``, where
    given, is a dashed line."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(labels) + 2), 4.0))
    width = 0.8 / max(1, len(errors))
    x = np.arange(len(labels))
    for i, (name, arms) in enumerate(errors.items()):
        at = x + (i - (len(errors) - 1) / 2) * width
        means = [float(np.mean(v)) if len(v) else 0.0 for v in arms]
        ax.bar(at, means, width, color=f"C{i}", alpha=0.7, label=name)
        spread = [a for a, v in enumerate(arms) if len(v) > 1]  # a spread needs two values
        ax.errorbar(
            at[spread],
            [means[a] for a in spread],
            yerr=[float(np.std(arms[a], ddof=1)) for a in spread],
            fmt="none",
            ecolor="0.3",
            capsize=4,
            linewidth=1,
        )
        for position, values in zip(at, arms, strict=True):
            ax.plot(
                [position] * len(values),
                values,
                "o",
                color="black",
                markeredgecolor="white",
                markersize=4,
                zorder=3,
            )
    counts = [max((len(arms[a]) for arms in errors.values()), default=0) for a in range(len(x))]
    lost = list(failed) or [0] * len(x)
    going = list(running) or [0] * len(x)
    for position, seeds, f, r in zip(x, counts, lost, going, strict=True):
        if not seeds:
            ax.bar(position, 1.0, 0.8, fill=False, hatch="//", edgecolor="0.7", linewidth=0)
            slot = "running" if r and not f else "failed"
            ax.text(position, 0.5, slot, ha="center", va="center", fontsize=8)
    if chance is not None:
        ax.axhline(chance, linestyle="--", color="0.4", linewidth=1, label=f"chance ({chance:.2f})")
    ticks = [
        f"{label}\nn={n}" + (f", {f} failed" if f else "") + (f", {r} running" if r else "")
        for label, n, f, r in zip(labels, counts, lost, going, strict=True)
    ]
    ax.set_xticks(x, ticks, rotation=20, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_ylabel("validation error: mean ± sd, seeds as dots", fontsize=9)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=4, frameon=False)
    fig.tight_layout()
    return save_figure(fig, path)


# The curves a run draws (LearningCurves): what each figure's panel shows.
CURVE_PANELS = {
    "loss": ("train/loss", "val/loss"),
    "error": ("val/top1_error", "val/top5_error", "train/top1_error"),
    "learning rate": ("lr",),
}


def learning_curves(
    runs: Mapping[str, Sequence[Mapping[str, float]]],
    path: str | Path,
    title: str = "",
    arm_of: Mapping[str, str] | None = None,
) -> Path:
    """Loss, validation errors and learning rate against epoch: ``runs`` maps a run's label to
    its rows (``{"epoch": e, "val/top1_error": ..., ...}``, a key left out where the epoch has
    none). One run: a line per key. Several: a colour per arm (``arm_of`` maps a run's label to
    its arm's, each run its own arm without it), a thin line per run in it, the panel's keys
    told apart by line style, and one legend of the arms, so that a sweep of a dozen runs
    stays readable."""
    plt = pyplot()
    from matplotlib.lines import Line2D

    arm = {label: (arm_of or {}).get(label, label) for label in runs}
    colour = {name: f"C{i % 10}" for i, name in enumerate(dict.fromkeys(arm.values()))}
    styles: tuple[Literal["-", "--", ":"], ...] = ("-", "--", ":")
    fig, axes = plt.subplots(1, len(CURVE_PANELS), figsize=(4.2 * len(CURVE_PANELS), 3.4))
    for ax, (panel, keys) in zip(axes, CURVE_PANELS.items(), strict=True):
        for label, rows in runs.items():
            for style, key in zip(styles, keys, strict=False):
                points = [(r["epoch"], r[key]) for r in rows if key in r]
                if not points:
                    continue
                if len(runs) == 1:
                    ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label=key)
                else:
                    ax.plot(
                        *zip(*points, strict=True),
                        style,
                        color=colour[arm[label]],
                        linewidth=1,
                        alpha=0.8,
                    )
        ax.set_xlabel("epoch")
        ax.set_title(panel, fontsize=10)
        if panel == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        elif panel == "error":
            ax.set_ylim(0, 1)
        if len(runs) == 1 and ax.has_data():
            ax.legend(fontsize=7)
        elif len(keys) > 1 and ax.has_data():
            handles = [Line2D([], [], color="0.3", linestyle=s) for s in styles[: len(keys)]]
            ax.legend(handles, keys, fontsize=7)
    if len(runs) > 1:
        handles = [Line2D([], [], color=c, linewidth=2) for c in colour.values()]
        fig.legend(handles, list(colour), fontsize=8, loc="lower center", ncol=min(6, len(colour)))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.1 if len(runs) > 1 else 0, 1, 1))
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write a matplotlib figure as a PNG, making its folder, and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
    return path
