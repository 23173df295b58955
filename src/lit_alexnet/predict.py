"""``python -m lit_alexnet.predict RUN IMAGE...``: the five likeliest classes of each image.

    python -m lit_alexnet.predict outputs/2026-12-02/10-00-00 cat.jpg phone-photo.heic.jpg
    python -m lit_alexnet.predict outputs/.../checkpoints/last.ckpt *.png --top 3

RUN is a run's output directory (its best checkpoint is used) or a checkpoint. Each image is
read as validation images are (section 2: shorter side to 256, the centre 256x256, the
training mean subtracted, the centre 224x224 patch), after turning it upright as its EXIF
orientation says, so phone photos, PNGs and grayscale images all work. The class names and
the mean come from the checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from lit_alexnet.console import prog
from lit_alexnet.data.images import NotAnImage, open_image
from lit_alexnet.data.transforms import CenterCropTransform
from lit_alexnet.module import PREPROCESSING, LitAlexNet
from lit_alexnet.runs import RunError, best_checkpoint


def predict(
    run: str | Path, images: Sequence[str | Path], top: int = 5
) -> list[list[tuple[str, float]]]:
    """For each image, its ``top`` likeliest ``(class name, probability)``, likeliest first."""
    path = best_checkpoint(run)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if PREPROCESSING not in saved:
        raise RunError(
            f"{path} holds no class names or mean (it was written before lit_alexnet 0.2, or "
            "without a lit_alexnet datamodule): evaluate it with python -m lit_alexnet.evaluate"
        )
    names: list[str] = saved[PREPROCESSING]["class_names"]
    transform = CenterCropTransform(saved[PREPROCESSING]["mean"])
    pictures = [open_image(p) for p in images]  # every file checked before any work
    model = LitAlexNet.load_from_checkpoint(path, map_location="cpu", weights_only=True).eval()
    batch = torch.stack([transform(p) for p in pictures])
    with torch.no_grad():
        probs = model.predict_proba(batch)
    best = probs.topk(min(top, probs.shape[1]), dim=1)
    return [
        [(names[i], float(p)) for p, i in zip(ps.tolist(), idx.tolist(), strict=True)]
        for ps, idx in zip(best.values, best.indices, strict=True)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Print each image's likeliest classes; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog=prog("lit_alexnet.predict"), description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("run", type=Path, help="a run's output directory or a .ckpt file")
    parser.add_argument("images", type=Path, nargs="+", help="image files")
    parser.add_argument("--top", type=int, default=5, help="how many classes (default 5)")
    args = parser.parse_args(argv)
    try:
        results = predict(args.run, args.images, top=args.top)
    except (NotAnImage, RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for image, classes in zip(args.images, results, strict=True):
        print(f"{image}: " + ", ".join(f"{name} {p:.3f}" for name, p in classes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
