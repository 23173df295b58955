"""The package's Lightning callbacks, each in the module named for what it does; the configs
name them from here (``_target_: lit_alexnet.callbacks.TimeBudget``)."""

from lit_alexnet.callbacks.budget import TimeBudget
from lit_alexnet.callbacks.curves import LearningCurves, read_curves
from lit_alexnet.callbacks.ending import FinalValidation, LastCheckpoint, StopAtStepEnd
from lit_alexnet.callbacks.loggers import Conv1Kernels, WandbBestError, wandb_identity
from lit_alexnet.callbacks.progress import EpochBar, ProgressLines, progress_bar

__all__ = [
    "Conv1Kernels",
    "EpochBar",
    "FinalValidation",
    "LastCheckpoint",
    "LearningCurves",
    "ProgressLines",
    "StopAtStepEnd",
    "TimeBudget",
    "WandbBestError",
    "progress_bar",
    "read_curves",
    "wandb_identity",
]
