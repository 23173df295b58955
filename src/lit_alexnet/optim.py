"""The paper's optimiser and learning-rate schedule (section 5)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

from lit_alexnet.checks import check

# The paper's criterion for dropping the learning rate (section 5): the validation top-1
# error, under the name LitAlexNet logs it.
MONITOR = "val/top1_error"


def check_sgd_arguments(lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
    """Refuse what :class:`PaperSGD` cannot take, naming the argument; the optimizer schemas'
    check too (lr and weight decay alone for an optimiser without momentum)."""
    check(lr > 0, "lr", lr, "must be positive")
    check(0 <= momentum < 1, "momentum", momentum, "must be in [0, 1)")
    check(weight_decay >= 0, "weight_decay", weight_decay, "must be >= 0")


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
        check_sgd_arguments(lr, momentum, weight_decay)
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


def check_plateau_arguments(factor: float, patience: int, max_reductions: int) -> None:
    """Refuse what :class:`PlateauDecay` cannot take, naming the argument; ``scheduler=plateau``'s
    check too."""
    check(0 < factor < 1, "factor", factor, "must be in (0, 1)")
    check(patience >= 0, "patience", patience, "must be >= 0")
    check(max_reductions >= 0, "max_reductions", max_reductions, "must be >= 0")


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
        check_plateau_arguments(factor, patience, max_reductions)
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
