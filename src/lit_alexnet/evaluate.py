"""``python -m lit_alexnet.evaluate RUN``: a run's top-1 and top-5 errors, one crop and ten.

    python -m lit_alexnet.evaluate outputs/2026-12-02/10-00-00            # its best checkpoint
    python -m lit_alexnet.evaluate outputs/.../checkpoints/last.ckpt views=center
    python -m lit_alexnet.evaluate RUN data=folder data.root=/data/other  # other data

RUN is a run's output directory or a checkpoint in one. The data is the run's own (its
``.hydra/overrides.yaml``), with any ``key=value`` overrides on top; ``views=`` lists the
views, by default ``center,ten_crop``: the centre 224x224 patch, and section 4.1's ten patches
with their softmax outputs averaged. One line per view is printed and all are written to
``eval.json`` beside the checkpoints.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate

from lit_alexnet.callbacks import progress_bar
from lit_alexnet.console import prog, quiet_console
from lit_alexnet.data.choices import VIEWS
from lit_alexnet.job import run_config, trainer_precision
from lit_alexnet.module import LitAlexNet
from lit_alexnet.runs import RunError, best_checkpoint, run_dir_of

EVAL = "eval.json"


def evaluate(
    run: str | Path, overrides: Sequence[str] = (), views: Sequence[str] = VIEWS
) -> dict[str, dict[str, float]]:
    """``{view: {"top1_error", "top5_error"}}`` of the run's best checkpoint on its validation
    split (or the data ``overrides`` name); also written to ``eval.json`` in the run."""
    for view in views:
        if view not in VIEWS:
            raise ValueError(f"views={view!r}: choose from {list(VIEWS)}")
    checkpoint = best_checkpoint(run)
    cfg = run_config(run, overrides)
    quiet_console(wandb_offline=True)
    model = LitAlexNet.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    trainer = L.Trainer(
        accelerator=str(cfg.trainer.accelerator),
        devices=1,
        precision=trainer_precision(cfg.trainer),  # type: ignore[arg-type]
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[progress_bar()],
    )
    results: dict[str, dict[str, float]] = {}
    for view in views:
        datamodule = instantiate(cfg.data, val_views=view)
        (metrics,) = trainer.validate(model, datamodule=datamodule, verbose=False)
        results[view] = {k: float(metrics[f"val/{k}"]) for k in ("top1_error", "top5_error")}
    record: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "overrides": list(overrides),
        "data": str(getattr(datamodule, "root", "")),
        "images": datamodule.split_size("val"),
        **results,
    }
    (run_dir_of(run) / EVAL).write_text(json.dumps(record, indent=2) + "\n")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate a run; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog=prog("lit_alexnet.evaluate"), description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("run", type=Path, help="a run's output directory or a .ckpt file")
    parser.add_argument(
        "overrides",
        nargs="*",
        help="key=value training-config overrides (data=..., data.root=...), and views=...",
    )
    args = parser.parse_args(argv)
    views: Sequence[str] = VIEWS
    overrides = []
    for item in args.overrides:
        if item.startswith("views="):
            views = [v for v in item.removeprefix("views=").split(",") if v]
        else:
            overrides.append(item)
    try:
        results = evaluate(args.run, overrides, views)
    except (RunError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for view, figures in results.items():
        top1, top5 = figures["top1_error"], figures["top5_error"]
        print(f"{view} top-1 error {top1:.3f} | top-5 error {top5:.3f}")
    print(f"wrote {run_dir_of(args.run) / EVAL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
