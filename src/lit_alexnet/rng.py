"""Every random state a training run draws from, as a picklable dict, for exact resumption.

The data pipelines draw from their own seeded generators (a function of the seed, the epoch
and the sample), so what is left here is what the network draws: dropout's masks from
torch's CPU and CUDA generators, and Python's and NumPy's for anything a user adds.
"""

from __future__ import annotations

import random
from typing import Any, cast

import numpy as np
import torch


def capture_rng_states() -> dict[str, Any]:
    """The states of torch's CPU and CUDA generators, NumPy's and Python's, as tensors and
    plain values (checkpoints load with ``weights_only=True``)."""
    legacy = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    name, keys, pos, has_gauss, gauss = legacy
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Set the generators to what :func:`capture_rng_states` returned."""
    torch.set_rng_state(states["torch"])
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
