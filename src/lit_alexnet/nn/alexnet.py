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

from lit_alexnet.checks import check, check_choice
from lit_alexnet.nn import lrn
from lit_alexnet.nn.lrn import LocalResponseNorm, check_lrn_arguments

INPUT_SIZE = 224
CONV1 = dict(kernel_size=11, stride=4, padding=2)  # padding 2 gives the paper's 55x55 maps
WEIGHT_STD = 0.01  # section 5: weights from N(0, 0.01)
# The paper's widths for the whole net; a tower holds 1/towers of each.
WIDTHS = dict(conv1=96, conv2=256, conv3=384, conv4=384, conv5=256, fc6=4096, fc7=4096)
# Section 3.2's one-GPU comparison net: one tower of half the kernels in conv1 to conv4; its
# footnote keeps conv5 and the fully connected layers at full size.
HALF_WIDTHS = {**WIDTHS, **{k: WIDTHS[k] // 2 for k in ("conv1", "conv2", "conv3", "conv4")}}
BIAS_ONE = ("conv2", "conv4", "conv5", "fc6", "fc7")  # section 5: "accelerates early learning"
INITS = ("paper", "torch", "kaiming")
NORMS = ("lrn", "none", "batch")
FEATURE_LAYERS = ("pool5", "fc6", "fc7", "fc8")


# Section 3.4's pooling and its comparison, both 6x6 after pool5 at 224x224 input.
POOLINGS = {"overlap": (3, 2), "standard": (2, 2)}


@dataclass
class Pooling:
    """Max-pooling geometry (section 3.4): overlapping 3/2 in the paper, 2/2 "standard".

    ``kernel_size`` and ``stride`` default to the preset ``name``'s; give them to change it.
    """

    name: str = "overlap"
    kernel_size: int | None = None
    stride: int | None = None

    def __post_init__(self) -> None:
        check_choice("name", self.name, POOLINGS)
        kernel, stride = self.window
        check(kernel >= 1, "kernel_size", kernel, "must be >= 1")
        check(stride >= 1, "stride", stride, "must be >= 1")
        last = feature_map_sizes(self)[-1]
        check(last >= 1, "name", self.name, "leaves no spatial extent at 224x224 input")

    @property
    def window(self) -> tuple[int, int]:
        """``(kernel_size, stride)``, each the preset's where it is None."""
        kernel, stride = POOLINGS[self.name]
        return (
            kernel if self.kernel_size is None else self.kernel_size,
            stride if self.stride is None else self.stride,
        )


@dataclass
class Norm:
    """Normalisation after conv1 and conv2: the paper's LRN (section 3.3), none, or batch norm.

    ``b = a / (k + alpha * sum of a^2 over size neighbouring maps) ** beta``, with the paper's
    figures (:mod:`lit_alexnet.nn.lrn`'s) as defaults; they are unused by ``"none"`` and
    ``"batch"``.
    """

    name: str = "lrn"
    size: int = lrn.SIZE
    alpha: float = lrn.ALPHA
    beta: float = lrn.BETA
    k: float = lrn.K

    def __post_init__(self) -> None:
        check_choice("name", self.name, NORMS)
        check_lrn_arguments(self.size, self.alpha, self.beta, self.k)

    def layer(self, channels: int) -> nn.Module:
        """The normalisation layer for ``channels`` maps of one tower."""
        if self.name == "lrn":
            return LocalResponseNorm(self.size, self.alpha, self.beta, self.k)
        if self.name == "batch":
            return nn.BatchNorm2d(channels)
        return nn.Identity()


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


def check_arguments(
    towers: int, activation: str, dropout: float, init: str, half_width: bool = False
) -> None:
    """Refuse the arguments of :class:`AlexNet` that no network has, naming the argument."""
    check(towers in (1, 2), "towers", towers, "must be 2 (the paper's layout) or 1 (ungrouped)")
    check(
        not half_width or towers == 1,
        "half_width",
        half_width,
        "is section 3.2's one-GPU net: give it with towers=1",
    )
    check_choice("activation", activation, sorted(ACTIVATIONS))
    check(0 <= dropout < 1, "dropout", dropout, "must be in [0, 1)")
    check_choice("init", init, INITS)


def _pooled(size: int, pool: Pooling) -> int:
    kernel, stride = pool.window
    return (size - kernel) // stride + 1


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
        self,
        towers: int,
        norm: Norm,
        pooling: Pooling,
        activation: str,
        dropout: float,
        pool5: int,
        widths: dict[str, int] = WIDTHS,
    ) -> None:
        super().__init__()
        w = {name: width // towers for name, width in widths.items()}
        self.conv1 = nn.Conv2d(3, w["conv1"], **CONV1)  # type: ignore[arg-type]
        self.norm1 = norm.layer(w["conv1"])
        self.conv2 = nn.Conv2d(w["conv1"], w["conv2"], kernel_size=5, padding=2)
        self.norm2 = norm.layer(w["conv2"])
        self.conv3 = nn.Conv2d(widths["conv2"], w["conv3"], kernel_size=3, padding=1)
        self.conv4 = nn.Conv2d(w["conv3"], w["conv4"], kernel_size=3, padding=1)
        self.conv5 = nn.Conv2d(w["conv4"], w["conv5"], kernel_size=3, padding=1)
        self.fc6 = nn.Linear(widths["conv5"] * pool5 * pool5, w["fc6"])
        self.fc7 = nn.Linear(widths["fc6"], w["fc7"])
        self.act = ACTIVATIONS[activation]()
        self.pool = nn.MaxPool2d(*pooling.window)
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
        half_width: with ``towers=1``, section 3.2's one-GPU comparison net: half the kernels
            in conv1 to conv4, conv5 and the fully connected layers at full size.
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
        half_width: bool = False,
    ) -> None:
        super().__init__()
        check(num_classes >= 1, "num_classes", num_classes, "must be positive")
        check_arguments(towers, activation, dropout, init, half_width)
        widths = HALF_WIDTHS if half_width else WIDTHS
        norm_spec = _spec(Norm, norm)
        pool_spec = _spec(Pooling, pooling)
        self.map_sizes = feature_map_sizes(pool_spec)
        self.towers = nn.ModuleList(
            Tower(towers, norm_spec, pool_spec, activation, dropout, self.map_sizes[-1], widths)
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
        return self.features(image, layer="pool5")

    def features(self, image: Tensor, layer: str = "fc7") -> Tensor:
        """The activations at ``layer``, for reuse as a feature extractor.

        ``"pool5"``: the pooled conv5 maps ``[B, 256, 6, 6]``; ``"fc6"``, ``"fc7"``: the
        4096-d vectors after ReLU (and after dropout in training mode; call ``eval()`` first),
        both towers' halves side by side; ``"fc8"``: the logits. Section 6.1 (Figure 4)
        compares images by the Euclidean distance of their fc7 vectors.
        """
        check_choice("layer", layer, FEATURE_LAYERS)
        out = self.fc8.weight.device
        maps = self._conv_maps(image)
        if layer == "pool5":
            return _gather(maps, out)
        # Flattening each tower's maps and concatenating is flattening the concatenated maps.
        x = [m.flatten(1) for m in maps]
        x = [tower.head6(_gather(x, _device(tower))) for tower in self._towers]
        if layer == "fc6":
            return _gather(x, out)
        x = [tower.head7(_gather(x, _device(tower))) for tower in self._towers]
        if layer == "fc7":
            return _gather(x, out)
        return self.fc8(_gather(x, out))

    def forward(self, image: Tensor) -> Tensor:
        """Class scores (logits) for a batch of ``[B, 3, 224, 224]`` mean-subtracted images."""
        return self.features(image, layer="fc8")

    def conv1_weights(self) -> list[Tensor]:
        """Each tower's conv1 kernels, detached: ``(48, 3, 11, 11)`` each for the paper's two
        towers, the kernels of Figure 3."""
        return [tower.conv1.weight.detach() for tower in self._towers]

    @property
    def _towers(self) -> Sequence[Tower]:
        return cast(Sequence[Tower], self.towers)


def _device(tower: Tower) -> torch.device:
    return tower.conv1.weight.device


def _gather(parts: Sequence[Tensor], device: torch.device) -> Tensor:
    """The towers' outputs side by side on ``device``; copies are queued, not waited for."""
    return torch.cat([part.to(device, non_blocking=True) for part in parts], dim=1)


Spec = TypeVar("Spec", Norm, Pooling)


def _spec(cls: type[Spec], value: Spec | str | Mapping[str, Any]) -> Spec:
    """A Norm or Pooling from itself, a preset name, or a mapping such as a Hydra config."""
    if isinstance(value, cls):
        return value
    try:
        if isinstance(value, str):
            return cls(name=value)
        if isinstance(value, Mapping):
            names = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in value.items() if k in names})
    except ValueError as e:  # name the argument: "norm.name='lrm': ..."
        raise ValueError(f"{cls.__name__.lower()}.{e}") from None
    raise TypeError(f"expected a str, a mapping or {cls.__name__}, got {value!r}")
