"""PaperSGD against the update rule printed in section 5, and the plateau schedule."""

from __future__ import annotations

import pytest
import torch

from lit_alexnet import PaperSGD, PlateauDecay
from lit_alexnet.checks import Invalid

GRADS = [0.5, -1.0, 2.0, 0.25, -0.75, 1.5]
LRS = [0.1, 0.1, 0.1, 0.01, 0.01, 0.001]  # two drops by 10


def hand_computed(w: float, momentum: float, decay: float) -> list[float]:
    """v <- momentum v - decay lr w - lr grad; w <- w + v, step by step in plain floats."""
    v, out = 0.0, []
    for g, lr in zip(GRADS, LRS, strict=True):
        v = momentum * v - decay * lr * w - lr * g
        w = w + v
        out.append(w)
    return out


def run(optimizer_cls: type[torch.optim.Optimizer], w0: float, **kw: float) -> list[float]:
    w = torch.tensor([w0], dtype=torch.float64, requires_grad=True)
    opt = optimizer_cls([w], lr=LRS[0], **kw)
    out = []
    for g, lr in zip(GRADS, LRS, strict=True):
        for group in opt.param_groups:
            group["lr"] = lr
        w.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        out.append(w.item())
    return out


def test_paper_sgd_follows_the_printed_rule_across_lr_drops() -> None:
    ours = run(PaperSGD, 1.0, momentum=0.9, weight_decay=0.0005)
    assert ours == pytest.approx(hand_computed(1.0, 0.9, 0.0005), rel=1e-12, abs=1e-15)


def test_paper_sgd_equals_torch_sgd_until_the_lr_drops_then_differs() -> None:
    ours = run(PaperSGD, 1.0, momentum=0.9, weight_decay=0.0005)
    torchs = run(torch.optim.SGD, 1.0, momentum=0.9, weight_decay=0.0005)
    assert ours[:3] == pytest.approx(torchs[:3], rel=1e-12)
    assert abs(ours[3] - torchs[3]) > 1e-3


def test_paper_sgd_updates_every_parameter_of_a_net_like_torch_sgd() -> None:
    """With a constant lr the two rules coincide, so torch.optim.SGD is a reference."""
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    b = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    b.load_state_dict(a.state_dict())
    oa = PaperSGD(a.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)
    ob = torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)
    x = torch.randn(8, 4)
    for _ in range(5):
        for net, opt in ((a, oa), (b, ob)):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)


def test_paper_sgd_skips_parameters_without_gradients() -> None:
    w = torch.ones(3, requires_grad=True)
    PaperSGD([w]).step()
    assert torch.equal(w, torch.ones(3))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": -0.1}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_paper_sgd_rejects_bad_hyperparameters(kwargs: dict, name: str) -> None:
    with pytest.raises(Invalid, match=rf"^{name}="):
        PaperSGD([torch.ones(1, requires_grad=True)], **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"factor": 1.0}, "factor"),
        ({"factor": 0.0}, "factor"),
        ({"patience": -1}, "patience"),
        ({"max_reductions": -1}, "max_reductions"),
    ],
)
def test_plateau_rejects_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(Invalid, match=rf"^{name}="):
        PlateauDecay(PaperSGD([torch.ones(1, requires_grad=True)]), **kwargs)


def test_plateau_divides_by_ten_at_most_three_times() -> None:
    w = torch.ones(1, requires_grad=True)
    opt = PaperSGD([w], lr=0.01)
    sched = PlateauDecay(opt, factor=0.1, patience=0, max_reductions=3)
    lrs = []
    for error in [0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]:
        sched.step(error)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:2] == [0.01, 0.01]  # improving: no drop
    assert lrs[2:5] == pytest.approx([1e-3, 1e-4, 1e-5])
    assert lrs[5:] == pytest.approx([1e-5] * 3)  # the fourth plateau changes nothing


def test_plateau_waits_for_patience_epochs() -> None:
    opt = PaperSGD([torch.ones(1, requires_grad=True)], lr=0.01)
    sched = PlateauDecay(opt, patience=2)
    for error in [0.5, 0.5, 0.5]:
        sched.step(error)
    assert opt.param_groups[0]["lr"] == 0.01
    sched.step(0.5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001)


def test_plateau_state_survives_a_checkpoint() -> None:
    opt = PaperSGD([torch.ones(1, requires_grad=True)], lr=0.01)
    sched = PlateauDecay(opt, patience=0, max_reductions=1)
    for error in [0.5, 0.5]:
        sched.step(error)
    restored = PlateauDecay(PaperSGD([torch.ones(1, requires_grad=True)], lr=0.01))
    restored.load_state_dict(sched.state_dict())
    assert restored.reductions == 1 and restored.max_reductions == 1


def test_training_ends_at_the_plateau_after_the_last_drop() -> None:
    from types import SimpleNamespace

    from lit_alexnet import LitAlexNet

    model = LitAlexNet(num_classes=3, net={"towers": 1})
    opt = PaperSGD(model.parameters(), lr=0.01)
    sched = PlateauDecay(opt, patience=0, max_reductions=2, stop_after_last=True)
    trainer = SimpleNamespace(should_stop=False)
    model._trainer = trainer  # type: ignore[assignment]
    stopped_at = None
    for epoch, error in enumerate([0.9, 0.9, 0.9, 0.9, 0.9]):
        model.lr_scheduler_step(sched, error)
        if trainer.should_stop and stopped_at is None:
            stopped_at = epoch
    # Epochs 1 and 2 are the two drops; epoch 3 is the plateau after the last one.
    assert sched.reductions == 2 and stopped_at == 3
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4)
    # Without the switch, the rate just stays (the default, as before).
    plain = PlateauDecay(PaperSGD([torch.ones(1, requires_grad=True)]), patience=0)
    for error in [0.9] * 6:
        plain.step(error)
    assert not plain.finished
