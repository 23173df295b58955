"""The paper's two-GPU layout (section 3.2) as Lightning strategies.

:class:`TwoDeviceModelParallelStrategy` puts tower 1 of AlexNet on one device and tower 2 on
another in one process; :class:`TwoDeviceDDPStrategy` runs one such device pair per process
and all-reduces gradients with torch.distributed across processes and nodes (data parallel
on top, through Lightning's DDP and its cluster environments: torchrun, SLURM, ...).

The LightningModule does not change: :class:`~lit_alexnet.nn.alexnet.AlexNet` runs each
tower where its weights are (see :mod:`lit_alexnet.nn.placement`), batches arrive on the
first device, where fc8, the loss and the metrics live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch.accelerators import Accelerator, CPUAccelerator, CUDAAccelerator
from lightning.pytorch.plugins.precision import MixedPrecision
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy, Strategy
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from typing_extensions import override

from lit_alexnet.nn.placement import parse_devices, place_towers

__all__ = ["TwoDeviceDDPStrategy", "TwoDeviceModelParallelStrategy", "default_devices"]


def default_devices() -> list[torch.device]:
    """Two GPUs where there are, one GPU twice where there is one, else the CPU twice."""
    count = torch.cuda.device_count()
    if count == 0:
        return [torch.device("cpu")] * 2
    return [torch.device("cuda", 0), torch.device("cuda", min(1, count - 1))]


def _accelerator_for(device: torch.device) -> Accelerator:
    return CUDAAccelerator() if device.type == "cuda" else CPUAccelerator()


def _announce(devices: Sequence[torch.device]) -> None:
    if devices[0] != devices[1]:
        rank_zero_info(f"AlexNet's towers on {devices[0]} and {devices[1]}")
    elif devices[0].type == "cuda":
        rank_zero_warn(
            f"both towers on {devices[0]}: nothing is split over devices (the layout and the "
            "results are the paper's, the speed-up of a second GPU is not)"
        )


class _TowerPlacement(Strategy):
    """What both strategies change in Lightning's: where the model and optimizer state go."""

    @property
    def tower_devices(self) -> list[torch.device]:
        """Tower 1's device and tower 2's."""
        raise NotImplementedError

    @override
    def setup_environment(self) -> None:
        super().setup_environment()
        # Lightning takes the autocast device from the accelerator *setting*, and one passed
        # in as an object (as this strategy does) counts as "cuda": on CPU towers autocast
        # would be silently off while the run reports bf16.
        if isinstance(self.precision_plugin, MixedPrecision):
            self.precision_plugin.device = self.tower_devices[0].type

    @override
    def model_to_device(self) -> None:
        assert self.model is not None, "the model must be set before it is placed"
        _announce(self.tower_devices)
        place_towers(self.model, self.tower_devices)

    @override
    def load_optimizer_state_dict(self, checkpoint: Mapping[str, Any]) -> None:
        # torch's load_state_dict already puts each state tensor on its parameter's device;
        # Lightning's default then moves them all to the root device, off tower 2's device.
        for optimizer, state in zip(self.optimizers, checkpoint["optimizer_states"], strict=True):
            optimizer.load_state_dict(state)


class TwoDeviceModelParallelStrategy(_TowerPlacement, SingleDeviceStrategy):
    """AlexNet's tower 1 on ``devices[0]``, tower 2 on ``devices[1]``, in one process.

    Section 3.2: conv1, conv2, conv4 and conv5 of each tower stay on its device; conv3, fc6,
    fc7 and fc8 read both towers, so only their inputs cross devices. fc8, the batch, the
    loss and the metrics are on ``devices[0]``.

    Args:
        devices: two devices (``"cuda:0"``, ``"cuda:1"``, ``"cpu"``, or CUDA indices). The
            same GPU twice runs unsplit (with a warning); two CPUs run the whole path for tests.
            Default: :func:`default_devices`.
    """

    strategy_name = "two_device_model_parallel"

    def __init__(
        self,
        devices: Sequence[str | torch.device | int] | None = None,
        accelerator: Accelerator | None = None,
        **kwargs: Any,
    ) -> None:
        self._devices = default_devices() if devices is None else parse_devices(devices)
        accelerator = accelerator or _accelerator_for(self._devices[0])
        super().__init__(device=self._devices[0], accelerator=accelerator, **kwargs)

    @property
    def tower_devices(self) -> list[torch.device]:
        return self._devices


class TwoDeviceDDPStrategy(_TowerPlacement, DDPStrategy):
    """:class:`TwoDeviceModelParallelStrategy` in every process of a DDP run.

    Process ``r`` of a node (its local rank) holds GPUs ``2r`` and ``2r + 1``, so
    ``Trainer(devices=N)`` starts N processes on 2N GPUs, and ``num_nodes`` multiplies that.
    On CPUs every process puts both towers on the CPU. Gradients are all-reduced by torch's
    DistributedDataParallel over the whole two-device module (NCCL on GPUs, gloo on CPUs).

    Lightning starts the processes itself with ``start_method="popen"`` (the default), which
    re-runs the command line; under Hydra multirun that would re-run the sweep, so the Hydra
    config of this strategy uses ``"spawn"``. Under torchrun or SLURM (``srun``, or Hydra's
    submitit launcher) the cluster has started every process, and none is started here,
    whatever ``start_method`` says.
    """

    strategy_name = "two_device_ddp"

    @property
    def tower_devices(self) -> list[torch.device]:
        """This process's device pair."""
        first = super().root_device
        if first.type == "cpu":
            return [first, first]
        count = torch.cuda.device_count()
        pair = [torch.device("cuda", 2 * self.local_rank + i) for i in range(2)]
        if pair[1].index is not None and pair[1].index >= count:
            processes = len(self.parallel_devices or [])
            raise RuntimeError(
                f"two_device_ddp with {processes} process(es) per node needs {2 * processes} "
                f"GPUs per node, this machine has {count}: set trainer.devices={count // 2 or 1} "
                "(processes per node), or strategy=two_device for one process"
            )
        return pair

    @property
    @override
    def root_device(self) -> torch.device:
        return self.tower_devices[0]

    @override
    def _configure_launcher(self) -> None:
        assert self.cluster_environment is not None
        if self.cluster_environment.creates_processes_externally:
            # DDPStrategy spawns `devices` processes from each started one for any start method
            # but popen; they would all take the cluster's rank (SLURM_PROCID, RANK) and the
            # process group would never form. popen's launcher starts none where the cluster did.
            # Lightning offers no public way to pick a launcher: its own private class it is,
            # which is why pyproject.toml pins lightning to the minor releases tested.
            self._launcher = _SubprocessScriptLauncher(
                self.cluster_environment, self.num_processes, self.num_nodes
            )
            return
        super()._configure_launcher()

    @override
    def determine_ddp_device_ids(self) -> list[int] | None:
        return None  # a module on two devices: DDP must not pin it to one
