"""The fast path of :func:`lit_alexnet.nn.lrn.local_response_norm` on a CPU: one pass over
memory each way.

``lrn_kernel.c`` (beside this file) computes the forward and the hand-derived backward of
section 3.3's formula a block of positions at a time, all channels of the block in cache, so
forward reads ``a`` and writes ``b`` and backward reads ``a`` and ``g`` and writes the
gradient: the passes of a ReLU, plus arithmetic. bfloat16 is read and written as such and
computed in float32.

It is compiled once per machine and source with the system's C compiler (``cc``, 0.35 s on
a 2-core EPYC; ``-march=native``, so the file is named for this CPU) into torch's extension folder
(``$TORCH_EXTENSIONS_DIR``, else ``~/.cache/torch_extensions``), and called through ctypes
(which lets go of the GIL) on torch's number of threads, through OpenMP on torch's own
OpenMP runtime (a second pool would spin against torch's for the same cores). Forward and
backward are ``torch.library`` custom ops, so ``torch.compile`` takes them whole. Where there
is no compiler, or ``LIT_ALEXNET_LRN=torch`` is set, :func:`available` is ``False`` and the
plain torch implementation runs instead.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

SOURCE = Path(__file__).with_name("lrn_kernel.c")
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared")
# Threads through OpenMP where the compiler has it: the .so then needs libgomp.so.1, which is
# the one torch has loaded (its own copy, by soname), so the kernel runs on torch's pool.
OPENMP = "-fopenmp"
ENV_SWITCH = "LIT_ALEXNET_LRN"  # "torch": never the compiled kernel
_FUNCTIONS = {torch.float32: "lrn_f32_all", torch.bfloat16: "lrn_bf16_all"}
BLOCK = 64  # positions per unit of work: lrn_kernel.c's BLOCK

_library: ctypes.CDLL | None = None
_tried = False


def _build_dir() -> Path:
    # torch.utils.cpp_extension's folder for built extensions (importing that module warns on a
    # machine without CUDA, so its rule is followed here).
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    return Path(root) if root else Path.home() / ".cache" / "torch_extensions"


def _compile() -> Path | None:
    """The compiled kernel for this machine, built unless there; ``None`` without a compiler."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not SOURCE.is_file():
        return None
    source = SOURCE.read_bytes()
    key = hashlib.sha256(
        source + " ".join([compiler, *FLAGS, platform.machine(), _cpu_model()]).encode()
    ).hexdigest()[:16]
    target = _build_dir() / "lit_alexnet_lrn" / f"lrn-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    for flags in ((*FLAGS, OPENMP), FLAGS):  # without OpenMP: one thread
        # Built beside the target and renamed: ranks starting together never load half a file.
        fd, partial = tempfile.mkstemp(dir=target.parent, suffix=".so.partial")
        os.close(fd)
        try:
            subprocess.run(
                [compiler, *flags, "-o", partial, str(SOURCE), "-lm"],
                check=True,
                capture_output=True,
                timeout=120,
            )
            os.replace(partial, target)
            return target
        except (OSError, subprocess.SubprocessError):
            Path(partial).unlink(missing_ok=True)
    return None


def _cpu_model() -> str:
    """The CPU's model name and flags (Linux), so that -march=native builds never travel."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    lines = [line for line in text.splitlines() if line.startswith(("model name", "flags"))]
    return "\n".join(lines[:2])


def _load() -> ctypes.CDLL | None:
    global _library, _tried
    if not _tried:
        _tried = True
        path = None if os.environ.get(ENV_SWITCH) == "torch" else _compile()
        if path is not None:
            library = ctypes.CDLL(str(path))
            i64, f64, ptr = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p
            for name in _FUNCTIONS.values():
                function = getattr(library, name)
                function.restype = ctypes.c_int
                function.argtypes = [ptr, ptr, ptr, *[i64] * 5, ctypes.c_int, ctypes.c_int]
                function.argtypes += [f64, f64, f64, i64, ctypes.c_int]
            _library = library
    return _library


def available() -> bool:
    """Whether the compiled kernel is there (compiling it on first use)."""
    return _load() is not None


def _layout(a: Tensor) -> tuple[int, int, int, int, int] | None:
    """``(C, P, sn, sc, sp)``: ``a``'s channels, positions and strides seen as (N, C, P),
    where the kernel can read it (NCHW, or channels-last); else ``None``."""
    n, c, positions = a.shape[0], a.shape[1], math.prod(a.shape[2:])
    try:
        if a.is_contiguous():
            view = a.view(n, c, positions)
        else:  # channels-last: the channels innermost
            view = a.permute(0, *range(2, a.dim()), 1).view(n, positions, c).permute(0, 2, 1)
    except RuntimeError:
        return None
    sn, sc, sp = view.stride()
    if not (sp == 1 or sc == 1):
        return None
    return c, positions, sn, sc, sp


def supports(a: Tensor) -> bool:
    """Whether ``a`` can take the compiled path: a CPU tensor of float32 or bfloat16,
    NCHW or channels-last, and the kernel built."""
    return (
        a.device.type == "cpu"
        and a.dtype in _FUNCTIONS
        and a.dim() >= 3
        and a.numel() > 0
        and _layout(a) is not None
        and available()
    )


def _run(a: Tensor, g: Tensor | None, size: int, alpha: float, beta: float, k: float) -> Tensor:
    """Forward (``g`` None: ``b``) or backward (the gradient) on torch's threads."""
    library = _load()
    layout = _layout(a)
    assert library is not None and layout is not None, "check supports() first"
    out = torch.empty_like(a)  # keeps a's memory format, so a's strides
    if g is not None and g.stride() != a.stride():
        g = torch.empty_like(a).copy_(g)
    c, positions, sn, sc, sp = layout
    units = a.shape[0] * -(-positions // BLOCK)
    threads = max(1, min(torch.get_num_threads(), units))
    function = getattr(library, _FUNCTIONS[a.dtype])
    failed = function(
        a.data_ptr(),
        0 if g is None else g.data_ptr(),
        out.data_ptr(),
        *(c, positions, sn, sc, sp, size // 2, (size - 1) // 2, alpha, beta, k, units, threads),
    )
    if failed:
        raise MemoryError("local_response_norm: the CPU kernel could not allocate its buffers")
    return out


@torch.library.custom_op("lit_alexnet::lrn_forward", mutates_args=(), device_types="cpu")
def lrn_forward(a: Tensor, size: int, alpha: float, beta: float, k: float) -> Tensor:
    """Section 3.3's ``b`` for ``a`` (alpha times the window sum), by the compiled kernel."""
    return _run(a, None, size, alpha, beta, k)


@torch.library.custom_op("lit_alexnet::lrn_backward", mutates_args=(), device_types="cpu")
def lrn_backward(a: Tensor, grad: Tensor, size: int, alpha: float, beta: float, k: float) -> Tensor:
    """The gradient with respect to ``a`` of :func:`lrn_forward`, given ``grad`` of ``b``."""
    return _run(a, grad, size, alpha, beta, k)


@lrn_forward.register_fake
def _(a: Tensor, size: int, alpha: float, beta: float, k: float) -> Tensor:
    return torch.empty_like(a)


@lrn_backward.register_fake
def _(a: Tensor, grad: Tensor, size: int, alpha: float, beta: float, k: float) -> Tensor:
    return torch.empty_like(a)


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    a, size, alpha, beta, k = inputs
    ctx.save_for_backward(a)
    ctx.options = (size, alpha, beta, k)


def _backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None, None, None]:
    (a,) = ctx.saved_tensors
    return lrn_backward(a, grad, *ctx.options), None, None, None, None


lrn_forward.register_autograd(_backward, setup_context=_setup_context)
