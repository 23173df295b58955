"""Benchmark for a training step of the paper's AlexNet against torchvision's alexnet.

One training step is forward, cross-entropy, backward and an SGD update (momentum 0.9,
weight decay 5e-4, as in section 5). Three nets see the same batch in one run, timed
interleaved after warm-up (A B C A B C ...), so drifts in clock speed or machine load hit
all of them alike:

- ``lit_alexnet``: :class:`lit_alexnet.nn.alexnet.AlexNet` with its own fast LRN;
- ``lit_alexnet+torch_lrn``: the same net with every :class:`LocalResponseNorm` replaced by
  ``torch.nn.LocalResponseNorm(size, alpha * size, beta, k)`` (the same function), to show
  what the hand-written LRN gains;
- ``torchvision``: ``torchvision.models.alexnet()`` (the single-tower net, no LRN).

On a GPU (``device="cuda"``) the nets, the batch and the optimizer live there, autocast is
CUDA's, and every timed step is bracketed by ``torch.cuda.synchronize()``: kernels run
asynchronously, so without the waits the clock would time their launch, not their work.

Timings are only as good as the machine is quiet. When other processes keep the cores busy,
every multi-threaded op waits at its barrier for a descheduled thread (milliseconds each),
which penalises the two-tower net for having more, smaller ops; ``threads=1`` then gives
the fairer comparison, and the report says when the load average suggests this.
"""

from __future__ import annotations

import copy
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["format_model_results", "machine_description", "run_model_benchmark"]

PAPER = "lit_alexnet"
PAPER_TORCH_LRN = "lit_alexnet+torch_lrn"
TORCHVISION = "torchvision"
NUM_CLASSES = 1000
IMAGE_SIZE = 224


def machine_description() -> dict[str, Any]:
    """CPU model, core counts, torch version and intra-op threads of this process."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass  # not Linux: keep platform's answer
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not available on macOS/Windows
        usable = os.cpu_count() or 0
    try:
        # Other work on the machine skews CPU timings; the load average records it.
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = float("nan")
    from lit_alexnet.precision import machine_report

    report = machine_report()
    return {
        "cpu": cpu,
        # What bf16 speed and oneDNN's kernels depend on; ATEN_CPU_CAPABILITY and
        # ONEDNN_MAX_CPU_ISA can hold a machine to less than its CPU has.
        "cpu_kernels": report.describe_cpu(),
        "native_bf16": report.cpu_native_bf16,
        "logical_cores": os.cpu_count() or 0,
        "usable_cores": usable,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average_1min": load,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def swap_in_torch_lrn(model: nn.Module) -> int:
    """Replace every lit_alexnet LocalResponseNorm in ``model`` with torch's equivalent.

    torch divides alpha by the window size, so the replacement gets ``alpha * size``.
    Returns how many modules were replaced.
    """
    from lit_alexnet.nn.lrn import LocalResponseNorm

    swaps: list[tuple[nn.Module, str, LocalResponseNorm]] = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, LocalResponseNorm)
    ]
    for parent, name, lrn in swaps:
        setattr(parent, name, nn.LocalResponseNorm(lrn.size, lrn.alpha * lrn.size, lrn.beta, lrn.k))
    return len(swaps)


def _build_models() -> dict[str, nn.Module]:
    import torchvision

    from lit_alexnet.nn.alexnet import AlexNet

    paper = AlexNet(num_classes=NUM_CLASSES)
    paper_torch_lrn = copy.deepcopy(paper)
    swap_in_torch_lrn(paper_torch_lrn)
    return {
        PAPER: paper,
        PAPER_TORCH_LRN: paper_torch_lrn,
        TORCHVISION: torchvision.models.alexnet(num_classes=NUM_CLASSES),
    }


OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("32", "bf16")


def _train_step(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    optimizer_name: str,
    precision: str,
    device_type: str = "cpu",
) -> Callable[[], None]:
    optimizer: torch.optim.Optimizer
    if optimizer_name == "adamw":  # the quickstart's: fused AdamW
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=5e-4, fused=True)
    else:  # section 5's
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()

    return step


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
    """Time training steps of the three nets on one batch, interleaved.

    Args:
        batch_size: images per step (3x224x224, 1000 classes).
        steps: timed steps per net, taken in turn A B C A B C ...
        warmup: untimed steps per net first (allocator, oneDNN kernel selection).
        threads: ``torch.set_num_threads`` for the run; ``None`` keeps torch's default.
        precision: ``"32"`` or ``"bf16"`` (autocast, as ``trainer.precision=bf16-mixed``).
        channels_last: feed NHWC batches, as the quickstart's DALI pipeline does.
        optimizer: ``"sgd"`` (section 5) or ``"adamw"`` (the quickstart's fused AdamW).
        device: ``"cpu"`` or a CUDA device (``"cuda"``, ``"cuda:1"``) for the nets and batch.

    Returns:
        ``{"machine": ..., "device", "gpu" (its name, or None), "batch_size", "steps",
        "warmup", "models": {name: {"ms_median", "ms_min", "ms_all", "images_per_s"}},
        "ratio", "ratio_torch_lrn", "lrn_speedup"}``; ``ratio`` is the lit_alexnet step time
        over torchvision's.
    """
    if batch_size < 1 or steps < 1 or warmup < 0:
        raise ValueError(
            f"need batch_size >= 1, steps >= 1, warmup >= 0; got {batch_size}, {steps}, {warmup}"
        )
    if precision not in PRECISIONS or optimizer not in OPTIMIZERS:
        raise ValueError(
            f"precision={precision!r}, optimizer={optimizer!r}: choose from {PRECISIONS}, "
            f"{OPTIMIZERS}"
        )
    where = torch.device(device)
    if where.type == "cuda" and where.index is None:
        where = torch.device("cuda", torch.cuda.current_device())
    cuda = where.type == "cuda"

    def clock() -> float:
        if cuda:  # kernels are queued: wait for them, so the clock times the work itself
            torch.cuda.synchronize(where)
        return time.perf_counter()

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        load_before = machine_description()["load_average_1min"]
        torch.manual_seed(0)
        images = torch.randn(batch_size, 3, IMAGE_SIZE, IMAGE_SIZE).to(where)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = torch.randint(0, NUM_CLASSES, (batch_size,)).to(where)
        models = _build_models()
        step_fns = {}
        for name, model in models.items():
            model.to(where).train()  # dropout on, as in training
            step_fns[name] = _train_step(model, images, labels, optimizer, precision, where.type)
        for _ in range(warmup):
            for step in step_fns.values():
                step()
        times: dict[str, list[float]] = {name: [] for name in step_fns}
        for _ in range(steps):
            for name, step in step_fns.items():
                start = clock()
                step()
                times[name].append((clock() - start) * 1e3)
        machine = machine_description()
        machine["load_average_1min_before"] = load_before
    finally:
        torch.set_num_threads(previous_threads)

    figures: dict[str, dict[str, Any]] = {
        name: {
            "ms_median": statistics.median(ms),
            "ms_min": min(ms),
            "ms_all": ms,
            "images_per_s": batch_size / (statistics.median(ms) / 1e3),
        }
        for name, ms in times.items()
    }
    reference = figures[TORCHVISION]["ms_median"]
    return {
        "machine": machine,
        "device": str(where),
        "gpu": torch.cuda.get_device_name(where) if cuda else None,
        "batch_size": batch_size,
        "steps": steps,
        "warmup": warmup,
        "precision": precision,
        "channels_last": channels_last,
        "optimizer": optimizer,
        "models": figures,
        "ratio": figures[PAPER]["ms_median"] / reference,
        "ratio_torch_lrn": figures[PAPER_TORCH_LRN]["ms_median"] / reference,
        "lrn_speedup": figures[PAPER_TORCH_LRN]["ms_median"] / figures[PAPER]["ms_median"],
    }


def format_model_results(results: dict[str, Any], markdown: bool = False) -> str:
    """A small table of the figures; the last line is the lit_alexnet/torchvision ratio.

    With ``markdown=True`` the machine description is a bullet list and the table a
    markdown table, for writing to a file.
    """
    m = results["machine"]
    load_before = m.get("load_average_1min_before", float("nan"))  # NaN: never warns
    reference = results["models"][TORCHVISION]["ms_median"]
    machine = [
        f"CPU: {m['cpu']} ({m['usable_cores']} usable of {m['logical_cores']} logical cores)",
        f"CPU kernels: {m['cpu_kernels']}; bfloat16 native: {'yes' if m['native_bf16'] else 'no'}",
        f"torch {m['torch']}, {m['threads']} threads, Python {m['python']}; 1-min load average "
        f"{load_before:.2f} before, {m['load_average_1min']:.2f} after",
    ]
    if results.get("gpu"):  # a CUDA run; CPU reports stay as they were
        machine.append(
            f"GPU: {results['gpu']} ({results['device']}): the nets, batch and optimizer on it, "
            "each timed step between torch.cuda.synchronize() calls"
        )
    machine += [
        f"batch {results['batch_size']} x 3x224x224, {NUM_CLASSES} classes; "
        f"median of {results['steps']} interleaved steps after {results['warmup']} warm-up; "
        f"step = forward + cross-entropy + backward + {results['optimizer'].upper()}; "
        f"precision {results['precision']}, "
        f"{'channels-last' if results['channels_last'] else 'NCHW'} batches",
    ]
    header = ("model", "ms/step", "min ms", "images/s", "vs torchvision")
    rows = [
        (
            name,
            f"{fig['ms_median']:.1f}",
            f"{fig['ms_min']:.1f}",
            f"{fig['images_per_s']:.1f}",
            f"{fig['ms_median'] / reference:.2f}",
        )
        for name, fig in results["models"].items()
    ]
    # The load average before the run counts the other processes (ours joins it after).
    cpu_run = not results.get("gpu")
    if cpu_run and m["threads"] > 1 and load_before + m["threads"] > m["usable_cores"] + 0.5:
        # Each multi-threaded op waits at its barrier for a thread the OS has given to
        # another process: on a busy 2-core machine a 0.02 ms op then takes ~10 ms, so the
        # net with more (smaller) ops looks slower than it is.
        machine.append(
            f"warning: load average {load_before:.1f} before the run, {m['threads']} threads on "
            f"{m['usable_cores']} cores: other processes compete for the cores, which "
            "inflates multi-threaded step times; compare with --threads 1"
        )
    summary = [
        f"fast LRN vs torch.nn.LocalResponseNorm: {results['lrn_speedup']:.2f}x faster step",
        f"alexnet/torchvision step-time ratio: {results['ratio']:.2f}",
    ]
    if markdown:
        lines = ["# lit_alexnet model benchmark", ""]
        lines += [f"- {line}" for line in machine] + [""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join([*lines, "", *summary]) + "\n"
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    table = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(r)
        )
        for r in [header, *rows]
    ]
    return "\n".join([*machine, "", *table, "", *summary])
