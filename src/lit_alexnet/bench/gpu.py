"""``python -m lit_alexnet.bench gpu``: every GPU path of the package, run and measured in one go.

The parts, in order, take under 10 minutes on one H100 (``nox -s gpu`` runs the gpu-marked
tests first): our training step against torchvision's in fp32 and in bf16 channels-last; DALI
mixed decoding of the photo set; an end-to-end fit of the quickstart's model through DALI
against the model-only bf16 step; on one batch kept on the GPU, ``model.compile=true`` against
eager and the two-device strategy (both towers on one GPU) against the plain model. Each part
prints its figures or why it did not run (``PART: no GPU: skipped``); one that raises is an
error, and the others still run.
"""

from __future__ import annotations

import gc
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import Strategy
from torch.utils.data import DataLoader

from lit_alexnet.bench import data, report
from lit_alexnet.bench.data import train_split
from lit_alexnet.bench.model import (
    NUM_CLASSES,
    PAPER,
    TORCHVISION,
    random_batch,
    run_model_benchmark,
)
from lit_alexnet.bench.photos import ensure_photo_dataset
from lit_alexnet.bench.timing import Timer
from lit_alexnet.data.cache import default_cache_dir
from lit_alexnet.data.choices import BATCH_SIZE
from lit_alexnet.data.dali import DaliImageDataModule, dali_available
from lit_alexnet.data.folders import scan_split
from lit_alexnet.data.parallel import usable_cpus
from lit_alexnet.job import quickstart
from lit_alexnet.strategies import TwoDeviceModelParallelStrategy

STEP_FP32 = "model step fp32"
STEP_BF16 = "model step bf16 channels-last"
DALI = "DALI mixed decoding"
END_TO_END = "end-to-end fit"
COMPILE = "model.compile"
TWO_DEVICE = "two-device strategy"
PARTS = (STEP_FP32, STEP_BF16, DALI, END_TO_END, COMPILE, TWO_DEVICE)
NO_GPU = "no GPU: skipped"
# The targets (on an H100): the data path is never the bottleneck, and our two-tower
# net with its LRN costs no more than 10% over torchvision's single-tower net of the same work.
END_TO_END_TARGET = 0.80
STEP_RATIO_TARGET = 1.10
FIT_PRECISION = "bf16-mixed"  # the fast configuration, where a slow data path shows most


@dataclass(frozen=True)
class GpuBenchSettings:
    """What ``bench gpu`` runs; the defaults fit in under 10 minutes on one H100."""

    batch_size: int = BATCH_SIZE  # the data modules' (section 5's)
    images: int = 1024  # photo-like 500x375 JPEGs in the photo set
    model_steps: int = 20  # timed steps per net in each model-step part
    model_warmup: int = 5
    fit_steps: int = 300  # batches of the end-to-end fit, warm-up included
    fit_warmup: int = 50  # DALI's first epochs and cuDNN's first calls are not timed
    batch_steps: int = 120  # batches of each fit on one resident batch, warm-up included
    batch_warmup: int = 20  # enough for torch.compile to finish compiling
    data_repeats: int = 3  # timed epochs per loader in the DALI part
    cache_dir: Path | None = None  # where the photo set lives (default: the package's cache)

    def __post_init__(self) -> None:
        # The four that the command line sets; the others are fixed.
        counts = (self.batch_size, self.images, self.model_steps)
        if min(counts) < 1 or self.fit_steps <= self.fit_warmup:
            raise ValueError(
                f"need batch_size, images, model_steps >= 1 and fit_steps > fit_warmup "
                f"({self.fit_warmup}); got {self.batch_size}, {self.images}, {self.model_steps}, "
                f"{self.fit_steps}"
            )


# ``bench gpu --quick``: every part, on fewer steps and photos, in about 3 minutes (the GPU
# check's cap, ``bench check``); compile's warm-up still has the batches to finish compiling.
QUICK = dict(
    images=256,
    model_steps=10,
    model_warmup=3,
    fit_steps=100,
    fit_warmup=30,
    batch_steps=60,
    batch_warmup=20,
    data_repeats=1,
)


@dataclass
class PartResult:
    """One part's outcome: ``status`` ok, skipped or error; ``summary`` in one line."""

    name: str
    status: str
    summary: str
    seconds: float = 0.0


@dataclass(frozen=True)
class Target:
    """A measured ratio and the issue's bound on it (``at_least``: a lower bound)."""

    name: str
    value: float
    bound: float
    at_least: bool

    @property
    def line(self) -> str:
        """e.g. ``ours/torchvision step-time ratio, fp32: 1.04 (target <= 1.10): met``, judged
        on the two decimals printed (never ``1.10 (target <= 1.10): MISSED``)."""
        value = round(self.value, 2)
        met = value >= self.bound if self.at_least else value <= self.bound
        sign, verdict = (">=" if self.at_least else "<="), ("met" if met else "MISSED")
        return f"{self.name}: {self.value:.2f} (target {sign} {self.bound:.2f}): {verdict}"


class ImagesPerSecond(Callback):
    """Images per second of a fit's batches after its first ``warmup`` (at least one) up to
    the last (``trainer.max_steps``: the fits run as many epochs as it takes), and the
    seconds of the warm-up: two runs of one :class:`Timer`."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.batches, self.images, self.timer = warmup, 0, 0, Timer()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.timer.start()

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, out: Any, batch: Any, idx: int
    ) -> None:
        self.batches += 1
        if self.batches == self.warmup:
            self.timer.stop()
            self.timer.start()
        elif self.batches > self.warmup:
            self.images += len(batch[0])  # (images, labels)
            if self.batches == trainer.max_steps:
                self.timer.stop(self.images)

    @property
    def images_per_s(self) -> float:
        if not self.images:
            raise RuntimeError(
                f"the fit ended after {self.batches} batches, within its {self.warmup} "
                "warm-up batches: nothing was timed"
            )
        return self.timer.rates[1]

    @property
    def warmup_s(self) -> float:
        return self.timer.seconds[0]


def fit_images_per_second(
    model: L.LightningModule,
    *,
    steps: int,
    warmup: int,
    device: torch.device,
    precision: str = FIT_PRECISION,
    datamodule: L.LightningDataModule | None = None,
    batches: Sequence[Any] | None = None,
    strategy: Strategy | None = None,
) -> ImagesPerSecond:
    """Fit ``model`` for ``steps`` batches (from ``datamodule`` or ``batches``) on ``device``,
    or ``strategy``'s devices, with no validation, logger or checkpoint; its timer."""
    timer = ImagesPerSecond(warmup)
    where: dict[str, Any] = {"accelerator": "cpu", "devices": 1}
    if strategy is not None:
        where = {"strategy": strategy}
    elif device.type == "cuda":
        where = {"accelerator": "gpu", "devices": [device.index or 0]}
    with tempfile.TemporaryDirectory(prefix="lit_alexnet_bench_") as root:
        trainer = L.Trainer(
            **where,
            precision=precision,  # type: ignore[arg-type]
            max_steps=steps,
            max_epochs=-1,  # the steps end the fit, however many epochs they take
            limit_val_batches=0,  # no validation: its loader is never built
            num_sanity_val_steps=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=root,
            callbacks=[timer],
        )
        loader: DataLoader[Any] | None = None
        if batches is not None:  # a list is a dataset; batch_size=None: each item is a batch
            loader = DataLoader(batches, batch_size=None)  # type: ignore[arg-type]
        trainer.fit(model, train_dataloaders=loader, datamodule=datamodule)
    return timer


def _quickstart(overrides: Sequence[str] = ()) -> L.LightningModule:
    """The quickstart's LitAlexNet (``conf/train.yaml``) with the model-step benchmark's
    :data:`~lit_alexnet.bench.model.NUM_CLASSES` outputs, so both do the same work."""
    torch.manual_seed(0)
    return quickstart(NUM_CLASSES, overrides)


def end_to_end_fit(
    photos: Path, *, batch_size: int, steps: int, warmup: int, device: torch.device, **fit: Any
) -> ImagesPerSecond:
    """Fit the quickstart's model on the photo set's training split through
    :class:`~lit_alexnet.DaliImageDataModule` (channels-last, decoding on the GPU where there
    is one); its timer. ``fit``: more of :func:`fit_images_per_second`'s arguments."""
    data = train_split(
        DaliImageDataModule,
        photos,
        scan_split(photos, "train"),  # the benchmark generated them: no checks
        batch_size=batch_size,
        device="gpu" if device.type == "cuda" else "cpu",
        channels_last=True,
        pipeline_seed=0,
    )
    return fit_images_per_second(
        _quickstart(), steps=steps, warmup=warmup, device=device, datamodule=data, **fit
    )


# ----------------------------------------------------------------------------- parts
# Each takes the settings, the GPU and the figures measured so far (which it adds to), and
# returns its summary line.


def _step_part(
    name: str, s: GpuBenchSettings, device: torch.device, figures: dict[str, Any]
) -> str:
    bf16 = name == STEP_BF16
    figures[name] = results = run_model_benchmark(
        s.batch_size,
        s.model_steps,
        s.model_warmup,
        precision="bf16" if bf16 else "32",
        channels_last=bf16,
        optimizer="adamw",  # the quickstart's
        device=device,
    )
    ours, theirs = results["models"][PAPER], results["models"][TORCHVISION]
    return (
        f"ours {ours['images_per_s']:.0f} images/s ({ours['ms_median']:.1f} ms/step), "
        f"torchvision {theirs['images_per_s']:.0f} images/s ({theirs['ms_median']:.1f} ms/step)"
    )


def _dali_part(s: GpuBenchSettings, photos: Path, log: Callable[[str], None]) -> str:
    """The photos as generated (500x375) and as ``data.prepare`` writes them (256x256)."""
    prepared = data.ensure_prepared(photos, s.cache_dir or default_cache_dir())
    results = data.run_data_benchmark(
        photos,
        kind="photo",
        images=s.images,
        batch_size=s.batch_size,
        repeats=s.data_repeats,
        workers=[usable_cpus()],  # one DataLoader configuration, for scale
        device="gpu",
        prepared=prepared,
        log=log,
    )
    rows, fastest = results["rows"], results["fastest"]
    dali, loader = rows[fastest[data.DALI, data.RAW]], rows[fastest[data.TORCHVISION, data.RAW]]
    small = rows[fastest[data.DALI, data.PREPARED]]
    return (
        f"500x375 photos {dali['images_per_s']:.0f} images/s ({dali['config']}), prepared "
        f"256x256 {small['images_per_s']:.0f} images/s; torchvision's DataLoader "
        f"({loader['config']}) on the photos {loader['images_per_s']:.0f} images/s (DALI/"
        f"DataLoader {results['ratio']:.2f}x)"
    )


def _end_to_end_part(
    s: GpuBenchSettings, photos: Path, device: torch.device, figures: dict[str, Any]
) -> str:
    fit = end_to_end_fit(
        photos, batch_size=s.batch_size, steps=s.fit_steps, warmup=s.fit_warmup, device=device
    )
    rate = figures[END_TO_END] = fit.images_per_s
    if STEP_BF16 not in figures:
        return f"{rate:.0f} images/s (no model-only figure: {STEP_BF16} did not run)"
    model_only = figures[STEP_BF16]["models"][PAPER]["images_per_s"]
    return f"{rate:.0f} images/s against {model_only:.0f} model-only ({STEP_BF16})"


def _against_plain(
    name: str, s: GpuBenchSettings, device: torch.device, figures: dict[str, Any]
) -> str:
    """``model.compile=true`` (:data:`COMPILE`) or both towers on the GPU through the
    two-device strategy (:data:`TWO_DEVICE`) against the plain eager model, in fits on one
    batch kept on the GPU: the model and the training loop alone."""

    def fit(overrides: Sequence[str] = (), strategy: Strategy | None = None) -> ImagesPerSecond:
        batch = random_batch(s.batch_size, device, channels_last=True)
        return fit_images_per_second(
            _quickstart(overrides),
            steps=s.batch_steps,
            warmup=s.batch_warmup,
            device=device,
            batches=[batch] * s.batch_steps,
            strategy=strategy,
        )

    if "plain" not in figures:  # made once, for both parts
        figures["plain"] = fit()
    plain = figures["plain"]
    if name == COMPILE:
        label, plain_label, changed = "compiled", "eager", fit(["model.compile=true"])
    else:
        label, plain_label = f"towers on [{device}, {device}]", "plain"
        changed = fit(strategy=TwoDeviceModelParallelStrategy([device, device]))
    return (
        f"{label} {changed.images_per_s:.0f} images/s, {plain_label} {plain.images_per_s:.0f} "
        f"images/s: {changed.images_per_s / plain.images_per_s:.2f}x (warm-up of "
        f"{s.batch_warmup} batches {changed.warmup_s:.1f} s, {plain.warmup_s:.1f} s)"
    )


def targets(figures: dict[str, Any]) -> list[Target]:
    """The issue's targets that the parts measured: our step time over torchvision's (below 1:
    ours is faster), then end-to-end images per second over model-only."""
    found = []
    for name in (STEP_FP32, STEP_BF16):
        if name in figures:
            ms = {net: fig["ms_median"] for net, fig in figures[name]["models"].items()}
            label = f"ours/torchvision step-time ratio, {name.removeprefix('model step ')}"
            found.append(Target(label, ms[PAPER] / ms[TORCHVISION], STEP_RATIO_TARGET, False))
    if END_TO_END in figures and STEP_BF16 in figures:
        ratio = figures[END_TO_END] / figures[STEP_BF16]["models"][PAPER]["images_per_s"]
        label = "end-to-end/model-only images-per-second ratio"
        found.append(Target(label, ratio, END_TO_END_TARGET, True))
    return found


def _run_part(name: str, run: Callable[[], str], say: Callable[[str], None]) -> PartResult:
    """``run()``, timed; an exception becomes an error result (its traceback to ``say``)."""
    say(f"{name}: running")
    timer = Timer()
    timer.start()
    try:
        result = PartResult(name, "ok", run())
    except Exception as e:
        say(traceback.format_exc())
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        result = PartResult(name, "error", f"error: {type(e).__name__}: {message}")
    result.seconds = timer.stop()
    say(f"{name}: {result.summary} [{result.seconds:.0f} s]")
    gc.collect()  # what the part left: each part starts with the GPU's memory free
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    return result


def run_gpu_benchmark(
    settings: GpuBenchSettings | None = None, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run every part: without a CUDA GPU every part is skipped, without nvidia-dali the two
    that read the photo set; ``log`` gets progress. Returns the machine, the GPU's name (or
    None), the settings, each part's :class:`PartResult`, the :class:`Target` measured and
    the ``errors``: the parts that raised one."""
    s, say = settings or GpuBenchSettings(), log or (lambda line: None)
    load_before = report.load_average()
    has_gpu, has_dali = torch.cuda.is_available(), dali_available()
    device = torch.device("cuda", 0) if has_gpu else torch.device("cpu")
    figures: dict[str, Any] = {}

    def photos() -> Path:  # generated on first use (once: later calls find it)
        return ensure_photo_dataset(s.cache_dir or default_cache_dir(), s.images)

    runs: dict[str, Callable[[], str]] = {
        STEP_FP32: lambda: _step_part(STEP_FP32, s, device, figures),
        STEP_BF16: lambda: _step_part(STEP_BF16, s, device, figures),
        DALI: lambda: _dali_part(s, photos(), say),
        END_TO_END: lambda: _end_to_end_part(s, photos(), device, figures),
        COMPILE: lambda: _against_plain(COMPILE, s, device, figures),
        TWO_DEVICE: lambda: _against_plain(TWO_DEVICE, s, device, figures),
    }
    parts = []
    for name, run in runs.items():
        if not has_gpu:
            parts.append(PartResult(name, "skipped", NO_GPU))
        elif name in (DALI, END_TO_END) and not has_dali:
            parts.append(PartResult(name, "skipped", "nvidia-dali not installed: skipped"))
        else:
            parts.append(_run_part(name, run, say))
    return {
        "machine": report.machine_description(load_before),
        "gpu": torch.cuda.get_device_name(device) if has_gpu else None,
        "settings": s,
        "parts": parts,
        "targets": targets(figures),
        "errors": [part.name for part in parts if part.status == "error"],
    }


def format_gpu_report(
    results: dict[str, Any], markdown: bool = False, command: str | None = None
) -> str:
    """The machine, a line per part (``PART: figures`` or ``PART: no GPU: skipped``), the
    targets; ``markdown=True``: a file with ``command``, the parts and their seconds."""
    m, s, parts = results["machine"], results["settings"], results["parts"]
    gpu = f"GPU: {results['gpu']} (CUDA {m['CUDA']}), cuda:0"
    if results["gpu"] is None:
        gpu = (
            "GPU: none (torch.cuda.is_available() is False): every GPU part was skipped and no "
            "GPU figure was measured"
        )
    machine = report.machine_lines(
        m,
        f"torchvision {m['torchvision']}, lightning {m['lightning']}, nvidia-dali "
        f"{m['nvidia-dali']}",
        gpu,
        f"settings: batch {s.batch_size}; model steps {s.model_steps} timed after "
        f"{s.model_warmup}; photo set {s.images} images, {s.data_repeats} timed epochs; "
        f"end-to-end fit {s.fit_steps} batches ({s.fit_warmup} warm-up); resident-batch fits "
        f"{s.batch_steps} batches ({s.batch_warmup} warm-up)",
    )
    lines = [t.line for t in results["targets"]]
    if not lines:
        why = "no GPU" if results["gpu"] is None else "the parts that measure them did not finish"
        lines = [f"targets: none measured ({why})"]
    errors = results["errors"]
    lines.append(f"errors in: {', '.join(errors)}" if errors else "no part raised an error")
    if not markdown:
        parts = [f"{p.name}: {p.summary}" for p in parts]
        return "\n".join([*machine, "", *parts, "", *lines])
    table = ["| part | result | s |", "|---|---|---:|"]
    for p in parts:
        seconds = "" if p.status == "skipped" else f" {p.seconds:.0f}"
        table.append(f"| {p.name} | {p.summary} |{seconds} |")
    body = [*table, "", "## Targets", "", *(f"- {line}" for line in lines)]
    return report.document("lit_alexnet GPU benchmark", command, machine, body)
