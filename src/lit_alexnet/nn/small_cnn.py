"""Figure 1's network: a four-layer CNN for 32x32 images whose neurons are ReLU or tanh.

Section 3.1 compares "a four-layer convolutional neural network" on CIFAR-10 with ReLUs and
with tanh units. The paper gives no more of it; this follows cuda-convnet's small CIFAR-10
nets, three convolutional layers and one fully connected:

    layer   kernels   kernel/stride/pad  then                           output at 32x32
    conv1   32        5/1/2              activation, max-pool 3/2/1     32 x 16 x 16
    conv2   32        5/1/2              activation, max-pool 3/2/1     32 x 8 x 8
    conv3   64        5/1/2              activation, max-pool 3/2/1     64 x 4 x 4
    fc      classes                      (softmax in the loss)

The activation is the only thing ``activation`` changes: the layers, their shapes and the
initialisation (weights from N(0, 1/fan_in), LeCun's, which favours neither neuron; biases 0)
are the same, and so, for one seed, are the initial weights.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lit_alexnet.checks import check, check_choice

INPUT_SIZE = 32
WIDTHS = dict(conv1=32, conv2=32, conv3=64)
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


def _stage(in_channels: int, out_channels: int, activation: str) -> list[nn.Module]:
    """A conv layer (5x5, stride 1, pad 2), its activation and max-pooling (3/2, pad 1)."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=5, stride=1, padding=2),
        ACTIVATIONS[activation](),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    ]


class SmallCNN(nn.Module):
    """Figure 1's four-layer net (section 3.1): ``features`` (three conv layers, each followed
    by ``activation`` and max-pooling) and ``classifier`` (one fully connected layer)."""

    def __init__(self, activation: str = "relu", num_classes: int = 10) -> None:
        super().__init__()
        check_choice("activation", activation, ACTIVATIONS)
        check(num_classes >= 2, "num_classes", num_classes, "must be >= 2")
        self.activation = activation
        c1, c2, c3 = WIDTHS["conv1"], WIDTHS["conv2"], WIDTHS["conv3"]
        self.features = nn.Sequential(
            *_stage(3, c1, activation),
            *_stage(c1, c2, activation),
            *_stage(c2, c3, activation),
        )
        side = INPUT_SIZE // 8  # each stage halves the side: 32 -> 16 -> 8 -> 4
        self.classifier = nn.Linear(c3 * side * side, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weights from N(0, 1/fan_in), biases 0, drawn from torch's global generator in
        layer order, so one seed gives both activations the same weights."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                fan_in = module.weight[0].numel()
                nn.init.normal_(module.weight, 0.0, 1.0 / math.sqrt(fan_in))
                assert module.bias is not None
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Class scores ``(n, classes)`` of images ``(n, 3, 32, 32)``."""
        return self.classifier(torch.flatten(self.features(x), 1))
