"""Benchmark for a training step of the paper's AlexNet against torchvision's alexnet.

A step is forward, cross-entropy, backward and an update by section 5's SGD or the
quickstart's fused AdamW (both from the training config). Three nets see the same batch,
timed in turns (:meth:`Timer.rounds`) so that drifts in clock or load hit all alike:
``lit_alexnet`` (:class:`~lit_alexnet.nn.alexnet.AlexNet` with its fast LRN),
``lit_alexnet+torch_lrn`` (the same net with ``torch.nn.LocalResponseNorm``, the same
function: what the hand-written LRN gains) and ``torchvision`` (single tower, no LRN).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torchvision
from hydra.utils import instantiate
from torch import Tensor, nn

from lit_alexnet.bench import report
from lit_alexnet.bench.timing import Timer
from lit_alexnet.job import compose_train_config
from lit_alexnet.nn.alexnet import AlexNet
from lit_alexnet.nn.lrn import LocalResponseNorm

PAPER = "lit_alexnet"
PAPER_TORCH_LRN = "lit_alexnet+torch_lrn"
TORCHVISION = "torchvision"
NUM_CLASSES = 1000
IMAGE_SIZE = 224
# --optimizer: the training config's overrides for each; adamw is the quickstart's own.
OPTIMIZERS: dict[str, list[str]] = {"sgd": ["optimizer=sgd"], "adamw": []}

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
# The maps each tower's two LRNs normalise (section 3.3, after conv1 and conv2).
LRN_MAPS = {"48x55x55": (48, 55, 55), "128x27x27": (128, 27, 27)}


def _build_models() -> dict[str, nn.Module]:
    """The paper's net, the same with ``torch.nn.LocalResponseNorm`` in place of each of its
    LRNs (with ``alpha * size``: torch divides alpha by the window) and torchvision's net."""
    paper = AlexNet(num_classes=NUM_CLASSES)
    torch_lrn = copy.deepcopy(paper)
    for parent in list(torch_lrn.modules()):
        for name, lrn in list(parent.named_children()):
            if isinstance(lrn, LocalResponseNorm):
                swap = nn.LocalResponseNorm(lrn.size, lrn.alpha * lrn.size, lrn.beta, lrn.k)
                setattr(parent, name, swap)
    return {
        PAPER: paper,
        PAPER_TORCH_LRN: torch_lrn,
        TORCHVISION: torchvision.models.alexnet(num_classes=NUM_CLASSES),
    }


def random_batch(
    batch_size: int, device: torch.device, channels_last: bool = False
) -> tuple[Tensor, Tensor]:
    """Images (``batch_size`` x 3x224x224) and labels of :data:`NUM_CLASSES` classes on
    ``device``, the same on every call."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (batch_size,), generator=generator)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images.to(device), labels.to(device)


def _train_step(
    model: nn.Module, batch: tuple[Tensor, Tensor], factory: OptimizerFactory, precision: str
) -> Callable[[], int]:
    """One training step of ``model`` on ``batch``, as a :meth:`Timer.rounds` job."""
    images, labels = batch
    optimizer = factory(model.parameters())
    loss_fn = nn.CrossEntropyLoss()

    def step() -> int:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(images.device.type, torch.bfloat16, enabled=precision == "bf16"):
            loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        return len(labels)

    return step


def lrn_relu_ratios(
    batch_size: int,
    steps: int,
    warmup: int,
    precision: str = "32",
    channels_last: bool = False,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """LRN forward plus backward over a ReLU's forward plus backward on the same tensor (a
    memory-bound yardstick), for each tower's map size in :data:`LRN_MAPS`: the dtype a step
    in ``precision`` gives the LRN (bf16 under bf16 autocast) and the batch's layout."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    lrn, ratios = LocalResponseNorm(), {}
    for name, shape in LRN_MAPS.items():
        generator = torch.Generator().manual_seed(0)
        maps = (torch.randn(batch_size, *shape, generator=generator) * 40).relu()
        if channels_last:
            maps = maps.contiguous(memory_format=torch.channels_last)
        x = maps.to(device, dtype).requires_grad_()
        grad = torch.randn_like(x)

        def pass_of(
            op: Callable[[Tensor], Tensor], x: Tensor = x, grad: Tensor = grad
        ) -> Callable[[], int]:
            def run() -> int:
                op(x).backward(grad)
                x.grad = None
                return batch_size

            return run

        timers = Timer.rounds({"lrn": pass_of(lrn), "relu": pass_of(torch.relu)}, steps, warmup)
        ratios[name] = timers["lrn"].median_s / timers["relu"].median_s
    return ratios


def run_model_benchmark(
    batch_size: int = 16,
    steps: int = 10,
    warmup: int = 3,
    threads: int | None = None,
    precision: str = "32",
    channels_last: bool = False,
    optimizer: str = "sgd",
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Time ``steps`` training steps of each net, after ``warmup`` untimed, on one batch of
    ``batch_size`` 3x224x224 images (NCHW or ``channels_last``) on ``device``, in
    ``precision`` ("32" or "bf16" autocast), with ``optimizer`` ("sgd" or "adamw") and torch
    on ``threads`` (None: its default). Returns the settings, the machine, the GPU's name
    (or None), ``"models"`` (``{name: {"ms_median", "ms_min", "images_per_s"}}``),
    ``"ratio"`` (our step time over torchvision's), ``"lrn_speedup"`` and ``"lrn_relu"``
    (:func:`lrn_relu_ratios`)."""
    if min(batch_size, steps) < 1 or warmup < 0:  # precision, optimizer: the CLI's choices
        raise ValueError(
            f"need batch_size, steps >= 1 and warmup >= 0; got {batch_size}, {steps}, {warmup}"
        )
    where = torch.device(device)
    if where.type == "cuda" and where.index is None:
        where = torch.device("cuda", torch.cuda.current_device())
    with report.torch_threads(threads):
        load_before = report.load_average()
        torch.manual_seed(0)
        batch = random_batch(batch_size, where, channels_last)
        # Built from the training config, as training builds it.
        factory = instantiate(compose_train_config(OPTIMIZERS[optimizer]).optimizer)
        jobs = {  # train(): dropout on, as in training
            name: _train_step(model.to(where).train(), batch, factory, precision)
            for name, model in _build_models().items()
        }
        timers = Timer.rounds(jobs, steps, warmup)
        lrn_relu = lrn_relu_ratios(batch_size, 2 * steps, warmup, precision, channels_last, where)
        machine = report.machine_description(load_before)
    figures = {
        name: {"ms_median": t.median_s * 1e3, "ms_min": t.min_s * 1e3, "images_per_s": t.per_s}
        for name, t in timers.items()
    }
    ms = {name: fig["ms_median"] for name, fig in figures.items()}
    return {
        "machine": machine,
        "device": str(where),
        "gpu": torch.cuda.get_device_name(where) if where.type == "cuda" else None,
        "batch_size": batch_size,
        "steps": steps,
        "warmup": warmup,
        "precision": precision,
        "channels_last": channels_last,
        "optimizer": optimizer,
        "models": figures,
        "ratio": ms[PAPER] / ms[TORCHVISION],
        "lrn_speedup": ms[PAPER_TORCH_LRN] / ms[PAPER],
        "lrn_relu": lrn_relu,
    }


def _machine_lines(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    lines = report.machine_lines(m, f"{m['threads']} threads")
    if results["gpu"]:  # a CUDA run; CPU reports stay as they were
        lines.append(
            f"GPU: {results['gpu']} ({results['device']}): the nets, batch and optimizer on it, "
            "each timed step between torch.cuda.synchronize() calls"
        )
    lines.append(
        f"batch {results['batch_size']} x 3x224x224, {NUM_CLASSES} classes; "
        f"median of {results['steps']} interleaved steps after {results['warmup']} warm-up; "
        f"step = forward + cross-entropy + backward + {results['optimizer'].upper()}; "
        f"precision {results['precision']}, "
        f"{'channels-last' if results['channels_last'] else 'NCHW'} batches",
    )
    # The load average before the run counts the other processes (ours joins it after); NaN
    # never warns. Each multi-threaded op waits at its barrier for a thread the OS has given
    # to another process: on a busy 2-core machine a 0.02 ms op then takes ~10 ms, so the net
    # with more (smaller) ops looks slower than it is.
    load_before = m.get("load_average_1min_before", float("nan"))
    busy = load_before + m["threads"] > m["usable_cores"] + 0.5
    if busy and m["threads"] > 1 and not results["gpu"]:
        lines.append(
            f"warning: load average {load_before:.1f} before the run, {m['threads']} threads on "
            f"{m['usable_cores']} cores: other processes compete for the cores, which "
            "inflates multi-threaded step times; compare with --threads 1"
        )
    return lines


def format_model_results(
    results: dict[str, Any], markdown: bool = False, command: str | None = None
) -> str:
    """The machine and settings, a table of the nets; the last line is the
    lit_alexnet/torchvision ratio. ``markdown=True``: a file, with ``command`` near the top."""
    reference = results["models"][TORCHVISION]["ms_median"]
    header = ("model", "ms/step", "min ms", "images/s", "vs torchvision")
    rows = [
        (
            name,
            *(f"{fig[key]:.1f}" for key in ("ms_median", "ms_min", "images_per_s")),
            f"{fig['ms_median'] / reference:.2f}",
        )
        for name, fig in results["models"].items()
    ]
    maps = ", ".join(f"{ratio:.1f} ({name} maps)" for name, ratio in results["lrn_relu"].items())
    summary = [
        f"LRN fwd+bwd / ReLU fwd+bwd: {maps}",
        f"fast LRN vs torch.nn.LocalResponseNorm: {results['lrn_speedup']:.2f}x faster step",
        f"alexnet/torchvision step-time ratio: {results['ratio']:.2f}",
    ]
    lines, body = _machine_lines(results), [*report.table(header, rows, markdown), "", *summary]
    if markdown:
        return report.document("lit_alexnet model benchmark", command, lines, body)
    return "\n".join([*lines, "", *body])
