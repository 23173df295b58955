"""``python -m lit_alexnet.figures RUN``: the paper's Figures 3 and 4 for a trained run.

    python -m lit_alexnet.figures outputs/2026-12-02/10-00-00
    python -m lit_alexnet.figures RUN --train-images 5000 --queries 8 --neighbours 6

Writes into ``RUN/figures/``:

- ``conv1_kernels.png`` (Figure 3): the first layer's kernels, each tower's on its own block
  of rows, labelled, each kernel contrast-stretched on its own; ``conv1_kernels_pixels.png``
  holds the same picture pixel for pixel, untitled (each kernel 4x enlarged). The command
  also prints each tower's colour selectivity (:func:`lit_alexnet.plots.colour_selectivity`),
  the number behind the paper's observation that one tower learns colour-agnostic kernels
  and the other colour ones (section 6.1).
- ``neighbours.png`` (Figure 4): validation images, each followed by the training images
  whose fc7 vectors (:meth:`lit_alexnet.AlexNet.features`) are nearest in Euclidean distance;
  ``--train-images`` caps how many training images are embedded (evenly spread).

``--wandb`` also logs both figures to a W&B run of ``job_type`` ``figures`` in the training
run's project and group (:func:`lit_alexnet.wandb_pictures.log_pictures`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from torch import Tensor

from lit_alexnet.console import prog
from lit_alexnet.data.images import open_image
from lit_alexnet.data.parallel import progress_bar
from lit_alexnet.data.transforms import CenterCropTransform, mean_tensor
from lit_alexnet.job import run_config
from lit_alexnet.module import LitAlexNet
from lit_alexnet.nn import AlexNet
from lit_alexnet.plots import (
    colour_selectivity,
    kernel_figure,
    kernel_grid,
    neighbours_figure,
    save_png,
)
from lit_alexnet.runs import RunError, best_checkpoint, read_results, run_dir_of
from lit_alexnet.wandb_pictures import log_pictures, saved_line


@dataclass
class Figures:
    """What :func:`make_figures` wrote and measured."""

    conv1_kernels: Path
    conv1_kernels_pixels: Path
    neighbours: Path
    selectivity: list[float]  # per tower, colour_selectivity of its conv1 kernels
    train_images: int  # embedded for Figure 4


def nearest(queries: Tensor, pool: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` rows of ``pool`` nearest each row of ``queries`` in Euclidean distance:
    ``(distances, indices)``, nearest first."""
    distances = torch.cdist(queries.double(), pool.double())
    found = distances.topk(min(k, pool.shape[0]), dim=1, largest=False)
    return found.values, found.indices


def spread(count: int, limit: int | None) -> list[int]:
    """At most ``limit`` indices of ``range(count)``, evenly spread (all where no limit)."""
    if limit is None or limit >= count:
        return list(range(count))
    return sorted({int(i) for i in np.linspace(0, count - 1, limit)})


def embed(
    net: AlexNet, files: Sequence[Path], transform: CenterCropTransform, what: str, batch: int = 32
) -> Tensor:
    """fc7 vectors of ``files`` (as validation images are read), with a progress bar."""
    out = []
    with progress_bar() as bar, torch.no_grad():
        task = bar.add_task(f"fc7 of {what}", total=len(files))
        for start in range(0, len(files), batch):
            chunk = files[start : start + batch]
            x = torch.stack([transform(open_image(f)) for f in chunk])
            out.append(net.features(x, layer="fc7").float())
            bar.advance(task, len(chunk))
    return torch.cat(out)


def shown(path: Path, transform: CenterCropTransform) -> np.ndarray:
    """The image as the network saw it, before the mean is subtracted: uint8 224x224 RGB."""
    full = transform.decode(open_image(path))
    offset = (transform.resize - transform.crop) // 2
    patch = full[:, offset : offset + transform.crop, offset : offset + transform.crop]
    return patch.permute(1, 2, 0).numpy()


def make_figures(
    run: str | Path,
    overrides: Sequence[str] = (),
    train_images: int | None = 2000,
    queries: int = 6,
    neighbours: int = 6,
) -> Figures:
    """Write Figures 3 and 4 of ``run`` into ``run/figures``."""
    folder = run_dir_of(run) / "figures"
    checkpoint = best_checkpoint(run)
    model = LitAlexNet.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    net = model.net.eval()
    towers = len(net.towers)
    weights = [w.cpu() for w in net.conv1_weights()]
    kernels = torch.cat(weights)
    pixels = save_png(kernel_grid(kernels, towers), folder / "conv1_kernels_pixels.png")
    n, _, h, w = kernels.shape
    epochs = read_results(run_dir_of(run)).get("epochs")
    trained = f" after {epochs} epochs" if epochs is not None else ""
    title = f"conv1's {n} kernels ({h}x{w}x3){trained} (Figure 3)"
    kernel_picture = kernel_figure(kernels, towers, folder / "conv1_kernels.png", title)

    datamodule = instantiate(run_config(run, overrides).data)
    datamodule.prepare_data()
    train, val = datamodule.image_list("train"), datamodule.image_list("val")
    transform = CenterCropTransform(mean_tensor(datamodule.dataset_stats(), datamodule.mean))
    pool = [train.files[i] for i in spread(len(train), train_images)]
    # One query per class, the first of each, as many as asked.
    firsts = {label: f for f, label in reversed(list(zip(val.files, val.labels, strict=True)))}
    chosen = [firsts[label] for label in sorted(firsts)][:queries]
    dist, idx = nearest(
        embed(net, chosen, transform, "validation images"),
        embed(net, pool, transform, "training images"),
        neighbours,
    )
    picture = neighbours_figure(
        [shown(f, transform) for f in chosen],
        [[shown(pool[i], transform) for i in row] for row in idx.tolist()],
        dist.tolist(),
        folder / "neighbours.png",
    )
    selectivity = [colour_selectivity(w) for w in weights]
    return Figures(kernel_picture, pixels, picture, selectivity, len(pool))


def main(argv: Sequence[str] | None = None) -> int:
    """Write a run's figures; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog=prog("lit_alexnet.figures"), description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("run", type=Path, help="a run's output directory or a .ckpt file")
    parser.add_argument("overrides", nargs="*", help="key=value data overrides (data.root=...)")
    parser.add_argument(
        "--train-images", type=int, default=2000, help="training images to embed (default 2000)"
    )
    parser.add_argument("--queries", type=int, default=6, help="validation images (default 6)")
    parser.add_argument("--neighbours", type=int, default=6, help="per query (default 6)")
    parser.add_argument(
        "--wandb",
        action="store_true",
        help="also log the figures to W&B, beside the training run (offline unless "
        "WANDB_MODE=online)",
    )
    args = parser.parse_args(argv)
    try:
        made = make_figures(
            args.run, args.overrides, args.train_images, args.queries, args.neighbours
        )
    except (RunError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for tower, share in enumerate(made.selectivity):
        print(f"tower {tower} conv1 colour selectivity {share:.3f} (0: grey kernels, 1: colour)")
    print(
        f"wrote {made.conv1_kernels} and {made.neighbours} "
        f"({made.train_images} training images embedded)"
    )
    if args.wandb:
        run = run_dir_of(args.run)
        training = read_results(run).get("wandb")
        where = log_pictures(
            {"figure3/conv1_kernels": made.conv1_kernels, "figure4/neighbours": made.neighbours},
            run / "figures",
            "figures",
            name=f"{training['name']}-figures" if training else "figures",
            training=training,
            config={"run": str(run), "train_images": made.train_images},
        )
        print(saved_line(where))
    return 0


if __name__ == "__main__":
    sys.exit(main())
