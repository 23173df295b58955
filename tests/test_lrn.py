"""Tests for the paper's local response normalisation (section 3.3), lit_alexnet.nn.lrn."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lit_alexnet.checks import Invalid
from lit_alexnet.nn import Norm, lrn_cpu
from lit_alexnet.nn.lrn import LocalResponseNorm, local_response_norm


def reference_lrn(a: np.ndarray, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    """The printed formula, one channel at a time, window [c - size//2, c + (size-1)//2]."""
    channels = a.shape[1]
    out = np.empty_like(a, dtype=np.float64)
    for c in range(channels):
        lo, hi = max(0, c - size // 2), min(channels - 1, c + (size - 1) // 2)
        total = sum(a[:, j].astype(np.float64) ** 2 for j in range(lo, hi + 1))
        out[:, c] = a[:, c] / (k + alpha * total) ** beta
    return out


def activations(*shape: int, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    """Post-ReLU-like maps, large enough that the alpha term matters (alpha * sum ~ k)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * 40).relu().to(dtype)


def test_defaults_are_the_papers() -> None:
    lrn = LocalResponseNorm()
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)
    assert repr(lrn) == "LocalResponseNorm(size=5, alpha=0.0001, beta=0.75, k=2.0)"
    norm = Norm()  # AlexNet's norm="lrn", and so model.net.norm's defaults
    assert (norm.size, norm.alpha, norm.beta, norm.k) == (5, 1e-4, 0.75, 2.0)
    layer = norm.layer(48)
    assert isinstance(layer, LocalResponseNorm) and repr(layer) == repr(lrn)


@pytest.mark.parametrize(
    ("size", "alpha", "beta", "k"),
    [
        (5, 1e-4, 0.75, 2.0),
        (3, 1e-3, 0.5, 1.0),
        (4, 2e-4, 0.6, 2.0),
        (1, 1e-2, 1.0, 1.5),
        (6, 1e-4, 0.75, 2.0),
    ],
)
@pytest.mark.parametrize("channels", [1, 2, 4, 7, 48])
def test_matches_the_printed_formula(
    size: int, alpha: float, beta: float, k: float, channels: int
) -> None:
    a = activations(2, channels, 3, 4)
    expected = reference_lrn(a.numpy(), size, alpha, beta, k)
    got = LocalResponseNorm(size, alpha, beta, k)(a)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_alpha_multiplies_the_sum_not_the_mean() -> None:
    # One non-zero channel: the denominator is k + alpha * a^2 (not k + alpha/n * a^2).
    a = torch.zeros(1, 5, 1, 1, dtype=torch.float64)
    a[0, 2] = 10.0
    b = LocalResponseNorm(5, alpha=1e-2, beta=1.0, k=1.0)(a)
    assert b[0, 2].item() == pytest.approx(10.0 / (1.0 + 1e-2 * 100.0))


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 9])
@pytest.mark.parametrize("channels", [1, 3, 5, 8, 48])
@pytest.mark.parametrize("beta", [0.75, 0.6])
def test_matches_torch_with_alpha_times_size(size: int, channels: int, beta: float) -> None:
    alpha, k = 1e-4, 2.0
    a = activations(2, channels, 5, 3, seed=size * 100 + channels)
    a_ours = a.clone().requires_grad_()
    a_torch = a.clone().requires_grad_()
    ours = LocalResponseNorm(size, alpha, beta, k)(a_ours)
    theirs = torch.nn.LocalResponseNorm(size, alpha * size, beta, k)(a_torch)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(a)
    (g_ours,) = torch.autograd.grad(ours, a_ours, grad)
    (g_theirs,) = torch.autograd.grad(theirs, a_torch, grad)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 7, 3), (2, 6, 3, 4), (1, 4, 2, 3, 2)])
def test_matches_torch_on_3d_and_5d_inputs(shape: tuple[int, ...]) -> None:
    a = activations(*shape)
    torch.testing.assert_close(
        LocalResponseNorm(3, 1e-3)(a), torch.nn.LocalResponseNorm(3, 3e-3, 0.75, 2.0)(a)
    )


@pytest.mark.parametrize(("size", "beta"), [(5, 0.75), (4, 0.6), (3, 1.0), (2, 0.5), (7, 0.0)])
def test_gradcheck_float64(size: int, beta: float) -> None:
    # alpha large so that the cross-channel term of the gradient is far from negligible.
    a = (torch.rand(2, 6, 3, 3, dtype=torch.float64) * 4 - 1).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: local_response_norm(x, size, alpha=0.1, beta=beta, k=1.0), (a,)
    )


@pytest.mark.parametrize(
    ("dtype", "refusal"),
    # float64 takes the plain path; float32 the compiled one where it is built.
    [(torch.float64, "once_differentiable"), (torch.float32, "once_differentiable|no autograd")],
)
def test_double_backward_is_refused_not_wrong(dtype: torch.dtype, refusal: str) -> None:
    # The hand-written backward is first order only; asking for more must fail loudly.
    a = activations(1, 6, 2, 2, dtype=dtype).requires_grad_()
    (g,) = torch.autograd.grad((LocalResponseNorm()(a) ** 2).sum(), a, create_graph=True)
    with pytest.raises(RuntimeError, match=refusal):
        g.sum().backward()


def test_window_never_reads_outside_its_input() -> None:
    # The two-tower net normalises 48 maps per tower: normalising a tower alone must equal
    # the first half of normalising each tower of the 96 maps separately, and must differ
    # from normalising all 96 together at the tower boundary (where the window would cross).
    lrn = LocalResponseNorm()
    both = activations(2, 96, 5, 5)
    first, second = both[:, :48], both[:, 48:]
    alone = lrn(first.clone())
    per_tower = torch.cat([lrn(first), lrn(second)], dim=1)
    torch.testing.assert_close(alone, per_tower[:, :48], rtol=0, atol=0)
    # A view into a larger tensor: nothing next to it in memory leaks in either.
    torch.testing.assert_close(lrn(both[:, :48]), alone, rtol=0, atol=0)
    # Changing the other tower changes nothing in this one.
    poked = both.clone()
    poked[:, 48:] *= 100
    torch.testing.assert_close(lrn(poked[:, :48]), alone, rtol=0, atol=0)
    whole = lrn(both)
    assert not torch.allclose(whole[:, 46:48], alone[:, 46:48])
    torch.testing.assert_close(whole[:, :46], alone[:, :46])


def test_gradient_stays_within_its_input() -> None:
    both = activations(1, 96, 3, 3).requires_grad_()
    out = torch.cat([LocalResponseNorm()(both[:, :48]), LocalResponseNorm()(both[:, 48:])], 1)
    (grad,) = torch.autograd.grad(out[:, :48].sum(), both)
    assert grad[:, 48:].abs().max().item() == 0.0
    assert grad[:, :48].abs().max().item() > 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_low_precision_dtypes(dtype: torch.dtype) -> None:
    a64 = activations(2, 48, 6, 6)
    a = a64.to(dtype).requires_grad_()
    b = LocalResponseNorm()(a)
    assert b.dtype == dtype
    expected = torch.nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0)(a.detach().double())
    tol = {torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 2e-3}[dtype]
    torch.testing.assert_close(b.double(), expected, rtol=tol, atol=tol)
    b.sum().backward()
    assert a.grad is not None and a.grad.dtype == dtype


def test_channels_last_and_non_contiguous_inputs() -> None:
    a = activations(2, 10, 6, 7)
    expected = LocalResponseNorm()(a)
    cl = a.to(memory_format=torch.channels_last).requires_grad_()
    torch.testing.assert_close(LocalResponseNorm()(cl), expected)
    strided = activations(2, 10, 12, 7)[:, :, ::2]
    torch.testing.assert_close(
        LocalResponseNorm()(strided), LocalResponseNorm()(strided.contiguous())
    )
    grad = torch.randn_like(a)
    (g_cl,) = torch.autograd.grad(LocalResponseNorm()(cl), cl, grad)
    a_ref = a.clone().requires_grad_()
    (g_ref,) = torch.autograd.grad(LocalResponseNorm()(a_ref), a_ref, grad)
    torch.testing.assert_close(g_cl, g_ref)


def test_does_not_modify_its_input_and_saves_no_extra_graph() -> None:
    a = activations(2, 8, 4, 4).requires_grad_()
    before = a.detach().clone()
    LocalResponseNorm()(a).sum().backward()
    torch.testing.assert_close(a.detach(), before, rtol=0, atol=0)
    with torch.no_grad():
        assert not LocalResponseNorm()(a).requires_grad


def test_empty_input() -> None:
    assert LocalResponseNorm()(torch.empty(0, 4, 2, 2)).shape == (0, 4, 2, 2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 0},
        {"size": -3},
        {"size": 2.0},
        {"size": True},
        {"alpha": -1e-4},
        {"alpha": float("nan")},
        {"beta": -0.5},
        {"beta": float("inf")},
        {"k": 0.0},
        {"k": -1.0},
        {"k": "2"},
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object]) -> None:
    key = next(iter(kwargs))
    with pytest.raises(Invalid, match=rf"^{key}="):
        LocalResponseNorm(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(Invalid, match=rf"^{key}="):
        local_response_norm(torch.ones(1, 2, 2), **kwargs)  # type: ignore[arg-type]
    # Norm (model.net.norm) refuses with the same check, whichever layer it names.
    with pytest.raises(Invalid, match=rf"^{key}="):
        Norm(**kwargs)  # type: ignore[arg-type]


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        LocalResponseNorm()(torch.ones(4, 5))
    with pytest.raises(ValueError, match="floating-point"):
        LocalResponseNorm()(torch.ones(1, 4, 2, 2, dtype=torch.int64))


# ----------------------------------------------------------------- the compiled CPU kernel

compiled = pytest.mark.skipif(not lrn_cpu.available(), reason="no C compiler: the plain path")


def printed_formula(
    a: torch.Tensor, size: int, alpha: float, beta: float, k: float
) -> torch.Tensor:
    """The printed formula in float64 torch ops, channel by channel: autograd differentiates
    it, independently of either hand-derived backward."""
    channels = a.shape[1]
    out = []
    for c in range(channels):
        lo, hi = max(0, c - size // 2), min(channels - 1, c + (size - 1) // 2)
        total = (a[:, lo : hi + 1] ** 2).sum(1)
        out.append(a[:, c] / (k + alpha * total) ** beta)
    return torch.stack(out, 1)


@compiled
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize(("size", "beta"), [(5, 0.75), (4, 0.6), (3, 1.0), (1, 0.5), (7, 0.75)])
@pytest.mark.parametrize("shape", [(3, 48, 13, 11), (2, 128, 9, 9), (2, 7, 70), (1, 3, 5, 5)])
def test_the_compiled_kernel_computes_the_printed_formula_and_its_gradient(
    shape: tuple[int, ...], size: int, beta: float, layout: str
) -> None:
    # Blocks of 64 positions: 143 and 70 positions end in a part block; 3 channels are fewer
    # than the window; 128 channels are conv2's.
    a64 = activations(*shape).requires_grad_()
    a = a64.detach().float()
    if layout == "channels_last" and a.dim() == 4:
        a = a.contiguous(memory_format=torch.channels_last)
    a.requires_grad_()
    out = lrn_cpu.lrn_forward(a, size, 1e-4, beta, 2.0)
    expected = printed_formula(a64, size, 1e-4, beta, 2.0)
    torch.testing.assert_close(out.double(), expected.detach(), rtol=2e-6, atol=1e-6)
    grad = torch.randn(shape, dtype=torch.float64)
    (got,) = torch.autograd.grad(out, a, grad.float())
    (want,) = torch.autograd.grad(expected, a64, grad)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


@compiled
def test_the_layer_takes_the_compiled_kernel_on_a_cpu_in_float32_and_bfloat16() -> None:
    a = activations(2, 48, 7, 7, dtype=torch.float32).requires_grad_()
    assert "lrn_forward" in type(LocalResponseNorm()(a).grad_fn).__name__
    # bfloat16 is read and written as such and computed in float32: the float32 result
    # rounded to bfloat16 (round to nearest even, as torch rounds), bit for bit.
    b = a.detach().bfloat16()
    assert torch.equal(LocalResponseNorm()(b), LocalResponseNorm()(b.float()).bfloat16())


@compiled
def test_the_kernels_result_does_not_depend_on_the_threads() -> None:
    a = activations(4, 48, 20, 20, dtype=torch.float32).requires_grad_()
    grad = torch.randn_like(a)
    results = []
    before = torch.get_num_threads()
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            out = local_response_norm(a)
            results.append((out, *torch.autograd.grad(out, a, grad)))
    finally:
        torch.set_num_threads(before)
    for out, got in results[1:]:
        assert torch.equal(out, results[0][0]) and torch.equal(got, results[0][1])


def test_without_the_kernel_the_plain_path_gives_the_same(tmp_path: Path) -> None:
    # LIT_ALEXNET_LRN=torch stands for a machine without a C compiler.
    code = (
        "import torch; from lit_alexnet.nn import lrn_cpu; "
        "from lit_alexnet.nn.lrn import local_response_norm as f; "
        "a = (torch.randn(2, 48, 9, 9, generator=torch.Generator().manual_seed(0)) * 40).relu(); "
        "assert not lrn_cpu.available(); import sys; torch.save(f(a), sys.argv[1])"
    )
    env = {**os.environ, lrn_cpu.ENV_SWITCH: "torch"}
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "plain.pt")], check=True, env=env, timeout=120
    )
    a = (torch.randn(2, 48, 9, 9, generator=torch.Generator().manual_seed(0)) * 40).relu()
    torch.testing.assert_close(torch.load(tmp_path / "plain.pt"), local_response_norm(a))
