"""The two-device strategies: equivalence with one device, placement, checkpoints, DDP."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.strategies import StrategyRegistry
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from lit_alexnet import AlexNet, LitAlexNet, PaperSGD, PlateauDecay
from lit_alexnet.nn.placement import parse_devices, place_towers, planned_devices
from lit_alexnet.strategies import TwoDeviceDDPStrategy, TwoDeviceModelParallelStrategy

PAIRS = [
    pytest.param(["cpu", "cpu"], id="cpu+cpu"),
    pytest.param(
        ["cuda:0", "cuda:1"],
        id="cuda0+cuda1",
        marks=pytest.mark.gpu(2),
    ),
    pytest.param(
        ["cuda:0", "cuda:0"],
        id="cuda0+cuda0",
        marks=pytest.mark.gpu,
    ),
]
NUM_CLASSES = 5


def _data(n: int = 8, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, 224, 224, generator=g) * 60
    return TensorDataset(images, torch.randint(0, NUM_CLASSES, (n,), generator=g))


def _module(seed: int = 0, **kwargs: Any) -> LitAlexNet:
    torch.manual_seed(seed)
    defaults: dict[str, Any] = {
        "num_classes": NUM_CLASSES,
        "init": "torch",
        "optimizer": functools.partial(PaperSGD, lr=0.01, momentum=0.9, weight_decay=5e-4),
        # No val error counts as an improvement here, so the lr drops after every epoch.
        "scheduler": functools.partial(PlateauDecay, patience=0, threshold=1.0),
    }
    return LitAlexNet(**(defaults | kwargs))


def _trainer(strategy: Any, tmp_path: Path | None = None, **kwargs: Any) -> L.Trainer:
    defaults: dict[str, Any] = {
        "max_epochs": 3,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": tmp_path is not None,
        "default_root_dir": tmp_path,
        "num_sanity_val_steps": 0,
    }
    if not isinstance(strategy, TwoDeviceModelParallelStrategy | TwoDeviceDDPStrategy):
        defaults["accelerator"] = "cpu"
    return L.Trainer(strategy=strategy, **(defaults | kwargs))


def _loaders(batch_size: int = 4) -> tuple[DataLoader, DataLoader]:
    return DataLoader(_data(), batch_size=batch_size), DataLoader(_data(4, seed=1), batch_size=4)


def test_strategies_are_registered_with_lightning() -> None:
    assert {"two_device_model_parallel", "two_device_ddp"} <= set(StrategyRegistry)
    trainer = L.Trainer(strategy="two_device_model_parallel", accelerator="cpu", logger=False)
    assert isinstance(trainer.strategy, TwoDeviceModelParallelStrategy)


@pytest.mark.parametrize("devices", PAIRS)
def test_split_forward_and_backward_match_one_device(devices: list[str]) -> None:
    reference = AlexNet(num_classes=NUM_CLASSES, init="torch", dropout=0.0)
    split = copy.deepcopy(reference)
    place_towers(split, parse_devices(devices))
    images, labels = _data(4).tensors
    losses = []
    for net in (reference, split):
        logits = net(images.to(devices[0]))
        loss = torch.nn.functional.cross_entropy(logits, labels.to(devices[0]))
        loss.backward()
        losses.append((logits.cpu(), loss.cpu()))
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-4, atol=1e-4)
    for (name, a), b in zip(reference.named_parameters(), split.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None, name
        torch.testing.assert_close(b.grad.cpu(), a.grad, rtol=1e-3, atol=1e-5, msg=name)


def _tower_device(name: str, devices: list[torch.device]) -> torch.device:
    """Where a parameter belongs, by its name: tower 2's (``towers.1``) on the second device,
    everything else (tower 1, fc8) on the first, where the batch arrives (section 3.2)."""
    return devices[1] if ".towers.1." in f".{name}" else devices[0]


def _assert_placed(model: LitAlexNet, trainer: L.Trainer, devices: list[torch.device]) -> None:
    # On a CPU pair both devices are the CPU: this bites on two GPUs; the placement itself is
    # checked on devices that differ in test_each_tower_and_its_activations_stay_on_its_device.
    for name, param in model.named_parameters():
        assert param.device == _tower_device(name, devices), name
        for state in trainer.optimizers[0].state.get(param, {}).values():
            if torch.is_tensor(state) and state.ndim > 0:
                assert state.device == _tower_device(name, devices), name


def test_each_tower_and_its_activations_stay_on_its_device() -> None:
    """Placement on devices that differ, which a CPU pair cannot show.

    Tower 2 goes to ``meta``, everything else to the CPU, by ``place_towers`` and by the
    strategy. Then the forward runs on fake tensors (no data, no GPU) with the parameters
    standing where they were placed, the CPU as ``cuda:0`` and ``meta`` as ``cuda:1``: an op
    that mixes devices raises, and every layer of tower ``i`` must read and write on
    ``cuda:i``, the logits on ``cuda:0`` where the batch arrived.
    """
    devices = [torch.device("cpu"), torch.device("meta")]
    net = AlexNet(num_classes=NUM_CLASSES, init="torch").eval()
    place_towers(net, devices)
    by_name = {name: _tower_device(name, devices) for name, _ in net.named_parameters()}
    assert {name: p.device for name, p in net.named_parameters()} == by_name
    assert planned_devices(net, devices) == by_name
    assert any(device.type == "meta" for device in by_name.values())

    strategy = TwoDeviceModelParallelStrategy(["cpu", "cpu"])
    strategy._devices = devices
    strategy.model = model = _module()
    strategy.model_to_device()
    for name, param in model.named_parameters():
        assert param.device == _tower_device(name, devices), name

    fake = {devices[0]: torch.device("cuda", 0), devices[1]: torch.device("cuda", 1)}
    seen: list[tuple[str, int, torch.device, torch.device]] = []
    for t, tower in enumerate(net.towers):
        for name, layer in tower.named_children():
            layer.register_forward_hook(
                lambda m, i, o, k=(name, t): seen.append((*k, i[0].device, o.device))
            )
    with FakeTensorMode():
        params = {n: torch.empty(p.shape, device=fake[p.device]) for n, p in net.named_parameters()}
        image = torch.empty(2, 3, 224, 224, device=fake[devices[0]])
        logits = torch.func.functional_call(net, params, (image,))
    assert logits.device == torch.device("cuda", 0)
    layers = {(name, t) for t, tower in enumerate(net.towers) for name, _ in tower.named_children()}
    assert {(name, t) for name, t, *_ in seen} == layers
    for name, t, read, wrote in seen:
        assert read == wrote == torch.device("cuda", t), f"tower {t + 1}'s {name}"


def _params(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(name, p.detach().cpu()) for name, p in model.named_parameters()]


def _assert_same(got: torch.nn.Module, expected: torch.nn.Module) -> None:
    for (name, a), (_, b) in zip(_params(expected), _params(got), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)


class _StepsRun(L.Callback):
    """The global step each training batch starts from."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self.steps.append(trainer.global_step)


def _run(
    strategy: Any,
    root: Path,
    epochs: int,
    ckpt: Path | None = None,
    seed: int = 0,
    callbacks: tuple[L.Callback, ...] = (),
):
    model = _module(seed, dropout=0.0)
    every_epoch = ModelCheckpoint(dirpath=root, filename="{epoch}", save_top_k=-1)
    trainer = _trainer(strategy, root, max_epochs=epochs, callbacks=[every_epoch, *callbacks])
    trainer.fit(model, *_loaders(), ckpt_path=ckpt)
    return model, trainer


@pytest.mark.parametrize("devices", PAIRS)
def test_training_matches_one_device_and_stays_placed_across_resume_and_test(
    devices: list[str], tmp_path: Path
) -> None:
    reference, uninterrupted = _run("auto", tmp_path / "single", epochs=3)
    split, trainer = _run(TwoDeviceModelParallelStrategy(devices), tmp_path / "split", epochs=3)
    placement = trainer.strategy.tower_devices
    _assert_placed(split, trainer, placement)
    _assert_same(split, reference)
    assert trainer.optimizers[0].param_groups[0]["lr"] < 0.01, "plateau drops are part of it"

    # Resumed from the first epoch's checkpoint into a model of other initial weights, the
    # split run trains only epochs 2 and 3, from the checkpoint's step, and ends where the
    # uninterrupted run did: weights, momentum and the lr, with the plateau drop of the
    # checkpoint's own epoch, which Lightning saves before it and skips on resuming.
    ckpt = tmp_path / "split/epoch=0.ckpt"
    steps_per_epoch = len(_data()) // 4
    assert torch.load(ckpt, map_location="cpu")["global_step"] == steps_per_epoch
    strategy, run = TwoDeviceModelParallelStrategy(devices), _StepsRun()
    split, trainer = _run(strategy, tmp_path / "resumed", 3, ckpt, seed=1, callbacks=(run,))
    assert run.steps == list(range(steps_per_epoch, 3 * steps_per_epoch))
    _assert_placed(split, trainer, placement)
    _assert_same(split, reference)
    lr = uninterrupted.optimizers[0].param_groups[0]["lr"]
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(lr)

    trainer.test(split, _loaders()[1])
    _assert_placed(split, trainer, placement)


def test_resume_keeps_optimizer_state_off_the_root_device() -> None:
    # Lightning's default moves every optimizer state tensor to root_device on resume; a
    # root device that cannot hold data ("meta") shows where the states end up.
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    param.grad = torch.ones(3)
    optimizer.step()
    strategy = TwoDeviceModelParallelStrategy(["cpu", "cpu"])
    strategy._root_device = torch.device("meta")
    strategy.optimizers = [optimizer]
    strategy.load_optimizer_state_dict({"optimizer_states": [optimizer.state_dict()]})
    assert optimizer.state[param]["momentum_buffer"].device == torch.device("cpu")


def test_checkpoints_move_between_split_and_single_device(tmp_path: Path) -> None:
    train, val = _loaders()
    split = _module()
    trainer = _trainer(TwoDeviceModelParallelStrategy(["cpu", "cpu"]), tmp_path, max_epochs=1)
    trainer.fit(split, train, val)
    ckpt = next((tmp_path / "checkpoints").glob("*.ckpt"))
    images = _data(2).tensors[0]

    single = LitAlexNet.load_from_checkpoint(ckpt, map_location="cpu").eval()
    plain = AlexNet(num_classes=NUM_CLASSES, init="torch").eval()
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    plain.load_state_dict({k.removeprefix("net."): v for k, v in state.items()})
    with torch.no_grad():
        expected = split.eval().cpu()(images)
        torch.testing.assert_close(single(images), expected)
        torch.testing.assert_close(plain(images), expected)

    # ...and the reverse: a single-device checkpoint resumes under the split.
    single_dir = tmp_path / "single"
    _trainer("auto", single_dir, max_epochs=1).fit(_module(), train, val)
    back = _trainer(TwoDeviceModelParallelStrategy(["cpu", "cpu"]), single_dir, max_epochs=2)
    back.fit(_module(), train, val, ckpt_path=next((single_dir / "checkpoints").glob("*.ckpt")))
    assert back.current_epoch == 2


def test_misuse_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="is not a device"):
        parse_devices(["gpu0", "cpu"])
    with pytest.raises(ValueError, match="give two devices"):
        parse_devices(["cpu"])
    with pytest.raises(ValueError, match="both on GPUs"):
        parse_devices(["cpu", "cuda:0"])
    missing = f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(RuntimeError, match=f"{missing} not present"):
        parse_devices(["cuda:0", missing])
    one_tower = LitAlexNet(num_classes=NUM_CLASSES, towers=1)
    train, _ = _loaders()
    trainer = _trainer(TwoDeviceModelParallelStrategy(["cpu", "cpu"]), max_epochs=1)
    with pytest.raises(ValueError, match=r"1 tower\(s\).*AlexNet\(towers=2\)"):
        trainer.fit(one_tower, train)


# ----------------------------------------------------------------------------- DDP


class _RankSlices(L.LightningDataModule):
    """16 fixed samples; rank r of a world of w reads samples r, r + w, r + 2w, ... in order."""

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        assert trainer is not None
        data = _data(16)
        sampler = DistributedSampler(
            data, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
        )
        return DataLoader(data, batch_size=8 // trainer.world_size, sampler=sampler)


def test_ddp_over_device_pairs_matches_one_process_on_the_global_batch() -> None:
    # 2 processes x 2 CPU devices, 4 images each per step, against 1 process with all 8:
    # rank 0 reads samples 0, 2, 4, 6 and rank 1 samples 1, 3, 5, 7 in the first step.
    models = []
    for strategy, devices in ((TwoDeviceDDPStrategy(start_method="spawn"), 2), ("auto", 1)):
        model = _module(dropout=0.0, scheduler=None)
        trainer = _trainer(
            strategy,
            accelerator="cpu",
            devices=devices,
            max_epochs=1,
            limit_val_batches=0,
            use_distributed_sampler=False,
        )
        trainer.fit(model, datamodule=_RankSlices())
        models.append(model)
    ddp, reference = models
    assert trainer.global_step == 2
    _assert_same(ddp, reference)
    start = _module().parameters()
    moved = sum(
        (a - b).abs().sum().item() for a, b in zip(reference.parameters(), start, strict=True)
    )
    assert moved > 0, "the runs must have taken optimizer steps"


@pytest.mark.parametrize("strategy", ["single", "two_device"])
def test_bf16_autocast_is_on_for_the_towers_on_a_cpu_as_on_one_device(strategy: str) -> None:
    model = _module(scheduler=None)
    dtypes: list[torch.dtype] = []
    for tower in model.net.towers:
        tower.conv1.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    chosen = "auto" if strategy == "single" else TwoDeviceModelParallelStrategy(["cpu", "cpu"])
    trainer = _trainer(
        chosen, max_epochs=1, limit_train_batches=1, limit_val_batches=0, precision="bf16-mixed"
    )
    train, _ = _loaders()
    trainer.fit(model, train)
    assert dtypes == [torch.bfloat16, torch.bfloat16]
