"""Plain torch: the paper's network and its layers, usable without Lightning."""

from lit_alexnet.nn.alexnet import AlexNet, Norm, Pooling, Tower, feature_map_sizes
from lit_alexnet.nn.lrn import LocalResponseNorm

__all__ = ["AlexNet", "LocalResponseNorm", "Norm", "Pooling", "Tower", "feature_map_sizes"]
