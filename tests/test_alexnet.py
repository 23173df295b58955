"""The network against the paper's table (section 3.5, Figure 2) and init (section 5)."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from lit_alexnet import AlexNet, LocalResponseNorm


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def paper_param_count(num_classes: int, groups: int) -> int:
    """Counted from the paper's table: (in/groups * k * k + 1) * out per layer."""
    convs = [
        (3, 96, 11, 1),
        (96, 256, 5, groups),
        (256, 384, 3, 1),
        (384, 384, 3, groups),
        (384, 256, 3, groups),
    ]
    fcs = [(256 * 6 * 6, 4096), (4096, 4096), (4096, num_classes)]
    return sum((i // g * k * k + 1) * o for i, o, k, g in convs) + sum((i + 1) * o for i, o in fcs)


def test_parameter_count_two_towers() -> None:
    assert n_params(AlexNet()) == 60_965_224 == paper_param_count(1000, groups=2)


def test_parameter_count_ungrouped() -> None:
    assert n_params(AlexNet(towers=1)) == 62_378_344 == paper_param_count(1000, groups=1)


def test_parameter_count_other_classes() -> None:
    assert n_params(AlexNet(num_classes=10)) == paper_param_count(10, groups=2)


@pytest.mark.parametrize("pooling", ["overlap", "standard"])
def test_map_sizes_follow_the_paper(pooling: str) -> None:
    net = AlexNet(num_classes=10, pooling=pooling).eval()
    sizes: list[int] = []
    for tower in net.towers[:1]:
        tower.conv1.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
        tower.conv2.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[-1]))
        tower.conv3.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[-1]))
    with torch.no_grad():
        features = net.forward_features(torch.randn(2, 3, 224, 224))
        logits = net(torch.randn(2, 3, 224, 224))
    assert sizes[:3] == [55, 27, 13]
    assert features.shape == (2, 256, 6, 6)
    assert logits.shape == (2, 10)


def test_towers_are_separate_submodules_that_split_every_layer() -> None:
    net = AlexNet()
    assert len(net.towers) == 2
    a, b = net.towers
    assert a.conv1.out_channels == b.conv1.out_channels == 48
    assert a.conv2.in_channels == 48 and a.conv2.out_channels == 128
    assert a.conv3.in_channels == 256  # conv3 reads both towers
    assert a.conv4.in_channels == 192 and a.conv5.out_channels == 128
    assert a.fc6.in_features == 9216 and a.fc6.out_features == 2048  # fc6 reads both
    assert a.fc7.in_features == 4096
    assert net.fc8.in_features == 4096
    assert not set(map(id, a.parameters())) & set(map(id, b.parameters()))


# Figure 2: each tower's layers in order, and the layers whose input is both towers' outputs
# side by side (tower 1's first); fc8 is the one layer outside the towers.
TOWER_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
READS_BOTH = ("conv3", "fc6", "fc7", "fc8")


def test_only_conv3_and_the_fc_layers_read_the_other_tower() -> None:
    """Through ``AlexNet.forward``: a change in one tower's output reaches the other tower only
    at the next layer of Figure 2 that reads both towers (conv3, fc6, fc7, fc8).

    Each tower's conv1, conv3, fc6 and fc7 output is changed in turn (by a forward hook).
    Up to the next layer that reads both, the other tower's outputs stay bit for bit the same
    (so conv2, conv4 and conv5 read only their own tower); that layer's input is the two
    towers' outputs side by side, the other tower's half the same and the changed tower's
    half not (so conv3, fc6, fc7 and fc8 read both, each tower's own maps unmixed).
    """
    torch.manual_seed(0)
    net = AlexNet(num_classes=10, init="torch", dropout=0.0).eval()
    towers = list(net.towers)
    image = torch.randn(1, 3, 224, 224)
    outputs: dict[tuple[int, str], torch.Tensor] = {}
    inputs: dict[tuple[int, str], torch.Tensor] = {}
    for t, tower in enumerate(towers):
        for name in TOWER_LAYERS:
            layer = getattr(tower, name)
            layer.register_forward_hook(lambda m, i, o, k=(t, name): outputs.update({k: o}))
            if name in READS_BOTH:
                layer.register_forward_pre_hook(lambda m, i, k=(t, name): inputs.update({k: i[0]}))
    net.fc8.register_forward_pre_hook(lambda m, i: inputs.update({(0, "fc8"): i[0]}))

    def run() -> tuple[dict, dict]:
        outputs.clear()
        inputs.clear()
        with torch.no_grad():
            net(image)
        return dict(outputs), dict(inputs)

    out0, in0 = run()
    for changed in range(2):
        other = 1 - changed
        for start, reader in zip(("conv1", "conv3", "fc6", "fc7"), READS_BOTH, strict=True):
            where = f"tower {changed + 1}'s {start} changed"
            hook = getattr(towers[changed], start).register_forward_hook(lambda m, i, o: o + 1.0)
            try:
                out1, in1 = run()
            finally:
                hook.remove()
            own = TOWER_LAYERS[: TOWER_LAYERS.index(reader)] if reader != "fc8" else TOWER_LAYERS
            for name in own:
                assert torch.equal(out1[other, name], out0[other, name]), f"{where}: {name} moved"
            for t, name in [(0, "fc8")] if reader == "fc8" else [(0, reader), (1, reader)]:
                before, after = in0[t, name].chunk(2, dim=1), in1[t, name].chunk(2, dim=1)
                layer = name if name == "fc8" else f"tower {t + 1}'s {name}"
                half = f"{where}: the half of {layer}'s input from tower"
                assert torch.equal(after[other], before[other]), f"{half} {other + 1} moved"
                assert not torch.equal(after[changed], before[changed]), f"{half} {changed + 1} not"
            if reader != "fc8":
                assert not torch.equal(out1[other, reader], out0[other, reader]), where


def test_two_towers_equal_torch_grouped_convolutions() -> None:
    """The tower split computes what one net with groups=2 in conv2, conv4, conv5 computes."""
    torch.manual_seed(0)
    net = AlexNet(num_classes=10, norm="none", dropout=0.0).eval()
    a, b = net.towers

    def merged(layer: str, in_channels: int, groups: int) -> nn.Conv2d:
        la, lb = getattr(a, layer), getattr(b, layer)
        conv = nn.Conv2d(
            in_channels, 2 * la.out_channels, la.kernel_size, la.stride, la.padding, groups=groups
        )
        conv.weight.data = torch.cat([la.weight, lb.weight])
        conv.bias.data = torch.cat([la.bias, lb.bias])
        return conv

    ref = nn.Sequential(
        merged("conv1", 3, 1),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        merged("conv2", 96, 2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        merged("conv3", 256, 1),
        nn.ReLU(),
        merged("conv4", 384, 2),
        nn.ReLU(),
        merged("conv5", 384, 2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
    )
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(net.forward_features(x), ref(x), rtol=1e-4, atol=1e-4)


def test_paper_initialisation() -> None:
    torch.manual_seed(0)
    net = AlexNet()
    bias_one = {"conv2", "conv4", "conv5", "fc6", "fc7"}
    for tower in net.towers:
        for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"):
            layer = getattr(tower, name)
            w = layer.weight
            assert abs(w.mean().item()) < 1e-3, name
            assert w.std().item() == pytest.approx(0.01, rel=0.05), name
            assert torch.all(layer.bias == (1.0 if name in bias_one else 0.0)), name
    assert net.fc8.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert torch.all(net.fc8.bias == 0.0)


def test_norm_choices() -> None:
    assert isinstance(AlexNet(norm="lrn").towers[0].norm1, LocalResponseNorm)
    assert isinstance(AlexNet(norm="batch").towers[0].norm2, nn.BatchNorm2d)
    assert isinstance(AlexNet(norm="none").towers[0].norm1, nn.Identity)


def test_activation_choices() -> None:
    assert isinstance(AlexNet(activation="tanh").towers[1].act, nn.Tanh)
    assert isinstance(AlexNet().towers[1].act, nn.ReLU)


def test_standard_pooling_is_two_by_two() -> None:
    pool = AlexNet(pooling="standard").towers[0].pool
    assert (pool.kernel_size, pool.stride) == (2, 2)


def test_dropout_only_in_training() -> None:
    net = AlexNet(num_classes=10)
    x = torch.randn(2, 3, 224, 224)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
    net.train()
    with torch.no_grad():
        assert not torch.equal(net(x), net(x))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(towers=3), "towers=3"),
        (dict(norm="lrm"), "norm.name='lrm'"),
        (dict(pooling="overlapp"), "pooling.name='overlapp'"),
        (dict(activation="gelu"), "activation='gelu'"),
        (dict(dropout=1.0), "dropout=1.0"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        AlexNet(**kwargs)


def test_same_budget_as_torchvision() -> None:
    """torchvision's one-tower variant differs only in its channel counts."""
    ours, theirs = n_params(AlexNet()), n_params(torchvision.models.alexnet())
    assert theirs == 61_100_840
    assert abs(ours - theirs) / theirs < 0.01


def test_torch_init_keeps_pytorch_defaults() -> None:
    """init="torch": weights uniform in +-1/sqrt(fan_in), as torch.nn.Conv2d makes them."""
    net = AlexNet(init="torch")
    for tower in net.towers:
        w = tower.conv2.weight
        bound = 1 / (w[0].numel() ** 0.5)
        assert w.abs().max().item() <= bound
        assert w.std().item() == pytest.approx(bound / 3**0.5, rel=0.05)
        assert not torch.all(tower.fc6.bias == 1.0)


def test_kaiming_init_is_he_normal_with_a_zero_classifier() -> None:
    """init="kaiming": N(0, 2 / fan_in) weights, zero biases, fc8 zero (uniform scores)."""
    torch.manual_seed(0)
    net = AlexNet(num_classes=10, init="kaiming")
    for tower in net.towers:
        for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"):
            layer = getattr(tower, name)
            fan_in = layer.weight[0].numel()  # in_channels (of this tower's group) x kernel
            assert layer.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.05), name
            assert torch.all(layer.bias == 0.0), name
    assert torch.all(net.fc8.weight == 0.0) and torch.all(net.fc8.bias == 0.0)
    with torch.no_grad():
        assert torch.all(net.eval()(torch.randn(2, 3, 224, 224)) == 0.0)


def test_unknown_init_is_refused() -> None:
    with pytest.raises(ValueError, match="init='glorot'"):
        AlexNet(init="glorot")


def test_the_one_gpu_comparison_net_halves_conv1_to_conv4_only() -> None:
    # Section 3.2 and its footnote: 48, 128, 192, 192 kernels, then conv5 and fc at full size.
    convs = [(3, 48, 11), (48, 128, 5), (128, 192, 3), (192, 192, 3), (192, 256, 3)]
    fcs = [(256 * 6 * 6, 4096), (4096, 4096), (4096, 1000)]
    by_hand = sum((i * k * k + 1) * o for i, o, k in convs) + sum((i + 1) * o for i, o in fcs)
    net = AlexNet(towers=1, half_width=True)
    assert n_params(net) == by_hand
    assert net(torch.randn(1, 3, 224, 224)).shape == (1, 1000)
    with pytest.raises(ValueError, match=r"half_width=True.*towers=1"):
        AlexNet(towers=2, half_width=True)


def test_fc7_features_are_what_fc8_reads() -> None:
    torch.manual_seed(0)
    net = AlexNet(num_classes=10).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        fc7 = net.features(x, layer="fc7")
        assert fc7.shape == (2, 4096) and (fc7 >= 0).all()  # after ReLU
        torch.testing.assert_close(net.fc8(fc7), net(x))
        assert net.features(x, layer="pool5").shape == (2, 256, 6, 6)
    with pytest.raises(ValueError, match="layer='fc9'"):
        net.features(x, layer="fc9")
