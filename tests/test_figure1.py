"""Figure 1 (section 3.1): the four-layer net, steps to 25% training error, the ratio's
interval and the command, each checked against figures worked out here by hand or by torch's
own functions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from lit_alexnet.figure1 import (
    Run,
    best_learning_rate,
    epoch_errors,
    main,
    ratio_line,
    seeds_table,
    steps_to_threshold,
    summarise,
    train_until,
)
from lit_alexnet.intervals import ratio_interval
from lit_alexnet.nn.small_cnn import SmallCNN

# conv1 3->32, conv2 32->32, conv3 32->64 (5x5 each, with biases), fc 64*4*4 -> 10.
PARAMETERS = (3 * 32 * 25 + 32) + (32 * 32 * 25 + 32) + (32 * 64 * 25 + 64) + (64 * 16 * 10 + 10)


def functional_forward(net: SmallCNN, x: Tensor, act: object) -> Tensor:
    """The net's forward written out with torch's functions and ``act`` as the neuron."""
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    for conv in convs:
        x = F.conv2d(x, conv.weight, conv.bias, padding=2)
        x = F.max_pool2d(act(x), kernel_size=3, stride=2, padding=1)  # type: ignore[operator]
    return F.linear(x.flatten(1), net.classifier.weight, net.classifier.bias)


def test_the_switch_changes_the_neuron_and_nothing_else() -> None:
    torch.manual_seed(0)
    relu = SmallCNN("relu")
    torch.manual_seed(0)
    tanh = SmallCNN("tanh")
    assert sum(p.numel() for p in relu.parameters()) == PARAMETERS
    relu_state, tanh_state = relu.state_dict(), tanh.state_dict()
    assert list(relu_state) == list(tanh_state)
    assert all(torch.equal(relu_state[k], tanh_state[k]) for k in relu_state)  # same init
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(relu(x), functional_forward(relu, x, torch.relu))
        torch.testing.assert_close(tanh(x), functional_forward(tanh, x, torch.tanh))
        assert not torch.allclose(relu(x), tanh(x))


def test_the_init_is_lecun_normal_with_zero_biases() -> None:
    torch.manual_seed(0)
    net = SmallCNN("tanh")
    conv2 = net.features[3]
    assert isinstance(conv2, torch.nn.Conv2d) and conv2.bias is not None
    assert float(conv2.weight.detach().std()) == pytest.approx(1 / math.sqrt(32 * 25), rel=0.02)
    assert not conv2.bias.any()


def test_steps_to_threshold_on_a_curve_worked_by_hand() -> None:
    # Window of 4 batches of 10: errors over steps 1-4 .. 5-8 are 0.70, 0.50, 0.35, 0.25, 0.15.
    wrong = [10, 8, 6, 4, 2, 2, 2, 0]
    assert steps_to_threshold(wrong, [10] * 8, window=4, threshold=0.25) == 7
    assert steps_to_threshold(wrong, [10] * 8, window=4, threshold=0.2) == 8
    assert steps_to_threshold(wrong, [10] * 8, window=4, threshold=0.1) is None
    # No error at all still needs a whole window (an epoch) before it counts.
    assert steps_to_threshold([0] * 6, [10] * 6, window=4) == 4


def test_steps_to_threshold_counts_examples_not_batches() -> None:
    # 9 wrong of 32 is 28%, though the four batches' own rates average 22.5%.
    assert steps_to_threshold([3, 3, 3, 0], [10, 10, 10, 2], window=4) is None
    assert epoch_errors([3, 3, 3, 0, 1, 1], [10, 10, 10, 2, 10, 10], steps_per_epoch=2) == [
        0.3,
        3 / 12,
        0.1,
    ]


@pytest.mark.parametrize(
    ("logs", "t"), [([0.0, 0.1, 0.2], 4.303), ([0.1, 0.3, 0.2, 0.5, 0.4], 2.776)]
)
def test_the_ratio_interval_is_a_t_interval_of_the_log_ratios(logs: list[float], t: float) -> None:
    n = len(logs)
    mean = sum(logs) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in logs) / (n - 1))
    interval = ratio_interval([math.exp(v) for v in logs])
    assert interval.n == n
    assert interval.mean == pytest.approx(math.exp(mean))
    assert interval.low == pytest.approx(math.exp(mean - t * sd / math.sqrt(n)), rel=1e-3)
    assert interval.high == pytest.approx(math.exp(mean + t * sd / math.sqrt(n)), rel=1e-3)


def fake(activation: str, lr: float, seed: int, steps: int | None) -> Run:
    return Run(activation, lr, seed, steps, steps_per_epoch=10, steps_run=steps or 200, wall_s=0)


def test_the_best_rate_counts_a_censored_run_as_never() -> None:
    runs = [fake("relu", 0.01, s, steps) for s, steps in enumerate([100, None, None])]
    runs += [fake("relu", 0.02, s, 300) for s in range(3)]
    runs += [fake("relu", 0.04, s, steps) for s, steps in enumerate([100, 200, None])]
    assert best_learning_rate(runs, "relu") == 0.04  # median 200 beats 300 and never


def test_a_censored_tanh_seed_is_a_lower_bound_not_a_ratio() -> None:
    runs = [fake("relu", 0.01, 0, 50), fake("relu", 0.01, 1, 40)]
    runs += [fake("tanh", 0.01, 0, 100), fake("tanh", 0.01, 1, None)]
    summary = summarise(runs)
    assert summary.ratios == {0: 2.0, 1: None}
    assert summary.censored == [1]
    assert summary.interval is not None and summary.interval.n == 1
    assert "> 5.00" in seeds_table(summary)  # 200 steps run / 40
    assert "censored seeds [1] left out" in ratio_line(summary)


def test_a_seed_trains_alike_twice() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(40, 3, 32, 32, generator=generator)
    labels = torch.arange(40) % 4
    first, second = (
        train_until(images, labels, "tanh", 0.01, seed=3, batch_size=8, max_epochs=2)
        for _ in range(2)
    )
    assert first.steps_run == 10 and len(first.epoch_errors) == 2
    assert first.epoch_errors == second.epoch_errors


def test_the_command_writes_the_json_and_the_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["--seeds", "1", "--max-epochs", "2", "--per-class", "8", "--classes", "2"]
    args += ["--lrs", "0.01", "--batch-size", "4", "--cache-dir", str(tmp_path), "--out", str(out)]
    assert main(args) == 0
    record = json.loads((out / "figure1.json").read_text())
    assert [(r["activation"], r["lr"], r["seed"]) for r in record["runs"]] == [
        ("relu", 0.01, 0),
        ("tanh", 0.01, 0),
    ]
    assert all(r["steps_per_epoch"] == 4 for r in record["runs"])  # 16 images, batches of 4
    assert record["chosen_lr"] == {"relu": 0.01, "tanh": 0.01}
    assert record["paper_ratio"] == 6.0 and record["wall_s"] > 0
    with Image.open(out / "figure1.png") as picture:
        assert picture.format == "PNG" and picture.size == (768, 528)
    printed = capsys.readouterr().out
    assert "wall time" in printed and record["machine"]["cpu"] in printed
    assert "paper (section 3.1, CIFAR-10): 6x" in printed
