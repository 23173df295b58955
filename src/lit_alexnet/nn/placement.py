"""Placing AlexNet's two towers on two devices, as section 3.2 puts them on two GPUs.

Plain torch: :mod:`lit_alexnet.strategies` calls these from Lightning. Tower ``i`` (its conv1
to conv5 and its halves of fc6 and fc7) goes to ``devices[i]``, everything else (fc8, and
whatever else the module holds) to ``devices[0]``, where the batch arrives and the loss is
computed. :class:`~lit_alexnet.nn.alexnet.AlexNet` runs each tower where its weights are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["find_towers", "parse_devices", "place_towers", "planned_devices"]

_DEVICE = re.compile(r"^(cpu|cuda)(:\d+)?$")


def parse_devices(devices: Sequence[str | torch.device | int]) -> list[torch.device]:
    """Two devices from strings like ``"cuda:1"`` or ``"cpu"``, or CUDA indices; checked.

    Both must be CPUs or both CUDA GPUs that exist here; the same GPU twice is allowed.
    """
    if isinstance(devices, str | torch.device | int) or len(devices) != 2:
        raise ValueError(
            f"devices={devices!r}: give two devices, one per tower, e.g. "
            '["cuda:0", "cuda:1"], ["cuda:0", "cuda:0"] or ["cpu", "cpu"]'
        )
    parsed = []
    for device in devices:
        if isinstance(device, int):
            device = torch.device("cuda", device)
        elif isinstance(device, str):
            if not _DEVICE.match(device.strip()):
                raise ValueError(
                    f"device {device!r} is not a device: write 'cpu', 'cuda' or 'cuda:N'"
                )
            device = torch.device(device.strip())
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", 0)
        parsed.append(device)
    kinds = {device.type for device in parsed}
    if len(kinds) != 1:
        raise ValueError(f"devices={devices!r}: put both towers on CPUs or both on GPUs")
    if "cuda" in kinds:
        available = torch.cuda.device_count()
        missing = [str(d) for d in parsed if d.index is None or d.index >= available]
        if missing:
            raise RuntimeError(
                f"devices={devices!r}: {', '.join(missing)} not present, this machine has "
                f"{available} CUDA GPU(s); use devices that exist, or "
                '["cuda:0", "cuda:0"] to run both towers on one GPU'
            )
    return parsed


def find_towers(module: nn.Module) -> nn.ModuleList:
    """The two towers of the AlexNet inside ``module`` (a LightningModule, say)."""
    found: list[nn.ModuleList] = []
    for sub in module.modules():
        towers = getattr(sub, "towers", None)
        if isinstance(towers, nn.ModuleList):
            found.append(towers)
    if len(found) != 1 or len(found[0]) != 2:
        what = f"{len(found)} tower lists" if len(found) != 1 else f"{len(found[0])} tower(s)"
        raise ValueError(
            f"{type(module).__name__} holds {what}: the two-device strategies split the two "
            "towers of one lit_alexnet.AlexNet(towers=2) over two devices"
        )
    return found[0]


def place_towers(module: nn.Module, devices: Sequence[torch.device]) -> None:
    """Move ``module`` to ``devices[0]``, then tower ``i`` to ``devices[i]``."""
    module.to(devices[0])
    for tower, device in zip(find_towers(module), devices, strict=True):
        tower.to(device)


def planned_devices(module: nn.Module, devices: Sequence[torch.device]) -> dict[str, torch.device]:
    """Where :func:`place_towers` puts each parameter of ``module``, by name."""
    second = {id(p) for p in find_towers(module)[1].parameters()}
    return {
        name: devices[1] if id(param) in second else devices[0]
        for name, param in module.named_parameters()
    }
