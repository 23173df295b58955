"""A run killed with SIGKILL and resumed from last.ckpt ends with the uninterrupted run's
weights, bit for bit on the CPU, having trained only the steps the killed run had not: from an
epoch's end and from inside an epoch, on both data backends, with the smoke run's plateau
schedule and with the default recipe's one cycle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .test_train import train_cli

# Two epochs of 4 batches of 10 (smoke's tiny set: 40 training images), the paper's network
# with dropout, the default augmentation: everything a resumed run must draw alike.
RUN = ("+experiment=smoke", "trainer.max_epochs=2", "logger=none")
# Where the first last.ckpt is written: after epoch 0, or after step 3 of its 4.
SAVES = {
    "epoch_end": ("callbacks.last_checkpoint.every_n_epochs=1",),
    "mid_epoch": (
        "callbacks.last_checkpoint.every_n_epochs=null",
        "callbacks.last_checkpoint.every_n_train_steps=3",
    ),
}
REPO = Path(__file__).parents[1]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    return checkpoint["state_dict"]


def _killed_after_first_checkpoint(args: list[str], work: Path, cache_dir: Path) -> Path:
    """Run until the first last.ckpt is written, then SIGKILL the process (tests/sigkill.py)."""
    env = {
        **os.environ,
        "LIT_ALEXNET_CACHE": str(cache_dir),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    kill = [
        "+callbacks.sigkill._target_=tests.sigkill.SigkillAfterCheckpoint",
        "+callbacks.sigkill.dirpath=${hydra:runtime.output_dir}/checkpoints",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "lit_alexnet.train", *args, *kill, "hydra.run.dir=killed"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work / "killed/checkpoints/last.ckpt"


def _case(backend: str, save: str, scheduler: str) -> object:
    marks = [pytest.mark.dali] if backend == "dali" else []
    return pytest.param(backend, save, scheduler, marks=marks, id=f"{backend}-{save}-{scheduler}")


# Both backends and save points with the plateau schedule; the one cycle (stepped every batch,
# sized to the run) from inside an epoch on one backend and from an epoch's end on the other.
CASES = [
    *(_case(backend, save, "plateau") for backend in ("dali", "torchvision") for save in SAVES),
    _case("torchvision", "mid_epoch", "onecycle"),
    _case("dali", "epoch_end", "onecycle"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "save", "scheduler"), CASES)
def test_a_killed_run_resumes_to_the_same_weights(
    backend: str, save: str, scheduler: str, tmp_path: Path, cache_dir: Path
) -> None:
    args = [*RUN, f"data.backend={backend}", f"scheduler={scheduler}", *SAVES[save]]
    train_cli(*args, "hydra.run.dir=whole", cwd=tmp_path, cache_dir=cache_dir)
    whole = _weights(tmp_path / "whole")
    last = _killed_after_first_checkpoint(args, tmp_path, cache_dir)
    state = torch.load(last, map_location="cpu", weights_only=False)
    killed_at = 4 if save == "epoch_end" else 3
    assert state["global_step"] == killed_at

    train_cli(
        *args, f"ckpt_path={last}", "hydra.run.dir=resumed", cwd=tmp_path, cache_dir=cache_dir
    )
    resumed = _weights(tmp_path / "resumed")
    assert resumed.keys() == whole.keys()
    for name, tensor in whole.items():
        assert torch.equal(resumed[name], tensor), name
    # The resumed process trained only the 8 - killed_at steps of 10 images the killed one
    # had not: a "resume" that ignored ckpt_path would retrain all 8 to the same weights.
    results = json.loads((tmp_path / "resumed/results.json").read_text())
    assert results["train_images"] == (8 - killed_at) * 10
    # The killed run's weights are not the last: the comparison above had work to do.
    assert not torch.equal(state["state_dict"]["net.fc8.weight"], whole["net.fc8.weight"])
