"""lit_alexnet: the 2012 AlexNet paper as a PyTorch Lightning package with Hydra configs.

Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", NIPS 2012.
"""

from lit_alexnet.callbacks import TimeBudget
from lit_alexnet.data.dali import BuiltinDaliDataModule, DaliImageDataModule
from lit_alexnet.data.torchvision import BuiltinDataModule, ImageFolderDataModule
from lit_alexnet.module import LitAlexNet
from lit_alexnet.nn import AlexNet, LocalResponseNorm, Norm, Pooling
from lit_alexnet.optim import PaperSGD, PlateauDecay
from lit_alexnet.precision import auto_precision
from lit_alexnet.strategies import TwoDeviceDDPStrategy, TwoDeviceModelParallelStrategy

__version__ = "0.1.0"

__all__ = [
    "AlexNet",
    "BuiltinDaliDataModule",
    "BuiltinDataModule",
    "DaliImageDataModule",
    "ImageFolderDataModule",
    "LitAlexNet",
    "LocalResponseNorm",
    "Norm",
    "PaperSGD",
    "PlateauDecay",
    "Pooling",
    "TimeBudget",
    "TwoDeviceDDPStrategy",
    "TwoDeviceModelParallelStrategy",
    "auto_precision",
]
