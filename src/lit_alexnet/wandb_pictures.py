"""Pictures made after training (Figures 3 and 4 by ``figures``, a sweep's charts by
``report``) logged to Weights & Biases, beside the training runs they come from.

A finished W&B run cannot be resumed offline (W&B's default here), so the pictures go into a
new run of their own: W&B's ``job_type`` says what made it (``figures``, ``report``), and the
training run's project and group (a multirun's jobs share one), read from its
``results.json``, put it beside them. Offline unless ``WANDB_MODE=online``, like training.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT = "lit_alexnet"  # conf/logger/wandb.yaml's, for a run trained without W&B


def wandb_mode() -> str:
    """W&B's mode for these runs: ``WANDB_MODE`` if set, else offline."""
    return os.environ.get("WANDB_MODE", "offline")


def log_pictures(
    pictures: Mapping[str, Path],
    folder: Path,
    job_type: str,
    name: str,
    training: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Log ``pictures`` (W&B key -> PNG file) as images of a new W&B run of ``job_type``,
    named ``name``, in the project and group of ``training`` (``results.json``'s ``wandb``
    record of the run they come from, if it logged to W&B), with ``config``; its files go
    under ``folder/wandb``. Returns the run's folder there."""
    import wandb

    training = training or {}
    folder.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=training.get("project") or PROJECT,
        group=training.get("group"),
        job_type=job_type,
        name=name,
        dir=str(folder),
        mode=wandb_mode(),  # type: ignore[arg-type]
        config={"training_run": training.get("id"), **(config or {})},
    )
    try:
        run.log({key: wandb.Image(str(path)) for key, path in pictures.items()})
    finally:
        run.finish()
    return Path(run.dir).parent


def saved_line(where: Path) -> str:
    """The line a command prints after :func:`log_pictures`."""
    if wandb_mode() == "offline":
        return f"W&B run saved offline in {where} (`wandb sync {where}` uploads it)"
    return f"W&B run logged: {where}"
