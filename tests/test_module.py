"""LitAlexNet's metrics and test-time view averaging against direct computations."""

from __future__ import annotations

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
    model = LitAlexNet(num_classes=5, dropout=0.0).eval()
    views = torch.randn(2, 10, 3, 224, 224)
    with torch.no_grad():
        averaged = model.predict_proba(views)
        by_hand = torch.stack(
            [
                torch.stack([model.net(v[None])[0].softmax(-1) for v in image]).mean(0)
                for image in views
            ]
        )
    torch.testing.assert_close(averaged, by_hand, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(averaged.sum(-1), torch.ones(2))
