"""Local response normalisation across channels, as printed in the AlexNet paper (section 3.3).

The paper's formula, for the activity ``a`` of kernel ``c`` at one position, with ``C`` maps:

    b[c] = a[c] / (k + alpha * sum_{j = max(0, c - n/2)}^{min(C - 1, c + n/2)} a[j]^2) ^ beta

with ``k = 2``, ``n = 5``, ``alpha = 1e-4``, ``beta = 0.75``. Here ``alpha`` multiplies the *sum*.
``torch.nn.LocalResponseNorm``, Caffe and Krizhevsky's cuda-convnet divide ``alpha`` by ``n``
instead, so ``LocalResponseNorm(n, alpha, beta, k)`` here equals
``torch.nn.LocalResponseNorm(n, alpha * n, beta, k)``.

Speed: torch's version pads, runs ``avg_pool3d`` over a 5-D view and ``pow``, and autograd
then differentiates each of those, so on a CPU the four LRN calls of the two-tower net cost
a large share of a training step. Here forward and backward are derived by hand, in two
implementations of the same formula:

- on a CPU, for float32 and bfloat16 (float16 in float32): a C kernel compiled once per
  machine (:mod:`lit_alexnet.nn.lrn_cpu`, 0.35 s the first time, then loaded from
  torch's extension folder) that reads each tensor once and writes the result once. On 2
  AVX2 EPYC cores, forward plus backward took 2.5-3.0x a ReLU's forward plus backward on the
  same tensor in float32 and 3.9-4.8x in bfloat16 (batch 32 of 48x55x55 and 128x27x27 maps,
  NCHW and channels-last), against 6.5-8.2x and 11-14x for the plain version below
  (``python -m lit_alexnet.bench model`` prints it; ``benchmarks/``);
- elsewhere (a GPU, float64, no C compiler, ``LIT_ALEXNET_LRN=torch``): one
  ``autograd.Function`` of full-tensor torch ops, the channel-window sum a few shifted-slice
  ``addcmul_`` into the result buffer and ``beta = 0.75`` without ``pow``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from lit_alexnet.checks import check
from lit_alexnet.nn import lrn_cpu

__all__ = [
    "ALPHA",
    "BETA",
    "SIZE",
    "K",
    "LocalResponseNorm",
    "check_lrn_arguments",
    "local_response_norm",
]

# Section 3.3's constants: the defaults here and of :class:`lit_alexnet.nn.Norm`.
SIZE = 5  # n, the number of adjacent maps summed over
ALPHA = 1e-4  # times the sum of squares (the paper's convention, not torch's alpha / n)
BETA = 0.75
K = 2.0

# Low-precision inputs are normalised in float32: in bfloat16 the denominator (about 2)
# would keep only ~2 significant digits, and the windowed sum of squares loses more.
_UPCAST = (torch.float16, torch.bfloat16)


def _inverse_power(s: Tensor, beta: float) -> Tensor:
    """``s ** -beta`` as a fresh tensor (``s`` > 0), to be finished in place by the caller."""
    if beta == 0.75:
        # (s^-1/2)^1/2 cubed: two roots and a cube (which torch computes as x*x*x) cost
        # about a third of ``pow(s, -0.75)``, which goes through exp(log) on a CPU.
        return torch.rsqrt(s).sqrt_().pow_(3)
    if beta == 0.5:
        return torch.rsqrt(s)
    if beta == 1.0:
        return torch.reciprocal(s)
    return torch.pow(s, -beta)


class _LRNFunction(torch.autograd.Function):
    """The printed LRN with a hand-derived backward.

    With ``W`` the window sum over channels ``[c - before, c + after]``, clipped at both
    ends (``W^T`` is the mirrored window ``[c - after, c + before]``; for odd sizes W^T = W):

        s = k + alpha * W(a^2),   d = s^-beta,   b = a * d
        grad_a = g * d - 2 * alpha * beta * a * W^T(g * b / s)

    Why it is fast on a CPU: every step is a full-tensor elementwise op, so the cost is the
    number of passes over memory and, above all, the number of *fresh* large buffers (each
    one page-faults its way into existence; an in-place pass over a warm buffer is ~10x
    cheaper). So the window sums are shifted-slice ``addcmul_`` straight into the output
    buffer (no buffer for ``a^2`` or for ``W(...)``), ``d`` is computed in place and turned
    into ``b`` in place, and only ``s`` is saved (``a`` is kept anyway by the ReLU before
    the LRN): backward recomputes ``d`` in place, three cheap passes, instead of holding
    another activation-sized tensor. Forward allocates two buffers (s, b), backward two.
    """

    @staticmethod
    def forward(ctx: Any, a: Tensor, size: int, alpha: float, beta: float, k: float) -> Tensor:
        before, after = size // 2, (size - 1) // 2  # torch.nn.LocalResponseNorm's window
        last = a.shape[1] - 1  # shifts of C or more would only add empty slices
        s = torch.addcmul(a.new_full((), k), a, a, value=alpha)  # k + alpha * a[c]^2
        for shift in range(1, min(before, last) + 1):  # + alpha * a[c - shift]^2
            s[:, shift:].addcmul_(a[:, :-shift], a[:, :-shift], value=alpha)
        for shift in range(1, min(after, last) + 1):  # + alpha * a[c + shift]^2
            s[:, :-shift].addcmul_(a[:, shift:], a[:, shift:], value=alpha)
        ctx.save_for_backward(a, s)
        ctx.window = (before, after)
        ctx.beta = beta
        ctx.coeff = 2.0 * alpha * beta
        return _inverse_power(s, beta).mul_(a)

    @staticmethod
    @once_differentiable  # s carries no graph: refuse double backward loudly, not wrongly
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        a, s = ctx.saved_tensors
        before, after = ctx.window
        last = a.shape[1] - 1
        coeff = -ctx.coeff
        grad_a = _inverse_power(s, ctx.beta).mul_(grad)  # g * d
        t = torch.mul(grad_a, a).div_(s)  # g * b / s
        # grad_a -= coeff * a * W^T(t), one shifted slice at a time: W^T sums t over
        # channels [c - after, c + before].
        grad_a.addcmul_(a, t, value=coeff)
        for shift in range(1, min(after, last) + 1):
            grad_a[:, shift:].addcmul_(a[:, shift:], t[:, :-shift], value=coeff)
        for shift in range(1, min(before, last) + 1):
            grad_a[:, :-shift].addcmul_(a[:, :-shift], t[:, shift:], value=coeff)
        return grad_a, None, None, None, None


def local_response_norm(
    input: Tensor, size: int = SIZE, alpha: float = ALPHA, beta: float = BETA, k: float = K
) -> Tensor:
    """Functional form of :class:`LocalResponseNorm` (paper convention: alpha times the sum)."""
    check_lrn_arguments(size, alpha, beta, k)
    if input.dim() < 3:
        raise ValueError(
            f"local_response_norm expects an input of shape (N, C, ...) with at least 3 "
            f"dimensions, got shape {tuple(input.shape)}"
        )
    if not input.is_floating_point():
        raise ValueError(f"local_response_norm expects a floating-point input, got {input.dtype}")
    if input.numel() == 0:
        return input.clone()
    if lrn_cpu.supports(input):  # float32 and bfloat16 on a CPU, one pass each way
        fast: Tensor = lrn_cpu.lrn_forward(input, size, alpha, beta, k)
        return fast
    x = input.float() if input.dtype in _UPCAST else input
    if x is not input and lrn_cpu.supports(x):  # float16 on a CPU
        out: Tensor = lrn_cpu.lrn_forward(x, size, alpha, beta, k)
    else:
        out = _LRNFunction.apply(x, size, alpha, beta, k)
    return out.to(input.dtype)


def check_lrn_arguments(size: int, alpha: float, beta: float, k: float) -> None:
    """Refuse what no LRN has, naming the argument: the one check of :class:`LocalResponseNorm`,
    :func:`local_response_norm` and :class:`lit_alexnet.nn.Norm` (so of ``model.net.norm``)."""
    integer = isinstance(size, int) and not isinstance(size, bool)
    check(integer and size >= 1, "size", size, f"must be a positive integer (the paper's n={SIZE})")
    for name, value in (("alpha", alpha), ("beta", beta), ("k", k)):
        real = isinstance(value, int | float) and not isinstance(value, bool)
        check(real, name, value, "must be a real number")
        check(math.isfinite(value), name, value, "must be finite")
    check(alpha >= 0, "alpha", alpha, "must be >= 0")
    check(beta >= 0, "beta", beta, "must be >= 0")
    # k > 0 keeps the denominator positive, so an all-zero window cannot give 0/0.
    check(k > 0, "k", k, "must be > 0")


class LocalResponseNorm(nn.Module):
    """Local response normalisation across channels (AlexNet paper, section 3.3).

    Computes the formula as printed in the paper, over dim 1 of an ``(N, C, ...)`` tensor::

        b[c] = a[c] / (k + alpha * sum_{j=max(0, c-n//2)}^{min(C-1, c+n//2)} a[j]^2) ^ beta

    Alpha convention: ``alpha`` multiplies the window *sum*, as printed. PyTorch's
    :class:`torch.nn.LocalResponseNorm`, Caffe and cuda-convnet multiply the sum by
    ``alpha / n``; so this module equals ``torch.nn.LocalResponseNorm(size, alpha * size,
    beta, k)``. The paper's values are the defaults (:data:`SIZE`, :data:`ALPHA`, :data:`BETA`,
    :data:`K`).

    The window is clipped at the first and last channel (it never wraps and never reads
    outside the given tensor), so applying the module to each tower's maps keeps the
    normalisation inside that tower. An even ``size`` uses torch's asymmetric window
    ``[c - size//2, c + (size-1)//2]``. float16/bfloat16 inputs are computed in float32.

    Args:
        size: ``n``, the number of adjacent maps summed over (positive integer).
        alpha: scale of the sum of squares (>= 0), paper convention.
        beta: exponent (>= 0).
        k: additive constant (> 0).
    """

    def __init__(
        self, size: int = SIZE, alpha: float = ALPHA, beta: float = BETA, k: float = K
    ) -> None:
        super().__init__()
        check_lrn_arguments(size, alpha, beta, k)
        self.size = size
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.k = float(k)

    def forward(self, input: Tensor) -> Tensor:
        """Normalise ``input`` of shape ``(N, C, ...)`` across its channels."""
        return local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
