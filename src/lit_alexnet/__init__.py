"""lit_alexnet: the 2012 AlexNet paper as a PyTorch Lightning package with Hydra configs.

Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", NIPS 2012.

The names below load their modules when first used (PEP 562), so ``import lit_alexnet.nn``
(plain torch) imports neither Lightning nor DALI. The two-device strategies are registered
with Lightning's ``StrategyRegistry`` when :mod:`lit_alexnet.strategies` is imported, which
the first use of any Lightning part of the package (``LitAlexNet``, a datamodule, a
strategy, ``TimeBudget``) does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# Each public name and the module that holds it; the imports for type checkers below name
# them again (tests/test_package.py holds the two to each other).
_EXPORTS = {
    "AlexNet": "lit_alexnet.nn",
    "LocalResponseNorm": "lit_alexnet.nn",
    "Norm": "lit_alexnet.nn",
    "Pooling": "lit_alexnet.nn",
    "PaperSGD": "lit_alexnet.optim",
    "PlateauDecay": "lit_alexnet.optim",
    "auto_precision": "lit_alexnet.precision",
    "LitAlexNet": "lit_alexnet.module",
    "quickstart": "lit_alexnet.job",
    "FinalValidation": "lit_alexnet.callbacks",
    "TimeBudget": "lit_alexnet.callbacks",
    "BuiltinDaliDataModule": "lit_alexnet.data.dali",
    "DaliImageDataModule": "lit_alexnet.data.dali",
    "BuiltinDataModule": "lit_alexnet.data.torchvision",
    "ImageFolderDataModule": "lit_alexnet.data.torchvision",
    "TwoDeviceDDPStrategy": "lit_alexnet.strategies",
    "TwoDeviceModelParallelStrategy": "lit_alexnet.strategies",
}
__all__ = sorted(_EXPORTS)
_PLAIN_TORCH = ("lit_alexnet.nn", "lit_alexnet.optim", "lit_alexnet.precision")

if TYPE_CHECKING:  # _EXPORTS's names with their types, re-exported (not in a literal __all__)
    from lit_alexnet.callbacks import FinalValidation, TimeBudget  # noqa: F401
    from lit_alexnet.data.dali import BuiltinDaliDataModule, DaliImageDataModule  # noqa: F401
    from lit_alexnet.data.torchvision import BuiltinDataModule, ImageFolderDataModule  # noqa: F401
    from lit_alexnet.job import quickstart  # noqa: F401
    from lit_alexnet.module import LitAlexNet  # noqa: F401
    from lit_alexnet.nn import AlexNet, LocalResponseNorm, Norm, Pooling  # noqa: F401
    from lit_alexnet.optim import PaperSGD, PlateauDecay  # noqa: F401
    from lit_alexnet.precision import auto_precision  # noqa: F401
    from lit_alexnet.strategies import TwoDeviceDDPStrategy, TwoDeviceModelParallelStrategy  # noqa: F401


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lit_alexnet' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    if not _EXPORTS[name].startswith(_PLAIN_TORCH):
        importlib.import_module("lit_alexnet.strategies")  # registers them with Lightning
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
