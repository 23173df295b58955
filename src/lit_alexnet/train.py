"""``python -m lit_alexnet.train``: compose the Hydra config, build everything, fit.

python -m lit_alexnet.train                                  # quickstart, built-in data
python -m lit_alexnet.train +experiment=paper data.root=/data/ilsvrc2012
python -m lit_alexnet.train -m pooling=overlap,standard      # one job per ablation
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from lit_alexnet.config import config_dir, register_configs
from lit_alexnet.console import one_line_refusals
from lit_alexnet.job import train

register_configs()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
@one_line_refusals
def main(cfg: DictConfig) -> float:
    """Train with the composed config; return the final validation top-1 error for sweepers."""
    return train(cfg)


if __name__ == "__main__":
    main()
