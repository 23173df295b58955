"""Lightning strategies for AlexNet's two-device layout, registered on import of lit_alexnet.

``Trainer(strategy="two_device_model_parallel")`` and ``Trainer(strategy="two_device_ddp")``.
"""

from lightning.pytorch.strategies import StrategyRegistry

from lit_alexnet.strategies.two_device import (
    TwoDeviceDDPStrategy,
    TwoDeviceModelParallelStrategy,
    default_devices,
)

__all__ = ["TwoDeviceDDPStrategy", "TwoDeviceModelParallelStrategy", "default_devices"]

for _cls, _description in (
    (TwoDeviceModelParallelStrategy, "AlexNet's two towers on two devices (section 3.2)"),
    (TwoDeviceDDPStrategy, "the two-device layout in every process of a DDP run"),
):
    if _cls.strategy_name not in StrategyRegistry:
        StrategyRegistry.register(_cls.strategy_name, _cls, description=_description)
