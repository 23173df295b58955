"""LitAlexNet's metrics and test-time view averaging against direct computations."""

from __future__ import annotations

from pathlib import Path

import lightning
import pytest
import torch

from lit_alexnet import LitAlexNet
from lit_alexnet.module import TopKError


def test_topk_error_is_the_fraction_of_labels_outside_the_k_best() -> None:
    scores = torch.tensor([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = torch.tensor([2, 0, 0, 1])
    top1, top2 = TopKError(3, k=1), TopKError(3, k=2)
    top1.update(scores, labels)
    top2.update(scores, labels)
    # top-1 picks 1, 0, 2, 0: one right of four. Top-2 sets {1,2}, {0,1}, {2,1}, {0,1}.
    assert top1.compute().item() == 0.75
    assert top2.compute().item() == 0.25


def test_views_are_averaged_in_softmax_space() -> None:
    torch.manual_seed(0)
    model = LitAlexNet(num_classes=5, net={"dropout": 0.0, "init": "kaiming"}).eval()
    with torch.no_grad():
        # Large class scores that differ from view to view, so that averaging logits (or
        # taking one view) would give other probabilities than averaging softmax outputs.
        model.net.fc8.weight.normal_(0, 0.1)  # logits about 1 apart from view to view
    views = torch.randn(2, 10, 3, 224, 224)
    with torch.no_grad():
        averaged = model.predict_proba(views)
        logits = torch.stack(
            [torch.stack([model.net(v[None])[0] for v in image]) for image in views]
        )
    by_hand = logits.softmax(-1).mean(1)
    of_mean_logits = logits.mean(1).softmax(-1)
    assert (by_hand - of_mean_logits).abs().max() > 0.05  # the views really disagree
    torch.testing.assert_close(averaged, by_hand, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(averaged.sum(-1), torch.ones(2))


def test_a_checkpoint_of_the_flat_layout_of_version_0_1_loads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    old = LitAlexNet(num_classes=5, net={"towers": 1, "pooling": "standard"})
    path = tmp_path / "old.ckpt"
    # As lit_alexnet 0.1 saved them: the net's arguments beside num_classes.
    flat = {
        "num_classes": 5,
        "towers": 1,
        "norm": {"name": "none", "size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0},
        "pooling": {"name": "standard", "kernel_size": 2, "stride": 2},
        "activation": "relu",
        "dropout": 0.5,
        "init": "paper",
    }
    old_state = old.state_dict()
    torch.save(
        {
            "state_dict": old_state,
            "hyper_parameters": flat,
            "pytorch-lightning_version": lightning.__version__,
        },
        path,
    )
    loaded = LitAlexNet.load_from_checkpoint(path, weights_only=True)
    assert len(loaded.net.towers) == 1
    assert loaded.net.towers[0].pool.kernel_size == 2
    assert isinstance(loaded.net.towers[0].norm1, torch.nn.Identity)
    assert loaded.hparams["net"]["towers"] == 1  # saved again in the nested layout
    for key, value in old_state.items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_a_misspelt_network_argument_says_where_network_arguments_go() -> None:
    with pytest.raises(TypeError, match=r"tower.*net=\{"):
        LitAlexNet(num_classes=5, tower=1)
