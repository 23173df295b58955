"""The paper's network: two towers, one per GPU in 2012 (section 3.5, Figure 2).

Every layer's kernels are split over the towers. conv1, conv2, conv4 and conv5 read only
their own tower; conv3, fc6, fc7 and fc8 read both, which is where the 2012 GPUs talked
(section 3.2). ``towers=1`` gives the same net ungrouped.

    layer   kernels        kernel/stride/pad  reads       then                       bias
    conv1   96  (48 x 2)   11/4/2             image       ReLU, LRN, max-pool        0
    conv2   256 (128 x 2)  5/1/2              own tower   ReLU, LRN, max-pool        1
    conv3   384 (192 x 2)  3/1/1              both        ReLU                       0
    conv4   384 (192 x 2)  3/1/1              own tower   ReLU                       1
    conv5   256 (128 x 2)  3/1/1              own tower   ReLU, max-pool -> 6x6x256  1
    fc6     4096 (2048 x 2)                   both        ReLU, dropout              1
    fc7     4096 (2048 x 2)                   both        ReLU, dropout              1
    fc8     classes                           both        (softmax in the loss)      0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar, cast

import torch
from torch import Tensor, nn

from lit_alexnet.nn.lrn import LocalResponseNorm

INPUT_SIZE = 224
CONV1 = dict(kernel_size=11, stride=4, padding=2)  # padding 2 gives the paper's 55x55 maps
WEIGHT_STD = 0.01  # section 5: weights from N(0, 0.01)
# The paper's widths for the whole net; a tower holds 1/towers of each.
WIDTHS = dict(conv1=96, conv2=256, conv3=384, conv4=384, conv5=256, fc6=4096, fc7=4096)
BIAS_ONE = ("conv2", "conv4", "conv5", "fc6", "fc7")  # section 5: "accelerates early learning"
INITS = ("paper", "torch", "kaiming")
NORMS = ("lrn", "none", "batch")


@dataclass(frozen=True)
class Pooling:
    """Max-pooling geometry (section 3.4): overlapping 3/2 in the paper, 2/2 "standard"."""

    kernel_size: int = 3
    stride: int = 2

    @classmethod
    def named(cls, name: str) -> Pooling:
        """``"overlap"`` (3x3, stride 2) or ``"standard"`` (2x2, stride 2)."""
        presets = {"overlap": cls(3, 2), "standard": cls(2, 2)}
        if name not in presets:
            raise ValueError(f"pooling={name!r}: choose one of {sorted(presets)}")
        return presets[name]


@dataclass(frozen=True)
class Norm:
    """Normalisation after conv1 and conv2: the paper's LRN (section 3.3), none, or batch norm."""

    name: str = "lrn"
    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0

    def layer(self, channels: int) -> nn.Module:
        """The normalisation layer for ``channels`` maps of one tower."""
        if self.name == "lrn":
            return LocalResponseNorm(self.size, self.alpha, self.beta, self.k)
        if self.name == "batch":
            return nn.BatchNorm2d(channels)
        if self.name == "none":
            return nn.Identity()
        raise ValueError(f"norm={self.name!r}: choose one of {list(NORMS)}")


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={name!r}: choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _pooled(size: int, pool: Pooling) -> int:
    return (size - pool.kernel_size) // pool.stride + 1


def feature_map_sizes(pooling: Pooling, input_size: int = INPUT_SIZE) -> tuple[int, ...]:
    """Spatial sizes after conv1, pool1, pool2 and pool5 (55, 27, 13, 6 for the paper)."""
    conv1 = (input_size + 2 * CONV1["padding"] - CONV1["kernel_size"]) // CONV1["stride"] + 1
    pool1 = _pooled(conv1, pooling)
    pool2 = _pooled(pool1, pooling)
    return conv1, pool1, pool2, _pooled(pool2, pooling)


class Tower(nn.Module):
    """One column of Figure 2: ``1/towers`` of every layer's kernels.

    The tower does not run itself: :class:`AlexNet` drives the towers stage by stage,
    because conv3, fc6 and fc7 read the concatenated outputs of all towers.
    """

    def __init__(
        self, towers: int, norm: Norm, pooling: Pooling, activation: str, dropout: float, pool5: int
    ) -> None:
        super().__init__()
        w = {name: width // towers for name, width in WIDTHS.items()}
        self.conv1 = nn.Conv2d(3, w["conv1"], **CONV1)  # type: ignore[arg-type]
        self.norm1 = norm.layer(w["conv1"])
        self.conv2 = nn.Conv2d(w["conv1"], w["conv2"], kernel_size=5, padding=2)
        self.norm2 = norm.layer(w["conv2"])
        self.conv3 = nn.Conv2d(WIDTHS["conv2"], w["conv3"], kernel_size=3, padding=1)
        self.conv4 = nn.Conv2d(w["conv3"], w["conv4"], kernel_size=3, padding=1)
        self.conv5 = nn.Conv2d(w["conv4"], w["conv5"], kernel_size=3, padding=1)
        self.fc6 = nn.Linear(WIDTHS["conv5"] * pool5 * pool5, w["fc6"])
        self.fc7 = nn.Linear(WIDTHS["fc6"], w["fc7"])
        self.act = _activation(activation)
        self.pool = nn.MaxPool2d(pooling.kernel_size, pooling.stride)
        self.dropout = nn.Dropout(dropout)

    def lower(self, image: Tensor) -> Tensor:
        """conv1 and conv2: own tower only."""
        x = self.pool(self.norm1(self.act(self.conv1(image))))
        return self.pool(self.norm2(self.act(self.conv2(x))))

    def upper(self, both: Tensor) -> Tensor:
        """conv3 (reads both towers), then conv4 and conv5 on its own tower."""
        x = self.act(self.conv3(both))
        x = self.act(self.conv4(x))
        return self.pool(self.act(self.conv5(x)))

    def head6(self, both: Tensor) -> Tensor:
        """fc6 (reads both towers' flattened conv5 maps)."""
        return self.dropout(self.act(self.fc6(both)))

    def head7(self, both: Tensor) -> Tensor:
        """fc7 (reads both halves of fc6)."""
        return self.dropout(self.act(self.fc7(both)))


class AlexNet(nn.Module):
    """AlexNet as in Krizhevsky, Sutskever and Hinton (NIPS 2012), with its ablation switches.

    Args:
        num_classes: outputs of fc8 (1000 for ILSVRC).
        towers: 2 for the paper's two-GPU layout, 1 for the ungrouped net.
        norm: ``"lrn"`` (section 3.3), ``"none"``, ``"batch"``, or a :class:`Norm`.
        pooling: ``"overlap"`` (3/2, section 3.4), ``"standard"`` (2/2), or a :class:`Pooling`.
        activation: ``"relu"`` (section 3.1) or ``"tanh"``.
        dropout: drop probability in fc6 and fc7 (section 4.2).
        init: ``"paper"`` (section 5: N(0, 0.01), biases 1 or 0), ``"torch"`` (PyTorch's
            fan-in scaled default, as torchvision's alexnet) or ``"kaiming"`` (He et al.
            2015, zero biases and fc8). The last two start learning in far fewer steps,
            which a short run on a small dataset needs.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        towers: int = 2,
        norm: str | Norm | Mapping[str, Any] = "lrn",
        pooling: str | Pooling | Mapping[str, Any] = "overlap",
        activation: str = "relu",
        dropout: float = 0.5,
        init: str = "paper",
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise ValueError(f"init={init!r}: choose one of {list(INITS)}")
        if towers not in (1, 2):
            raise ValueError(f"towers={towers!r}: choose 2 (the paper's layout) or 1 (ungrouped)")
        if num_classes < 1:
            raise ValueError(f"num_classes={num_classes!r} must be positive")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout!r} must be in [0, 1)")
        norm_spec = _spec(Norm, norm, Norm)
        pool_spec = _spec(Pooling, pooling, Pooling.named)
        self.map_sizes = feature_map_sizes(pool_spec)
        if self.map_sizes[-1] < 1:
            raise ValueError(f"pooling {pool_spec} leaves no spatial extent for 224x224 input")
        self.towers = nn.ModuleList(
            Tower(towers, norm_spec, pool_spec, activation, dropout, self.map_sizes[-1])
            for _ in range(towers)
        )
        self.fc8 = nn.Linear(WIDTHS["fc7"], num_classes)
        self.init = init
        if init == "paper":
            self.reset_parameters()
        elif init == "kaiming":
            self._kaiming_init()

    def reset_parameters(self) -> None:
        """The paper's initialisation (section 5): weights N(0, 0.01), biases 1 or 0."""
        for tower in self.towers:
            for name, layer in tower.named_children():
                if isinstance(layer, nn.Conv2d | nn.Linear):
                    nn.init.normal_(layer.weight, 0.0, WEIGHT_STD)
                    nn.init.constant_(cast(Tensor, layer.bias), 1.0 if name in BIAS_ONE else 0.0)
        nn.init.normal_(self.fc8.weight, 0.0, WEIGHT_STD)
        nn.init.zeros_(self.fc8.bias)

    def _kaiming_init(self) -> None:
        """He et al. (2015): N(0, 2 / fan_in) weights keep every layer's output at the input's
        scale; a zero fc8 starts from uniform class scores."""
        for tower in self.towers:
            for layer in tower.children():
                if isinstance(layer, nn.Conv2d | nn.Linear):
                    nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                    nn.init.zeros_(cast(Tensor, layer.bias))
        nn.init.zeros_(self.fc8.weight)
        nn.init.zeros_(self.fc8.bias)

    # Each tower computes on the device its weights are on, and only the inputs of the layers
    # that read both towers (conv3, fc6, fc7, fc8) cross devices (section 3.2); on one device
    # every transfer below is a no-op.

    def _conv_maps(self, image: Tensor) -> list[Tensor]:
        """Each tower's pooled conv5 maps, on that tower's device."""
        lower = [tower.lower(image.to(_device(tower))) for tower in self._towers]
        return [tower.upper(_gather(lower, _device(tower))) for tower in self._towers]

    def forward_features(self, image: Tensor) -> Tensor:
        """The pooled conv5 maps of all towers, ``[B, 256, 6, 6]`` for 224x224 input."""
        return _gather(self._conv_maps(image), self.fc8.weight.device)

    def forward(self, image: Tensor) -> Tensor:
        """Class scores (logits) for a batch of ``[B, 3, 224, 224]`` mean-subtracted images."""
        # Flattening each tower's maps and concatenating is flattening the concatenated maps.
        x = [maps.flatten(1) for maps in self._conv_maps(image)]
        x = [tower.head6(_gather(x, _device(tower))) for tower in self._towers]
        x = [tower.head7(_gather(x, _device(tower))) for tower in self._towers]
        return self.fc8(_gather(x, self.fc8.weight.device))

    @property
    def _towers(self) -> Sequence[Tower]:
        return cast(Sequence[Tower], self.towers)


def _device(tower: Tower) -> torch.device:
    return tower.conv1.weight.device


def _gather(parts: Sequence[Tensor], device: torch.device) -> Tensor:
    """The towers' outputs side by side on ``device``; copies are queued, not waited for."""
    return torch.cat([part.to(device, non_blocking=True) for part in parts], dim=1)


Spec = TypeVar("Spec", Norm, Pooling)


def _spec(cls: type[Spec], value: Any, from_name: Callable[[str], Spec]) -> Spec:
    """A Norm or Pooling from itself, a preset name, or a mapping such as a Hydra config."""
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        return from_name(value)
    if isinstance(value, Mapping):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in names})
    raise TypeError(f"expected a str, a mapping or {cls.__name__}, got {value!r}")
