"""``python -m lit_alexnet.bench gpu``: every GPU path of the package, run and measured in one go.

The package was built without a GPU, so its GPU paths were written but never run. This runs
them all, in this order, in under 10 minutes on one H100 with the defaults:

- ``gpu tests``: the ``gpu``-marked tests (``tests/conftest.py``), in a pytest subprocess;
- ``model step fp32`` and ``model step bf16 channels-last``: a training step of our AlexNet
  against torchvision's (:func:`lit_alexnet.bench.model.run_model_benchmark` on the GPU);
- ``DALI mixed decoding``: the DALI pipeline with nvJPEG decoding on the photo set
  (:func:`lit_alexnet.bench.data.run_data_benchmark` with ``device="gpu"``);
- ``end-to-end fit``: ``Trainer.fit`` of :class:`~lit_alexnet.LitAlexNet` on the photo set read
  by :class:`~lit_alexnet.DaliImageDataModule` (mixed decoding), against the model-only step;
- ``model.compile``: the same fit on one batch kept on the GPU, ``compile=True`` against eager;
- ``two-device strategy``: :class:`~lit_alexnet.TwoDeviceModelParallelStrategy` with both
  towers on one GPU against the plain model, on that batch.

Each part gives its figures, or says why it did not run (``PART: no GPU: skipped``); a part
that raises is reported as an error and the others still run. Fits are timed by
:class:`ImagesPerSecond`, every clock reading taken after ``torch.cuda.synchronize()``.
"""

from __future__ import annotations

import contextlib
import gc
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import Strategy

from lit_alexnet.bench.model import (
    IMAGE_SIZE,
    NUM_CLASSES,
    PAPER,
    TORCHVISION,
    machine_description,
    run_model_benchmark,
)

__all__ = [
    "PARTS",
    "GpuBenchSettings",
    "GpuReport",
    "ImagesPerSecond",
    "PartResult",
    "Target",
    "fit_images_per_second",
    "format_gpu_report",
    "photo_fit_root",
    "run_gpu_benchmark",
]

TESTS = "gpu tests"
STEP_FP32 = "model step fp32"
STEP_BF16 = "model step bf16 channels-last"
DALI = "DALI mixed decoding"
END_TO_END = "end-to-end fit"
COMPILE = "model.compile"
TWO_DEVICE = "two-device strategy"
PARTS = (TESTS, STEP_FP32, STEP_BF16, DALI, END_TO_END, COMPILE, TWO_DEVICE)

NO_GPU = "no GPU: skipped"
# The targets (on an H100): the data path is never the bottleneck, and our two-tower
# net with its LRN costs no more than 10% over torchvision's single-tower net of the same work.
END_TO_END_TARGET = 0.80
STEP_RATIO_TARGET = 1.10
# The fits' precision and layout: the fast configuration, where a slow data path shows most.
FIT_PRECISION = "bf16-mixed"


@dataclass(frozen=True)
class GpuBenchSettings:
    """What ``bench gpu`` runs; the defaults fit in under 10 minutes on one H100."""

    batch_size: int = 128  # section 5's
    images: int = 1024  # photo-like 500x375 JPEGs in the photo set
    model_steps: int = 20  # timed steps per net in each model-step part
    model_warmup: int = 5
    fit_steps: int = 300  # batches of the end-to-end fit, warm-up included
    fit_warmup: int = 50  # DALI's first epochs and cuDNN's first calls are not timed
    batch_steps: int = 120  # batches of each fit on one resident batch, warm-up included
    batch_warmup: int = 20  # enough for torch.compile to finish compiling
    data_repeats: int = 3  # timed epochs per loader in the DALI part
    run_tests: bool = True
    tests_timeout_s: float = 300.0
    cache_dir: Path | None = None  # where the photo set lives (default: the package's cache)

    def __post_init__(self) -> None:
        counts = {
            "batch_size": self.batch_size,
            "images": self.images,
            "model_steps": self.model_steps,
            "data_repeats": self.data_repeats,
        }
        for name, value in counts.items():
            if value < 1:
                raise ValueError(f"{name}={value!r} must be >= 1")
        for steps, warmup in (("fit_steps", "fit_warmup"), ("batch_steps", "batch_warmup")):
            if not 1 <= getattr(self, warmup) < getattr(self, steps):
                raise ValueError(
                    f"need 1 <= {warmup} < {steps}; got {getattr(self, warmup)}, "
                    f"{getattr(self, steps)}"
                )
        if self.model_warmup < 0:
            raise ValueError(f"model_warmup={self.model_warmup!r} must be >= 0")


@dataclass
class PartResult:
    """One part's outcome: ``status`` is ``"ok"``, ``"skipped"`` or ``"error"``; ``summary``
    its figures, why it was skipped, or the error, in one line."""

    name: str
    status: str
    summary: str
    details: list[str] = field(default_factory=list)  # more lines, for the markdown
    seconds: float = 0.0

    @property
    def line(self) -> str:
        """``PART: summary``, as the report prints it."""
        return f"{self.name}: {self.summary}"


@dataclass(frozen=True)
class Target:
    """A measured ratio and the issue's bound on it."""

    name: str
    value: float
    bound: float
    at_least: bool  # True: the value must be >= bound; False: <= bound

    @property
    def met(self) -> bool:
        """Whether the value, to the two decimals printed, is within the bound (so that a
        line never reads ``1.10 (target <= 1.10): MISSED``)."""
        value = round(self.value, 2)
        return value >= self.bound if self.at_least else value <= self.bound

    @property
    def line(self) -> str:
        """e.g. ``ours/torchvision step-time ratio: 1.04 (target <= 1.10): met``."""
        sign = ">=" if self.at_least else "<="
        verdict = "met" if self.met else "MISSED"
        return f"{self.name}: {self.value:.2f} (target {sign} {self.bound:.2f}): {verdict}"


@dataclass
class GpuReport:
    """Everything ``bench gpu`` found: the machine, each part, the targets measured."""

    machine: dict[str, Any]
    gpu: str | None
    versions: dict[str, str]
    settings: GpuBenchSettings
    parts: list[PartResult]
    targets: list[Target]

    @property
    def exit_status(self) -> int:
        """1 if a part raised an error, else 0: skipped parts and missed targets are not
        errors (the report says them)."""
        return int(any(part.status == "error" for part in self.parts))


# ----------------------------------------------------------------------------- timing


def synchronized_clock() -> float:
    """``time.perf_counter()`` once every GPU has finished the work queued on it.

    CUDA kernels run asynchronously: without the wait, a clock reading would fall while the
    batches before it are still computing.
    """
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index in range(torch.cuda.device_count()):
            torch.cuda.synchronize(index)
    return time.perf_counter()


def _batch_images(batch: Any) -> int:
    images = batch[0] if isinstance(batch, tuple | list) else batch
    return int(images.shape[0])


class ImagesPerSecond(Callback):
    """Training images per second of a fit after its first ``warmup`` batches.

    The clock starts at the end of batch ``warmup`` and stops at the end of the last batch
    (``trainer.max_steps``; else when training ends), so the images counted are those of the
    batches in between. Each reading waits for the GPU (:func:`synchronized_clock`); between
    them the GPU runs ahead as in any fit.
    """

    def __init__(self, warmup: int) -> None:
        if warmup < 1:
            raise ValueError(f"warmup={warmup!r}: the clock starts after batch >= 1")
        self.warmup = warmup
        self.batches = 0
        self.images = 0
        self.fit_start: float | None = None
        self.start: float | None = None
        self.end: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_start = synchronized_clock()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.batches += 1
        if self.batches == self.warmup:
            self.start = synchronized_clock()
        elif self.batches > self.warmup:
            self.images += _batch_images(batch)
            if self.batches == trainer.max_steps:
                self.end = synchronized_clock()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.end is None and self.start is not None:
            self.end = synchronized_clock()

    @property
    def images_per_s(self) -> float:
        """Images per second of the timed batches."""
        if self.start is None or self.end is None or self.images == 0:
            raise RuntimeError(
                f"the fit ended after {self.batches} batches, within its {self.warmup} "
                "warm-up batches: nothing was timed"
            )
        return self.images / (self.end - self.start)

    @property
    def warmup_s(self) -> float:
        """Seconds from the start of training to the end of the warm-up batches."""
        if self.fit_start is None or self.start is None:
            raise RuntimeError("the fit has not finished its warm-up")
        return self.start - self.fit_start


class _OneLoader:
    """``batches`` as one training loader: Lightning takes a list for a list of loaders."""

    def __init__(self, batches: Iterable[Any]) -> None:
        self.batches = list(batches)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def fit_images_per_second(
    model: L.LightningModule,
    *,
    steps: int,
    warmup: int,
    device: torch.device,
    precision: str = FIT_PRECISION,
    datamodule: L.LightningDataModule | None = None,
    batches: Iterable[Any] | None = None,
    strategy: Strategy | None = None,
) -> ImagesPerSecond:
    """Fit ``model`` for ``steps`` batches (from ``datamodule`` or ``batches``) on ``device``
    with no validation, logger or checkpoint, and return the timer (:class:`ImagesPerSecond`).

    ``strategy`` replaces the single-device placement (its own devices are used).
    """
    timer = ImagesPerSecond(warmup)
    where: dict[str, Any] = {}
    if strategy is None:
        on_gpu = device.type == "cuda"
        where = {"accelerator": "gpu" if on_gpu else "cpu", "devices": [device.index or 0]}
        if not on_gpu:
            where["devices"] = 1
    with tempfile.TemporaryDirectory(prefix="lit_alexnet_bench_") as root:
        trainer = L.Trainer(
            **where,
            strategy=strategy if strategy is not None else "auto",
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
        loader = None if batches is None else _OneLoader(batches)
        trainer.fit(model, train_dataloaders=loader, datamodule=datamodule)
    return timer


def photo_fit_root(photos: Path, where: Path) -> Path:
    """A dataset root at ``where`` for fitting on the photo set ``photos``.

    The photo set has ``train/`` only, and a fit's data module checks ``val/`` too (the
    benchmark's fits validate nothing): ``where`` holds links ``train`` and ``val``, both to
    the photo set's ``train/``, so the package's own data module reads it unchanged.
    """
    where.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        link = where / split
        if not link.exists():
            link.symlink_to((photos / "train").resolve(), target_is_directory=True)
    return where


def end_to_end_fit(
    photos: Path,
    *,
    batch_size: int,
    steps: int,
    warmup: int,
    device: torch.device,
    precision: str = FIT_PRECISION,
) -> ImagesPerSecond:
    """Fit the paper's net on the photo set through :class:`~lit_alexnet.DaliImageDataModule`
    (mixed decoding on a GPU, channels-last batches) with fused AdamW; the timer.

    The net has :data:`~lit_alexnet.bench.model.NUM_CLASSES` outputs, as in the model-step
    benchmark, so the two do the same work per image (the photo set's 10 labels are among
    them).
    """
    from functools import partial

    from lit_alexnet import DaliImageDataModule, LitAlexNet
    from lit_alexnet.data.dataset_stats import STATS_FILENAME

    with tempfile.TemporaryDirectory(prefix="lit_alexnet_photo_fit_") as tmp:
        root = photo_fit_root(photos, Path(tmp) / "root")
        data = DaliImageDataModule(
            root,
            batch_size=batch_size,
            device="gpu" if device.type == "cuda" else "cpu",
            channels_last=True,
            pipeline_seed=0,
            stats=photos / STATS_FILENAME,
            verify="off",  # the benchmark generated the files
        )
        torch.manual_seed(0)
        model = LitAlexNet(
            NUM_CLASSES,
            # The model-step benchmark's AdamW (bench.model._train_step), the quickstart's.
            optimizer=partial(torch.optim.AdamW, lr=3e-4, weight_decay=5e-4, fused=True),
        )
        return fit_images_per_second(
            model,
            steps=steps,
            warmup=warmup,
            device=device,
            precision=precision,
            datamodule=data,
        )


def resident_batches(
    batch_size: int, count: int, device: torch.device
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` times the same channels-last batch on ``device``: fits on it time the model
    and the training loop alone, no data path."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (batch_size,), generator=generator)
    images = images.to(device).contiguous(memory_format=torch.channels_last)
    return [(images, labels.to(device))] * count


def _resident_fit(
    settings: GpuBenchSettings,
    device: torch.device,
    compile: bool = False,
    strategy: Strategy | None = None,
) -> ImagesPerSecond:
    from functools import partial

    from lit_alexnet import LitAlexNet

    torch.manual_seed(0)
    model = LitAlexNet(
        NUM_CLASSES,
        optimizer=partial(torch.optim.AdamW, lr=3e-4, weight_decay=5e-4, fused=True),
        compile=compile,
    )
    return fit_images_per_second(
        model,
        steps=settings.batch_steps,
        warmup=settings.batch_warmup,
        device=device,
        batches=resident_batches(settings.batch_size, settings.batch_steps, device),
        strategy=strategy,
    )


# ----------------------------------------------------------------------------- parts


def find_checkout() -> Path | None:
    """The source checkout holding this package and ``tests/``, or the working directory if
    it holds ``tests/conftest.py``; ``None`` for an installed wheel run elsewhere."""
    for root in (Path(__file__).resolve().parents[3], Path.cwd()):
        if (root / "tests" / "conftest.py").is_file() and (root / "pyproject.toml").is_file():
            return root
    return None


_SUMMARY = re.compile(
    r"\b\d+ (passed|failed|skipped|deselected|errors?|xfailed|xpassed|warnings?)\b.* in "
    r"[\d.]+s"
)


def pytest_summary(output: str) -> str | None:
    """pytest's final summary line in ``output`` (e.g. ``3 passed, 9 deselected in 4.20s``),
    without its ``=`` rule; ``None`` if there is none."""
    for line in reversed(output.splitlines()):
        if _SUMMARY.search(line):
            return line.strip().strip("=").strip()
    return None


def _gpu_tests(settings: GpuBenchSettings, log: Callable[[str], None]) -> PartResult:
    checkout = find_checkout()
    if checkout is None:
        return PartResult(TESTS, "skipped", "no tests/ here (not a source checkout): skipped")
    # An explicit -m replaces pyproject's `-m 'not slow'`: every gpu test runs, slow or not.
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-q"]
    log(f"{TESTS}: {' '.join(command[1:])} (in {checkout})")
    try:
        done = subprocess.run(
            command,
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=settings.tests_timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return PartResult(
            TESTS, "error", f"error: still running after {settings.tests_timeout_s:.0f} s"
        )
    output = done.stdout + done.stderr
    summary = pytest_summary(output) or f"pytest exited with {done.returncode}"
    tail = output.strip().splitlines()[-20:]
    if done.returncode == 5:  # pytest's "no tests collected"
        return PartResult(TESTS, "ok", f"no gpu-marked tests collected ({summary})")
    if done.returncode != 0:
        return PartResult(TESTS, "error", f"error: {summary}", details=tail)
    return PartResult(TESTS, "ok", summary)


def _step_part(
    name: str,
    settings: GpuBenchSettings,
    device: torch.device,
    precision: str,
    channels_last: bool,
    figures: dict[str, Any],
) -> PartResult:
    results = run_model_benchmark(
        settings.batch_size,
        settings.model_steps,
        settings.model_warmup,
        precision=precision,
        channels_last=channels_last,
        optimizer="adamw",
        device=device,
    )
    figures[name] = results
    models = results["models"]
    ours, theirs = models[PAPER], models[TORCHVISION]
    summary = (
        f"ours {ours['images_per_s']:.0f} images/s ({ours['ms_median']:.1f} ms/step), "
        f"torchvision {theirs['images_per_s']:.0f} images/s ({theirs['ms_median']:.1f} ms/step)"
    )
    details = [
        f"{model}: {fig['ms_median']:.2f} ms/step (min {fig['ms_min']:.2f}), "
        f"{fig['images_per_s']:.0f} images/s"
        for model, fig in models.items()
    ]
    details.append(
        f"batch {settings.batch_size}, median of {settings.model_steps} interleaved steps "
        f"after {settings.model_warmup} warm-up; forward + cross-entropy + backward + fused "
        "AdamW"
    )
    return PartResult(name, "ok", summary, details)


def _dali_part(settings: GpuBenchSettings, photos: Path, log: Callable[[str], None]) -> PartResult:
    from lit_alexnet.bench.data import run_data_benchmark
    from lit_alexnet.data.parallel import usable_cpus

    results = run_data_benchmark(
        photos,
        kind="photo",
        images=settings.images,
        batch_size=settings.batch_size,
        repeats=settings.data_repeats,
        warmup=1,
        # One DataLoader configuration, for scale; the part is about DALI's figure.
        workers=[usable_cpus()],
        device="gpu",
        log=log,
    )
    rows = results["rows"]
    dali, loader = rows[results["best_dali"]], rows[results["best"]]
    summary = (
        f"{dali['images_per_s']:.0f} images/s ({dali['config']}); torchvision's DataLoader "
        f"({loader['config']}) {loader['images_per_s']:.0f} images/s (DALI/DataLoader "
        f"{results['ratio']:.2f}x)"
    )
    d = results["dataset"]
    details = [
        f"{row['loader']} ({row['config']}): {row['images_per_s']:.0f} images/s "
        f"(min {row['min']:.0f}, max {row['max']:.0f})"
        for row in rows
    ]
    details.append(
        f"{d['images']} photo-like JPEGs, {d['median'][0]}x{d['median'][1]}, mean "
        f"{d['mean_kb']:.0f} KB; decode, resize 256, centre 256, mean, random 224 crop, flip, "
        f"PCA lighting; batch {settings.batch_size}; median of {settings.data_repeats} epochs"
    )
    return PartResult(DALI, "ok", summary, details)


def _end_to_end_part(
    settings: GpuBenchSettings,
    photos: Path,
    device: torch.device,
    figures: dict[str, Any],
    targets: list[Target],
) -> PartResult:
    timer = end_to_end_fit(
        photos,
        batch_size=settings.batch_size,
        steps=settings.fit_steps,
        warmup=settings.fit_warmup,
        device=device,
    )
    rate = timer.images_per_s
    timed = settings.fit_steps - settings.fit_warmup
    details = [
        f"{settings.fit_steps} batches of {settings.batch_size} ({settings.images} photos, "
        f"DALI mixed decoding, channels-last, {FIT_PRECISION}, fused AdamW), the last {timed} "
        f"timed; warm-up {timer.warmup_s:.1f} s"
    ]
    step = figures.get(STEP_BF16)
    if step is None:
        return PartResult(
            END_TO_END,
            "ok",
            f"{rate:.0f} images/s (no model-only figure: {STEP_BF16} did not run)",
            details,
        )
    model_only = step["models"][PAPER]["images_per_s"]
    ratio = end_to_end_ratio(rate, model_only)
    targets.append(
        Target("end-to-end/model-only images-per-second ratio", ratio, END_TO_END_TARGET, True)
    )
    summary = f"{rate:.0f} images/s against {model_only:.0f} model-only ({STEP_BF16})"
    return PartResult(END_TO_END, "ok", summary, details)


def _compile_part(
    settings: GpuBenchSettings, device: torch.device, figures: dict[str, Any]
) -> PartResult:
    eager = _plain_fit(settings, device, figures)
    compiled = _resident_fit(settings, device, compile=True)
    speedup = compiled.images_per_s / eager.images_per_s
    summary = (
        f"compiled {compiled.images_per_s:.0f} images/s, eager {eager.images_per_s:.0f} "
        f"images/s: {speedup:.2f}x"
    )
    details = [
        f"fits of {settings.batch_steps} batches of {settings.batch_size} on one batch kept on "
        f"the GPU ({FIT_PRECISION}, channels-last), the last "
        f"{settings.batch_steps - settings.batch_warmup} timed",
        f"warm-up of {settings.batch_warmup} batches: {compiled.warmup_s:.1f} s compiled "
        f"(compilation included), {eager.warmup_s:.1f} s eager",
    ]
    return PartResult(COMPILE, "ok", summary, details)


def _two_device_part(
    settings: GpuBenchSettings, device: torch.device, figures: dict[str, Any]
) -> PartResult:
    from lit_alexnet import TwoDeviceModelParallelStrategy

    plain = _plain_fit(settings, device, figures)
    strategy = TwoDeviceModelParallelStrategy([device, device])
    split = _resident_fit(settings, device, strategy=strategy)
    ratio = split.images_per_s / plain.images_per_s
    summary = (
        f"towers on [{device}, {device}] {split.images_per_s:.0f} images/s, plain "
        f"{plain.images_per_s:.0f} images/s: {ratio:.2f}x"
    )
    details = [
        "the same fits as model.compile's eager one; with one GPU nothing is split, so this "
        "is the strategy's own cost (about 1.00x expected)"
    ]
    return PartResult(TWO_DEVICE, "ok", summary, details)


def _plain_fit(
    settings: GpuBenchSettings, device: torch.device, figures: dict[str, Any]
) -> ImagesPerSecond:
    """The eager single-device fit on the resident batch, made once for both parts."""
    if "plain_fit" not in figures:
        figures["plain_fit"] = _resident_fit(settings, device)
    timer: ImagesPerSecond = figures["plain_fit"]
    return timer


def end_to_end_ratio(end_to_end: float, model_only: float) -> float:
    """End-to-end images per second over model-only images per second."""
    return end_to_end / model_only


def step_time_ratio(ours_ms: float, torchvision_ms: float) -> float:
    """Our step time over torchvision's (below 1: ours is faster)."""
    return ours_ms / torchvision_ms


def _step_target(name: str, results: dict[str, Any]) -> Target:
    models = results["models"]
    ratio = step_time_ratio(models[PAPER]["ms_median"], models[TORCHVISION]["ms_median"])
    label = name.removeprefix("model step ")
    return Target(f"ours/torchvision step-time ratio, {label}", ratio, STEP_RATIO_TARGET, False)


# ----------------------------------------------------------------------------- the run


def _versions() -> dict[str, str]:
    try:
        from nvidia import dali

        dali_version = str(dali.__version__)
    except ImportError:
        dali_version = "absent"
    import lightning
    import torchvision

    return {
        "torch": torch.__version__,
        "CUDA": str(torch.version.cuda),
        "torchvision": torchvision.__version__,
        "lightning": lightning.__version__,
        "nvidia-dali": dali_version,
        "Python": platform.python_version(),
    }


@contextlib.contextmanager
def _timed(part: list[float]) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        part.append(time.perf_counter() - start)


def _free_gpu_memory() -> None:
    """Drop what the previous part left, so each part starts with the GPU's memory free."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def run_gpu_benchmark(
    settings: GpuBenchSettings | None = None,
    log: Callable[[str], None] | None = None,
) -> GpuReport:
    """Run every part (see the module docstring) and return what each found.

    Without a CUDA GPU every part is skipped (``no GPU: skipped``) and nothing is measured;
    without nvidia-dali the DALI and end-to-end parts are. A part that raises is recorded as
    an error (its traceback goes to ``log``) and the next part runs.
    """
    settings = settings or GpuBenchSettings()
    say = log or (lambda line: None)
    parts: list[PartResult] = []
    targets: list[Target] = []
    figures: dict[str, Any] = {}
    has_gpu = torch.cuda.is_available()
    device = torch.device("cuda", 0) if has_gpu else torch.device("cpu")
    from lit_alexnet.data.dali import dali_available

    has_dali = dali_available()
    photos: list[Path] = []

    def photo_set() -> Path:
        if not photos:
            from lit_alexnet.bench.photos import ensure_photo_dataset
            from lit_alexnet.data.builtin import default_cache_dir

            cache = settings.cache_dir or default_cache_dir()
            photos.append(ensure_photo_dataset(cache, settings.images))
        return photos[0]

    runs: list[tuple[str, Callable[[], PartResult], bool]] = [
        (TESTS, lambda: _gpu_tests(settings, say), False),
        (STEP_FP32, lambda: _step_part(STEP_FP32, settings, device, "32", False, figures), False),
        (STEP_BF16, lambda: _step_part(STEP_BF16, settings, device, "bf16", True, figures), False),
        (DALI, lambda: _dali_part(settings, photo_set(), say), True),
        (
            END_TO_END,
            lambda: _end_to_end_part(settings, photo_set(), device, figures, targets),
            True,
        ),
        (COMPILE, lambda: _compile_part(settings, device, figures), False),
        (TWO_DEVICE, lambda: _two_device_part(settings, device, figures), False),
    ]
    for name, run, needs_dali in runs:
        if name == TESTS and not settings.run_tests:
            parts.append(PartResult(name, "skipped", "not asked for (--no-tests): skipped"))
            continue
        if not has_gpu:
            parts.append(PartResult(name, "skipped", NO_GPU))
            continue
        if needs_dali and not has_dali:
            parts.append(PartResult(name, "skipped", "nvidia-dali not installed: skipped"))
            continue
        say(f"{name}: running")
        seconds: list[float] = []
        try:
            with _timed(seconds):
                result = run()
        except Exception as e:
            say(traceback.format_exc())
            message = str(e).strip().splitlines()[0] if str(e).strip() else ""
            result = PartResult(name, "error", f"error: {type(e).__name__}: {message}")
        result.seconds = seconds[0]
        parts.append(result)
        say(f"{result.line} [{result.seconds:.0f} s]")
        _free_gpu_memory()
    # The step-time targets first, then the end-to-end one, as the parts ran.
    steps = [
        _step_target(name, figures[name]) for name in (STEP_FP32, STEP_BF16) if name in figures
    ]
    return GpuReport(
        machine=machine_description(),
        gpu=torch.cuda.get_device_name(device) if has_gpu else None,
        versions=_versions(),
        settings=settings,
        parts=parts,
        targets=steps + targets,
    )


# ----------------------------------------------------------------------------- report


def format_gpu_report(report: GpuReport, markdown: bool = False, command: str | None = None) -> str:
    """The machine, one line per part (``PART: figures`` or ``PART: no GPU: skipped``), then
    the targets measured. ``markdown=True``: a file with ``command`` near the top, a table
    of the parts and each part's details."""
    m, v, s = report.machine, report.versions, report.settings
    if report.gpu is None:
        gpu = (
            "GPU: none (torch.cuda.is_available() is False): every GPU part was skipped and no "
            "GPU figure was measured"
        )
    else:
        gpu = f"GPU: {report.gpu} (CUDA {v['CUDA']}), cuda:0"
    machine = [
        f"CPU: {m['cpu']} ({m['usable_cores']} usable of {m['logical_cores']} logical cores)",
        gpu,
        f"torch {v['torch']}, torchvision {v['torchvision']}, lightning {v['lightning']}, "
        f"nvidia-dali {v['nvidia-dali']}, Python {v['Python']}",
        f"settings: batch {s.batch_size}; model steps {s.model_steps} timed after "
        f"{s.model_warmup}; photo set {s.images} images, {s.data_repeats} timed epochs; "
        f"end-to-end fit {s.fit_steps} batches ({s.fit_warmup} warm-up); resident-batch fits "
        f"{s.batch_steps} batches ({s.batch_warmup} warm-up)",
    ]
    if report.targets:
        targets = [t.line for t in report.targets]
    elif report.gpu is None:
        targets = ["targets: none measured (no GPU)"]
    else:
        targets = ["targets: none measured (the parts that measure them did not finish)"]
    errors = [p.name for p in report.parts if p.status == "error"]
    verdict = f"errors in: {', '.join(errors)}" if errors else "no part raised an error"
    if not markdown:
        return "\n".join([*machine, "", *(p.line for p in report.parts), "", *targets, verdict])
    lines = ["# lit_alexnet GPU benchmark", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [f"- {line}" for line in machine] + [""]
    lines += ["| part | result | s |", "|---|---|---:|"]
    lines += [
        f"| {p.name} | {p.summary} | {p.seconds:.0f} |"
        if p.status != "skipped"
        else f"| {p.name} | {p.summary} | |"
        for p in report.parts
    ]
    lines += ["", "## Targets", ""]
    lines += [f"- {line}" for line in targets]
    lines += [f"- {verdict}"]
    detailed = [p for p in report.parts if p.details]
    if detailed:
        lines += ["", "## Details"]
        for p in detailed:
            lines += ["", f"### {p.name}", ""] + [f"- {d}" for d in p.details]
    return "\n".join(lines) + "\n"
