"""The paper's optimiser and learning-rate schedule (section 5)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau


class PaperSGD(Optimizer):
    """Stochastic gradient descent with the paper's update rule (section 5).

    ``v <- momentum * v - weight_decay * lr * w - lr * grad``; ``w <- w + v``.

    The learning rate sits inside the velocity, so when the rate drops the momentum still
    carries steps taken at the old rate. ``torch.optim.SGD`` multiplies the whole buffer by
    the current rate instead: the two agree while the rate is constant and differ after
    every drop.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
    ) -> None:
        if lr <= 0.0:
            raise ValueError(f"lr={lr!r} must be positive")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum={momentum!r} must be in [0, 1)")
        if weight_decay < 0.0:
            raise ValueError(f"weight_decay={weight_decay!r} must be non-negative")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
            velocity = []
            for p in params:
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                velocity.append(state["velocity"])
            grads = [p.grad for p in params]
            # Grouped per device and dtype by torch, so this holds for split models too.
            torch._foreach_mul_(velocity, momentum)
            torch._foreach_add_(velocity, params, alpha=-decay * lr)
            torch._foreach_add_(velocity, grads, alpha=-lr)
            torch._foreach_add_(params, velocity)
        return loss


class PlateauDecay(ReduceLROnPlateau):
    """Divide the learning rate by ``1/factor`` when the monitored error stops improving.

    Section 5: "divide the learning rate by 10 when the validation error rate stopped
    improving with the current learning rate ... reduced three times prior to termination".
    After ``max_reductions`` drops the rate stays where it is; with ``stop_after_last`` the
    next plateau sets ``finished`` instead, and :class:`lit_alexnet.LitAlexNet` then ends
    training, as the paper terminated after its third drop.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 0.1,
        patience: int = 1,
        threshold: float = 1e-4,
        max_reductions: int = 3,
        cooldown: int = 0,
        stop_after_last: bool = False,
    ) -> None:
        if max_reductions < 0:
            raise ValueError(f"max_reductions={max_reductions!r} must be non-negative")
        self.max_reductions = max_reductions
        self.reductions = 0
        self.stop_after_last = stop_after_last
        self.finished = False
        super().__init__(
            optimizer,
            mode="min",
            factor=factor,
            patience=patience,
            threshold=threshold,
            cooldown=cooldown,
        )

    def _reduce_lr(self, epoch: Any) -> None:
        if self.reductions >= self.max_reductions:
            self.finished = self.stop_after_last
            return
        super()._reduce_lr(epoch)
        self.reductions += 1
