"""Lightning callbacks of the package: :class:`TimeBudget`, a run sized to a wall-clock limit."""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, ClassVar, cast

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_info
from typing_extensions import override

from lit_alexnet.nn import AlexNet
from lit_alexnet.optim import MONITOR
from lit_alexnet.plots import kernel_grid, learning_curves, pyplot

_process_clock_taken = False


def job_start_time() -> float:
    """When this job started: the process's start for its first job (imports count), else now.

    A Hydra multirun runs its jobs one after another in one process, so only the first may
    count the interpreter's start-up as its own.
    """
    global _process_clock_taken
    now = time.time()
    if _process_clock_taken:
        return now
    _process_clock_taken = True
    try:
        # Field 22 of /proc/self/stat: start time in clock ticks after boot.
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        since_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return min(now, now - uptime + since_boot)
    except (OSError, ValueError, IndexError):  # not Linux
        return now


class TimeBudget(Callback):
    """Fits the run into ``minutes`` of wall time by training fewer epochs where it must.

    After ``warmup_steps + measure_steps`` timed training steps (an epoch's first step, which
    also starts its data loader, is not timed) it measures the step time (data loading
    included), estimates each validation (measured after the first one), and keeps
    the largest number of whole epochs, at most ``trainer.max_epochs``, that ends within the
    budget, leaving ``reserve_s`` for the final checkpoint and teardown. A schedule that
    spans the run (one cycle) is re-planned over the new length, so the learning rate still
    anneals to its end. It re-plans after every validation with the measured times and takes
    every rank's decision from rank 0. The job validates after the final epoch
    (:class:`FinalValidation`), which the plan counts.

    The clock starts with the job (the process's start for its first job): on a machine
    that is fast enough the run is not changed at all.
    """

    def __init__(
        self,
        minutes: float,
        warmup_steps: int = 2,
        measure_steps: int = 6,
        reserve_s: float = 10.0,
        start_time: float | None = None,
    ) -> None:
        if minutes <= 0:
            raise ValueError(f"TimeBudget(minutes={minutes!r}) must be positive")
        if warmup_steps < 0 or measure_steps < 1:
            raise ValueError("TimeBudget needs warmup_steps >= 0 and measure_steps >= 1")
        self.minutes = minutes
        self.warmup_steps = warmup_steps
        self.measure_steps = measure_steps
        self.reserve_s = reserve_s
        self.start_time = job_start_time() if start_time is None else start_time
        self.configured_epochs: int | None = None
        self.planned_epochs: int | None = None
        self._step_seconds: list[float] = []
        self._last_step_end = 0.0
        self._epoch_batches = 0
        self._val_started: float | None = None
        self._val_seconds: list[float] = []
        self._every_n: int | None = None

    @property
    def deadline(self) -> float:
        """The wall-clock time (``time.time()``) by which the job should have ended."""
        return self.start_time + 60.0 * self.minutes

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.configured_epochs is None:
            self.configured_epochs = trainer.max_epochs
        self._every_n = trainer.check_val_every_n_epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_batches = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        now = time.time()
        if self._epoch_batches > 0:
            self._step_seconds.append(now - self._last_step_end)
        self._last_step_end = now
        self._epoch_batches += 1
        if (
            self.planned_epochs is None
            and len(self._step_seconds) >= self.warmup_steps + self.measure_steps
        ):
            self._plan(trainer, pl_module)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._val_started = time.time()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._val_started is None or trainer.sanity_checking:
            return
        self._val_seconds.append(time.time() - self._val_started)
        self._val_started = None
        if self.planned_epochs is not None:
            self._plan(trainer, pl_module, validated=True)

    def step_seconds(self) -> float:
        """The median of the last ``measure_steps`` timed training steps."""
        return statistics.median(self._step_seconds[-self.measure_steps :])

    def affordable_epochs(
        self,
        *,
        now: float,
        step_s: float,
        val_s: float,
        steps_per_epoch: int,
        epoch: int,
        batches_done: int,
        every_n: int | None,
        max_epochs: int,
        validated: bool = False,
    ) -> int:
        """The most whole epochs, from ``epoch + 1`` to ``max_epochs``, that end in budget.

        ``epoch`` is the current (0-based) epoch and ``batches_done`` the training batches
        of the run so far; validations come every ``every_n`` epochs and after the last.
        ``validated``: the current epoch's validation has already run (and cost its time).
        """
        left = self.deadline - now - self.reserve_s
        for epochs in range(max_epochs, epoch + 1, -1):
            validations = sum(
                1
                for e in range(epoch + validated, epochs)
                if every_n is None or (e + 1) % every_n == 0 or e == epochs - 1
            )
            cost = (epochs * steps_per_epoch - batches_done) * step_s + validations * val_s
            if cost <= left:
                return epochs
        return epoch + 1

    def _plan(
        self, trainer: L.Trainer, pl_module: L.LightningModule, validated: bool = False
    ) -> None:
        batches = trainer.num_training_batches
        if not math.isfinite(batches) or self.configured_epochs in (None, -1):
            return  # an endless run has nothing to size
        steps_per_epoch = int(batches)
        step_s = self.step_seconds()
        if self._val_seconds:
            val_s = self._val_seconds[-1]
        else:
            # Until one is measured: a validation batch without backward costs about a third
            # of a training step; taken as half, to err towards finishing early.
            val_s = 0.5 * step_s * sum(trainer.num_val_batches)
        batches_done = trainer.current_epoch * steps_per_epoch + self._epoch_batches
        epochs = self.affordable_epochs(
            now=time.time(),
            step_s=step_s,
            val_s=val_s,
            steps_per_epoch=steps_per_epoch,
            epoch=trainer.current_epoch,
            batches_done=batches_done,
            every_n=self._every_n,
            max_epochs=int(self.configured_epochs),
            # A validation inside the epoch (val_check_interval < 1) is not its last one.
            validated=validated and self._epoch_batches >= steps_per_epoch,
        )
        epochs = int(trainer.strategy.broadcast(epochs))
        previous = self.planned_epochs or self.configured_epochs
        first = self.planned_epochs is None
        # Lightning has no public way to shorten a fit once it has begun; the fit loop's
        # max_epochs is what it reads at every epoch's end (and trainer.max_epochs returns).
        self.planned_epochs = trainer.fit_loop.max_epochs = epochs
        if epochs == previous and not first:
            return
        resized = False
        if epochs != previous:
            optimizer_steps = math.ceil(steps_per_epoch / trainer.accumulate_grad_batches)
            resize = getattr(pl_module, "resize_schedule", None)
            resized = bool(resize and resize(epochs * optimizer_steps))
        left = (epochs * steps_per_epoch - batches_done) * step_s
        rank_zero_info(
            f"time budget {self.minutes:g} min: {step_s:.2f} s per training step, so "
            + (
                f"all {epochs} epoch{'s' if epochs > 1 else ''} fit"
                if epochs == self.configured_epochs
                else f"{epochs} of {self.configured_epochs} epochs"
                + (" (learning-rate schedule re-planned)" if resized else "")
            )
            + f"; training ends about {(time.time() + left - self.start_time) / 60:.1f} min "
            "after the start"
        )


class FinalValidation(Callback):
    """Validates in the last epoch of the fit, whatever ``check_val_every_n_epoch`` says, so
    that the run's figures, its best checkpoint and its schedule see the final weights.

    The last epoch is the trainer's ``max_epochs`` as it stands at each step, so a callback
    before this one may change it (:class:`TimeBudget`). :meth:`needs_validation` tells the
    job whether a fit that ended otherwise (``max_steps``, a plateau stop) still needs one.
    """

    def __init__(self) -> None:
        self._every_n: int | None = None
        self._fit_here = False
        self._validated_step = -1

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_here = True
        self._every_n = trainer.check_val_every_n_epoch

    @override
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        # Lightning decides whether to validate after each training batch, reading this.
        if self._every_n is not None:
            last = (
                trainer.max_epochs is not None and trainer.current_epoch >= trainer.max_epochs - 1
            )
            trainer.check_val_every_n_epoch = 1 if last else self._every_n

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated_step = trainer.global_step

    def needs_validation(self, trainer: L.Trainer) -> bool:
        """Whether the fit in this process ended with weights that no validation saw.

        ``False`` where the fit ran in processes the strategy spawned (``two_device_ddp``):
        their last epoch validated there, and a process started anew would validate alone.
        """
        return self._fit_here and self._validated_step != trainer.global_step


class LastCheckpoint(ModelCheckpoint):
    """:class:`~lightning.pytorch.callbacks.ModelCheckpoint` whose ``last.ckpt`` is the state
    training ended with.

    Lightning writes ``last`` at the end of training only where it wrote none before, so a run
    saving every N steps (or every N epochs) ended with the checkpoint of its last multiple of
    N; this one saves the final step too.
    """

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # ModelCheckpoint has no public way to save now; its own save path is the one that
        # keeps save_top_k, the file names and the last link consistent.
        stale = self._last_checkpoint_saved and self._last_global_step_saved != trainer.global_step
        if stale and not trainer.sanity_checking:
            candidates = self._monitor_candidates(trainer)
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)
        super().on_train_end(trainer, pl_module)


class StopAtStepEnd(Callback):
    """Ctrl-C ends the fit at the end of the running training step or validation batch, as an
    interrupt Lightning handles (``last.ckpt`` saved, ``trainer.interrupted``); a second
    Ctrl-C interrupts at once, for a step that never ends.

    Python raises ``KeyboardInterrupt`` wherever the main thread is when SIGINT arrives. Inside
    a finalizer or a callback from C it is printed and dropped, and the run trains on; inside a
    C extension's first import it surfaces as an ``ImportError`` and the run crashes. The
    handler here only takes note; the hooks raise where Lightning's loops expect it.
    """

    def __init__(self) -> None:
        self._requested = False
        self._previous: Any = None
        self._says = False

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Signal handlers belong to the main thread; an ignored SIGINT (nohup, a background
        # job of a non-interactive shell) stays ignored.
        if stage != "fit" or threading.current_thread() is not threading.main_thread():
            return
        handler = signal.getsignal(signal.SIGINT)
        if handler is signal.SIG_IGN or handler is None:
            return
        self._requested = False
        self._previous = handler
        self._says = trainer.is_global_zero
        signal.signal(signal.SIGINT, self._request)

    def _request(self, signum: int, frame: object) -> None:
        self._requested = True
        signal.signal(signal.SIGINT, self._previous)
        if self._says:  # os.write: a print could land inside another write to stderr
            os.write(2, b"\nCtrl-C: stopping after this step (Ctrl-C again stops now)\n")

    def _stop_if_requested(self) -> None:
        if self._requested:
            self._requested = False
            raise KeyboardInterrupt

    @override
    def on_train_batch_end(self, *args: Any) -> None:
        self._stop_if_requested()

    @override
    def on_validation_batch_end(self, *args: Any) -> None:
        self._stop_if_requested()

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # After an interrupt Lightning ignores SIGINT while it shuts down; that stays.
        if signal.getsignal(signal.SIGINT) == self._request:
            signal.signal(signal.SIGINT, self._previous)
        self._previous = None


class ProgressLines(ProgressBar):
    """Progress for a log file or a cluster job: one line every ``every_n_steps`` training
    steps and one at the end of every epoch, with the speed and the latest figures.

    A :class:`~lightning.pytorch.callbacks.ProgressBar`, so that Lightning adds no bar of its
    own, whose final state Rich prints into the log.
    """

    def __init__(self, every_n_steps: int = 500) -> None:
        super().__init__()
        self.every_n_steps = every_n_steps
        self._enabled = True
        self._epoch_started = 0.0
        self._batches = 0
        self._validated = False

    @override
    def disable(self) -> None:
        self._enabled = False

    @override
    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_started = time.time()
        self._batches = 0
        self._validated = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validated = not trainer.sanity_checking

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        self._batches += 1
        if self.every_n_steps > 0 and trainer.global_step % self.every_n_steps == 0:
            self._say(trainer, f"step {trainer.global_step}")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._say(trainer, "end")

    def _say(self, trainer: L.Trainer, where: str) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        batches = self._batches
        seconds = time.time() - self._epoch_started
        figures = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} {where}"]
        if batches:
            figures.append(f"{batches / max(seconds, 1e-9):.2f} it/s")
        # The latest step's loss, and the error of a validation that ran in this epoch.
        keys = [("train/loss_step", "train loss")]
        if self._validated:
            keys.append(("val/top1_error", "val top-1 error"))
        for key, name in keys:
            value = trainer.callback_metrics.get(key)
            if value is not None:
                figures.append(f"{name} {float(value):.3f}")
        print(" | ".join(figures), flush=True)


class EpochBar(RichProgressBar):
    """Lightning's Rich bar as a person reads it: epochs counted from 1 (``Epoch 1/10``, as
    :class:`ProgressLines` counts them), the loss and top-1 error under short names that fit
    beside the bar, and no logger version."""

    SHORT: ClassVar[dict[str, str]] = {
        "train/loss_step": "loss",
        "train/top1_error_step": "err",
        "val/top1_error": "val err",
    }

    @override
    def get_metrics(
        self, trainer: L.Trainer, pl_module: L.LightningModule
    ) -> dict[str, int | str | float | dict[str, float]]:
        items = super().get_metrics(trainer, pl_module)
        return {short: items[key] for key, short in self.SHORT.items() if key in items}

    # Lightning's own description counts epochs from 0 (``Epoch 9/9`` ends ten); only the
    # numbers change here, its padding against the validation bar's description stays.
    def _get_train_description(self, current_epoch: int) -> str:
        epochs = self.trainer.max_epochs
        text = f"Epoch {current_epoch + 1}" + (f"/{epochs}" if epochs not in (None, -1) else "")
        return f"{text:{len(self.validation_description)}}"


def progress_bar(every_n_steps: int = 500) -> Callback:
    """A Rich progress bar on a terminal (:class:`EpochBar`); :class:`ProgressLines` in a log
    file or job."""
    if sys.stdout.isatty():
        return EpochBar()
    return ProgressLines(every_n_steps)


class Conv1Kernels(Callback):
    """Logs Figure 3, the conv1 kernels (:func:`lit_alexnet.plots.kernel_grid`), after each
    validation, so a W&B or TensorBoard user watches the filters form; loggers that take no
    images (CSV) are skipped."""

    def __init__(self, scale: int = 4) -> None:
        self.scale = scale

    @override
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not trainer.loggers:
            return
        weights = [w.float().cpu() for w in cast(AlexNet, pl_module.net).conv1_weights()]
        picture = kernel_grid(torch.cat(weights), len(weights), self.scale)
        step = trainer.global_step
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="conv1_kernels", images=[picture], step=step)
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("conv1_kernels", picture, step, dataformats="HWC")


class WandbBestError(Callback):
    """Makes a W&B run's summary hold the least validation top-1 error it reached (W&B's
    ``define_metric``), the figure a sweep's runs are compared by, instead of the last one."""

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.define_metric(MONITOR, summary="min")


# A run's learning curves (LearningCurves): the rows, one per epoch, and their picture.
CURVES, CURVES_PICTURE = "curves.json", "curves.png"


def read_curves(run: Path) -> list[dict[str, float]]:
    """The rows of ``run``'s ``curves.json``, one per epoch; none where it has no such file."""
    path = Path(run) / CURVES
    rows: list[dict[str, float]] = json.loads(path.read_text()) if path.is_file() else []
    return rows


class LearningCurves(Callback):
    """Writes ``curves.json`` and ``curves.png`` (training loss, the epoch's mean; validation
    loss, top-1 and top-5 error where the epoch validated; learning rate; against epoch) into
    the run's folder after every epoch, from the run's own figures, whatever its logger. A
    resumed run's curves go on from the checkpoint's."""

    VALIDATION = ("val/loss", "val/top1_error", "val/top5_error")

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self._losses: list[float] = []
        self._validated: dict[str, float] = {}

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # matplotlib's compiled backend is loaded here rather than at the first epoch's end:
        # a Ctrl-C landing inside a C extension's import surfaces as "ImportError:
        # initialization failed", not KeyboardInterrupt, and crashed the run instead of
        # saving last.ckpt.
        if stage == "fit" and trainer.is_global_zero:
            pyplot()

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._losses, self._validated = [], {}

    @override
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, *args: Any
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self._losses.append(float(loss.detach()))

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            metrics = trainer.callback_metrics
            self._validated = {k: float(metrics[k]) for k in self.VALIDATION if k in metrics}

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        row = {"epoch": float(trainer.current_epoch + 1), **self._validated}
        if self._losses:
            row["train/loss"] = sum(self._losses) / len(self._losses)
        if trainer.optimizers:
            row["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
        run = Path(trainer.default_root_dir)
        (run / CURVES).write_text(json.dumps(self.rows, indent=1) + "\n")
        learning_curves({run.name: self.rows}, run / CURVES_PICTURE, title=str(run))

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict.get("rows", []))
