"""``python -m lit_alexnet.figure1``: the paper's Figure 1, ReLU against tanh (section 3.1).

    python -m lit_alexnet.figure1                      # 3 seeds, lr 0.01 0.02 0.04, ./figure1/
    python -m lit_alexnet.figure1 --seeds 5 --max-epochs 20 --out /tmp/figure1

The paper: "a four-layer convolutional neural network with ReLUs reaches a 25% training
error rate on CIFAR-10 six times faster than an equivalent network with tanh neurons", each
net's learning rate "chosen independently to make training as fast as possible". CIFAR-10
cannot be downloaded here, so the nets train on the built-in dataset
(:mod:`lit_alexnet.data.builtin`) reduced to 32x32, held in memory as uint8.

Every (activation, learning rate, seed) trains :class:`~lit_alexnet.nn.small_cnn.SmallCNN`
with SGD, momentum 0.9, until its training error over the last epoch's batches (the running
error the paper's figure plots) first reaches the threshold, or for ``--max-epochs`` (then
the run is censored: it did not get there). For a seed both activations start from the same
weights and see the same batches. Each activation's learning rate is the one of ``--lrs``
with the fewest median steps to the threshold; the ratio tanh / ReLU is taken per seed at
those rates, and its geometric mean with a 95% t interval over the seeds' log ratios.

Writes ``figure1.json`` (every run and the summary) and ``figure1.png`` (training error
against epoch, ReLU solid and tanh dashed, the threshold dotted) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from lit_alexnet.checks import Refused, check
from lit_alexnet.console import duration, prog
from lit_alexnet.data.builtin import BuiltinSpec, ensure_builtin_dataset
from lit_alexnet.data.cache import default_cache_dir
from lit_alexnet.intervals import RatioInterval, ratio_interval
from lit_alexnet.nn.small_cnn import ACTIVATIONS, INPUT_SIZE, SmallCNN
from lit_alexnet.plots import pyplot, save_figure
from lit_alexnet.precision import cpu_name

PAPER_RATIO = 6.0  # section 3.1: ReLU reaches 25% training error six times faster than tanh
THRESHOLD = 0.25
MOMENTUM = 0.9
LEARNING_RATES = (0.01, 0.02, 0.04)
# The built-in generator's smallest image side; its square images are reduced to 32x32.
_SOURCE_SIDE = 64


# ----------------------------------------------------------------------------- data


def load_images(
    cache_dir: str | Path, per_class: int, num_classes: int = 10
) -> tuple[Tensor, Tensor]:
    """The built-in training set at 32x32 (section 3.1 used CIFAR-10's 32x32 images): uint8
    images ``(n, 3, 32, 32)`` and int64 labels ``(n,)``, ``per_class`` of each class.

    The generator draws square 64x64 images (its smallest size) that are reduced 2x2 -> 1.
    """
    spec = BuiltinSpec(
        num_classes=num_classes,
        train_per_class=per_class,
        val_per_class=1,
        min_side=_SOURCE_SIDE,
        max_side=_SOURCE_SIDE,
    )
    root = ensure_builtin_dataset(cache_dir, spec) / "train"
    pictures: list[np.ndarray] = []
    labels: list[int] = []
    for label, name in enumerate(spec.class_names):
        for path in sorted((root / name).glob("*.jpg")):
            with Image.open(path) as image:
                small = image.convert("RGB").resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BOX)
            pictures.append(np.asarray(small))
            labels.append(label)
    images = torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(labels, dtype=torch.int64)


def standardise(images: Tensor) -> Tensor:
    """``images`` (uint8) as float32 with each channel's mean 0 and standard deviation 1."""
    x = images.float()
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    std = x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return (x - mean) / std


# ----------------------------------------------------------------------------- measuring


def steps_to_threshold(
    wrong: Sequence[int], sizes: Sequence[int], window: int, threshold: float = THRESHOLD
) -> int | None:
    """The first step ``s`` (counted from 1) at which the training error over the last
    ``window`` batches (steps ``s - window + 1 .. s``: the last epoch's, as Figure 1 plots
    it) is at most ``threshold``; None where it never is. ``wrong[i]`` of ``sizes[i]``
    examples of batch ``i`` were misclassified, as the net stood when it took the batch."""
    check(window >= 1, "window", window, "must be >= 1")
    check(len(wrong) == len(sizes), "wrong", len(wrong), f"must be as long as sizes ({len(sizes)})")
    missed = seen = 0
    for step, (w, n) in enumerate(zip(wrong, sizes, strict=True), start=1):
        missed, seen = missed + w, seen + n
        if step > window:
            missed, seen = missed - wrong[step - 1 - window], seen - sizes[step - 1 - window]
        if step >= window and missed <= threshold * seen:
            return step
    return None


def epoch_errors(wrong: Sequence[int], sizes: Sequence[int], steps_per_epoch: int) -> list[float]:
    """The training error of each whole epoch: the points Figure 1 plots."""
    epochs = len(wrong) // steps_per_epoch
    return [
        sum(wrong[e * steps_per_epoch : (e + 1) * steps_per_epoch])
        / sum(sizes[e * steps_per_epoch : (e + 1) * steps_per_epoch])
        for e in range(epochs)
    ]


@dataclass
class Run:
    """One training run: its settings, steps to the threshold (None: censored, it never got
    there within ``max_epochs``) and the training error of each epoch."""

    activation: str
    lr: float
    seed: int
    steps: int | None
    steps_per_epoch: int
    steps_run: int
    wall_s: float
    epoch_errors: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> float | None:
        """Steps to the threshold in epochs."""
        return None if self.steps is None else self.steps / self.steps_per_epoch


def train_until(
    images: Tensor,
    labels: Tensor,
    activation: str,
    lr: float,
    seed: int,
    *,
    batch_size: int = 64,
    max_epochs: int = 15,
    threshold: float = THRESHOLD,
) -> Run:
    """Train Figure 1's net (section 3.1) with SGD (momentum 0.9) on standardised ``images``
    until the last epoch's training error reaches ``threshold``, checked at each epoch's end,
    or for ``max_epochs``. ``seed`` fixes the initial weights and the batches, the same for
    either activation."""
    torch.manual_seed(seed)
    model = SmallCNN(activation, num_classes=int(labels.max()) + 1)
    order = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM)
    n = len(images)
    steps_per_epoch = math.ceil(n / batch_size)
    wrong: list[int] = []
    sizes: list[int] = []
    steps: int | None = None
    start = time.perf_counter()
    model.train()
    for _ in range(max_epochs):
        for batch in torch.randperm(n, generator=order).split(batch_size):
            scores = model(images[batch])
            loss = F.cross_entropy(scores, labels[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            wrong.append(int((scores.argmax(1) != labels[batch]).sum()))
            sizes.append(len(batch))
        if not math.isfinite(loss.item()):
            break  # diverged: it will not come back
        steps = steps_to_threshold(wrong, sizes, steps_per_epoch, threshold)
        if steps is not None:
            break
    return Run(
        activation=activation,
        lr=lr,
        seed=seed,
        steps=steps,
        steps_per_epoch=steps_per_epoch,
        steps_run=len(wrong),
        wall_s=time.perf_counter() - start,
        epoch_errors=epoch_errors(wrong, sizes, steps_per_epoch),
    )


def median_steps(runs: Sequence[Run]) -> float:
    """The median steps to the threshold of ``runs``, a censored run counting as infinitely
    many (so the median is infinite where half or more are censored)."""
    return statistics.median(math.inf if r.steps is None else r.steps for r in runs)


def best_learning_rate(runs: Sequence[Run], activation: str) -> float:
    """The learning rate at which ``activation``'s runs reach the threshold in the fewest
    median steps (the smaller rate on a tie): the paper chose each net's "to make training as
    fast as possible"."""
    rates = sorted({r.lr for r in runs if r.activation == activation})
    check(bool(rates), "activation", activation, "has no runs")
    return min(
        rates,
        key=lambda lr: (
            median_steps([r for r in runs if r.activation == activation and r.lr == lr]),
            lr,
        ),
    )


# ----------------------------------------------------------------------------- the interval


# ----------------------------------------------------------------------------- the summary


@dataclass
class Summary:
    """The chosen learning rates, each seed's steps at them and the ratios tanh / ReLU."""

    chosen: dict[str, float]
    relu: dict[int, Run]
    tanh: dict[int, Run]
    ratios: dict[int, float | None]  # None where either run is censored
    interval: RatioInterval | None  # over the uncensored seeds; None where there is none

    @property
    def censored(self) -> list[int]:
        """The seeds whose ratio is unknown because a run never reached the threshold."""
        return [seed for seed, ratio in self.ratios.items() if ratio is None]


def summarise(runs: Sequence[Run]) -> Summary:
    """Each activation at its best learning rate, seed by seed, and the ratio tanh / ReLU."""
    chosen = {act: best_learning_rate(runs, act) for act in ("relu", "tanh")}
    at = {
        act: {r.seed: r for r in runs if r.activation == act and r.lr == chosen[act]}
        for act in chosen
    }
    seeds = sorted(set(at["relu"]) & set(at["tanh"]))
    ratios: dict[int, float | None] = {}
    for seed in seeds:
        relu, tanh = at["relu"][seed].steps, at["tanh"][seed].steps
        ratios[seed] = None if relu is None or tanh is None else tanh / relu
    known = [r for r in ratios.values() if r is not None]
    interval = ratio_interval(known) if known else None
    return Summary(chosen, at["relu"], at["tanh"], ratios, interval)


def _steps(run: Run) -> str:
    if run.steps is None:
        return f"> {run.steps_run} (censored)"
    return f"{run.steps} ({run.epochs:.2f} ep)"


def _censored_bound(summary: Summary, seed: int) -> str:
    """What a censored seed's ratio is known to be: at least (tanh censored) or at most."""
    relu, tanh = summary.relu[seed], summary.tanh[seed]
    if relu.steps is not None and tanh.steps is None:
        return f"> {tanh.steps_run / relu.steps:.2f}"
    if relu.steps is None and tanh.steps is not None:
        return f"< {tanh.steps / relu.steps_run:.2f}"
    return "unknown"


def seeds_table(summary: Summary) -> str:
    """The markdown table of steps to the threshold per seed and the ratio tanh / ReLU."""
    relu_lr, tanh_lr = summary.chosen["relu"], summary.chosen["tanh"]
    lines = [
        f"| seed | ReLU steps (lr {relu_lr:g}) | tanh steps (lr {tanh_lr:g}) | tanh / ReLU |",
        "|---|---|---|---|",
    ]
    for seed, ratio in summary.ratios.items():
        shown = f"{ratio:.2f}" if ratio is not None else _censored_bound(summary, seed)
        relu, tanh = _steps(summary.relu[seed]), _steps(summary.tanh[seed])
        lines.append(f"| {seed} | {relu} | {tanh} | {shown} |")
    return "\n".join(lines)


def grid_table(runs: Sequence[Run]) -> str:
    """The markdown table of the learning-rate grid: per activation and rate, each seed's
    steps to the threshold (``-`` censored) and their median."""
    lines = ["| activation | lr | steps per seed | median |", "|---|---|---|---|"]
    for act in ("relu", "tanh"):
        for lr in sorted({r.lr for r in runs if r.activation == act}):
            group = sorted((r for r in runs if r.activation == act and r.lr == lr), key=_seed)
            each = ", ".join("-" if r.steps is None else str(r.steps) for r in group)
            median = median_steps(group)
            shown = "censored" if math.isinf(median) else f"{median:g}"
            lines.append(f"| {act} | {lr:g} | {each} | {shown} |")
    return "\n".join(lines)


def _seed(run: Run) -> int:
    return run.seed


def ratio_line(summary: Summary) -> str:
    """The measured ratio with its interval, beside the paper's."""
    paper = f"paper (section 3.1, CIFAR-10): {PAPER_RATIO:g}x"
    interval = summary.interval
    censored = summary.censored
    note = f"; censored seeds {censored} left out" if censored else ""
    if interval is None:
        return f"tanh / ReLU steps to {THRESHOLD:.0%}: no seed where both got there{note}; {paper}"
    if interval.n < 2:
        spread = "no interval (1 seed)"
    else:
        spread = f"95% interval [{interval.low:.2f}, {interval.high:.2f}]"
    return (
        f"tanh / ReLU steps to {THRESHOLD:.0%}: {interval.mean:.2f}x (geometric mean over "
        f"{interval.n} seeds, {spread}){note}; {paper}"
    )


# ----------------------------------------------------------------------------- output


def machine() -> dict[str, Any]:
    """The CPU model, the logical CPUs and the threads torch uses: what the timing ran on."""
    return {"cpu": cpu_name(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def plot(summary: Summary, path: Path, threshold: float = THRESHOLD) -> Path:
    """Figure 1: training error against epoch, one line per activation and seed (ReLU solid,
    tanh dashed), the threshold as a dotted line."""
    fig, ax = pyplot().subplots(figsize=(6.4, 4.4))
    styles = {"relu": ("-", "tab:blue", "ReLU"), "tanh": ("--", "tab:red", "tanh")}
    for act, runs in (("relu", summary.relu), ("tanh", summary.tanh)):
        style, colour, name = styles[act]
        for i, run in enumerate(sorted(runs.values(), key=_seed)):
            epochs = range(1, len(run.epoch_errors) + 1)
            label = f"{name} (lr {run.lr:g})" if i == 0 else None
            ax.plot(epochs, run.epoch_errors, style, color=colour, alpha=0.8, label=label)
    ax.axhline(threshold, linestyle=":", color="black", linewidth=1)
    ax.set_xlabel("epochs")
    ax.set_ylabel("training error rate")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(f"Figure 1: steps to {threshold:.0%} training error, built-in data at 32x32")
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def _finite(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with NaN as None, which JSON can hold."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the grid, print the tables and the ratio, write the JSON and the figure."""
    parser = argparse.ArgumentParser(
        prog=prog("lit_alexnet.figure1"), description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=15,
        help="a run that has not reached the threshold by then is censored (default 15)",
    )
    parser.add_argument("--out", type=Path, default=Path("figure1"), help="default ./figure1")
    parser.add_argument(
        "--lrs",
        type=float,
        nargs="+",
        default=list(LEARNING_RATES),
        help="the learning-rate grid, the same for each activation (default %(default)s)",
    )
    parser.add_argument("--per-class", type=int, default=200, help="training images per class")
    parser.add_argument("--classes", type=int, default=10, help="classes (default 10)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--cache-dir", type=Path, help="default: the package's cache")
    given = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(given)
    try:
        for name in ("seeds", "max_epochs", "per_class", "batch_size", "threads"):
            check(getattr(args, name) >= 1, name, getattr(args, name), "must be >= 1")
        check(all(lr > 0 for lr in args.lrs), "lrs", args.lrs, "must all be > 0")
        torch.set_num_threads(args.threads)
        start = time.perf_counter()
        raw, labels = load_images(
            args.cache_dir or default_cache_dir(), args.per_class, args.classes
        )
    except Refused as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    images = standardise(raw)
    host = machine()
    print(
        f"{len(images)} images {INPUT_SIZE}x{INPUT_SIZE}, {args.classes} classes, batch "
        f"{args.batch_size}; machine: {host['cpu']}, {host['cpus']} CPUs, "
        f"{host['torch_threads']} torch threads",
        flush=True,
    )
    runs: list[Run] = []
    for seed in range(args.seeds):
        for act in ACTIVATIONS:
            for lr in args.lrs:
                run = train_until(
                    images,
                    labels,
                    act,
                    lr,
                    seed,
                    batch_size=args.batch_size,
                    max_epochs=args.max_epochs,
                )
                runs.append(run)
                print(
                    f"seed {seed} {act:4} lr {lr:<6g} steps {_steps(run):24} {run.wall_s:5.1f} s",
                    flush=True,
                )
    summary = summarise(runs)
    wall = time.perf_counter() - start
    text = "\n\n".join([grid_table(runs), seeds_table(summary), ratio_line(summary)])
    args.out.mkdir(parents=True, exist_ok=True)
    record = {
        "command": " ".join([prog("lit_alexnet.figure1"), *given]),
        "machine": host,
        "wall_s": wall,
        "settings": {
            "images": len(images),
            "classes": args.classes,
            "batch_size": args.batch_size,
            "max_epochs": args.max_epochs,
            "momentum": MOMENTUM,
            "threshold": THRESHOLD,
            "lrs": args.lrs,
            "seeds": args.seeds,
        },
        "chosen_lr": summary.chosen,
        "ratios": {str(seed): ratio for seed, ratio in summary.ratios.items()},
        "censored_seeds": summary.censored,
        "ratio_interval": _finite(asdict(summary.interval)) if summary.interval else None,
        "paper_ratio": PAPER_RATIO,
        "runs": [{**asdict(run), "epochs": run.epochs} for run in runs],
    }
    (args.out / "figure1.json").write_text(json.dumps(record, indent=2) + "\n")
    picture = plot(summary, args.out / "figure1.png")
    print(text)
    print(f"wall time {duration(wall)} on {host['cpu']} ({host['torch_threads']} torch threads)")
    print(f"wrote {args.out / 'figure1.json'} and {picture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
