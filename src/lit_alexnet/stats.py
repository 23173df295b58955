"""``python -m lit_alexnet.stats``: compute a dataset's statistics for the paper's preprocessing.

    python -m lit_alexnet.stats                                     # the built-in dataset's
    python -m lit_alexnet.stats data=folder data.root=/data/ilsvrc2012  # -> <root>/stats.npz
    python -m lit_alexnet.stats data.root=... out=/elsewhere/stats.npz verify=full

The work is :func:`lit_alexnet.data.dataset_stats.compute_folder_stats`; this only reads the config.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from lit_alexnet.config import config_dir, register_configs, validate
from lit_alexnet.console import one_line_refusals
from lit_alexnet.data.builtin import BuiltinSpec, ensure_builtin_dataset
from lit_alexnet.data.choices import check_data_options
from lit_alexnet.data.dataset_stats import compute_folder_stats
from lit_alexnet.data.formats import STATS_FILENAME, DatasetStats

register_configs()


def summary(stats: DatasetStats) -> str:
    """The per-channel figures of ``stats``, a few lines for the console."""

    def row(values: np.ndarray, digits: int) -> str:
        return "  ".join(f"{v:8.{digits}f}" for v in values)

    return "\n".join(
        [
            f"  mean R G B (0-255):          {row(stats.mean_rgb * 255, 2)}",
            f"  std  R G B (0-255):          {row(stats.std_rgb * 255, 2)}",
            f"  PCA eigenvalues (0-1 scale): {row(stats.eigval, 4)}",
        ]
    )


def _builtin_stats(data: DictConfig) -> None:
    spec = BuiltinSpec.take(dict(data))
    root = ensure_builtin_dataset(Path(data.cache_dir).expanduser(), spec)
    print(f"The built-in dataset is in {root}; its statistics, computed as it was generated:")
    print(f"{root / STATS_FILENAME}")
    print(summary(DatasetStats.load(root / STATS_FILENAME)))


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="stats")
@one_line_refusals
def main(cfg: DictConfig) -> None:
    """Compute and save the statistics of ``data.root``'s training split, or point at the
    built-in dataset's."""
    validate(cfg)
    check_data_options(verify=cfg.verify)
    if "cache_dir" in cfg.data:
        _builtin_stats(cfg.data)
        return
    # Where training will look: data.stats when set, so the same overrides write and read it.
    out = cfg.out if cfg.out is not None else cfg.data.get("stats")
    stats, path = compute_folder_stats(cfg.data.root, out=out, verify=cfg.verify)
    print(f"Wrote {path}")
    print(summary(stats))


if __name__ == "__main__":
    main()
