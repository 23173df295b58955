"""LitAlexNet: the paper's training and evaluation as a LightningModule."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, OneCycleLR, ReduceLROnPlateau
from torchmetrics.classification import MulticlassAccuracy

from lit_alexnet.checks import Invalid
from lit_alexnet.nn import AlexNet
from lit_alexnet.optim import MONITOR, PaperSGD
from lit_alexnet.rng import capture_rng_states, restore_rng_states

OptimizerFactory = Callable[[Iterable[Tensor]], Optimizer]
SchedulerFactory = Callable[..., LRScheduler | ReduceLROnPlateau]


class TopKError(MulticlassAccuracy):
    """The fraction of images whose label is not among the ``k`` best scores (section 6)."""

    higher_is_better = False

    def __init__(self, num_classes: int, k: int) -> None:
        super().__init__(num_classes, top_k=min(k, num_classes), average="micro")

    def compute(self) -> Tensor:
        return 1.0 - super().compute()


# The checkpoint key of the datamodule's preprocessing (class names, mean).
PREPROCESSING = "lit_alexnet_preprocessing"
# The checkpoint key of the random states (lit_alexnet.rng), for exact resumption.
RNG_STATES = "lit_alexnet_rng_states"
# The checkpoint key of MONITOR's value when it was saved: the plateau step a resume takes.
MONITORED = "lit_alexnet_monitored"


class LitAlexNet(L.LightningModule):
    """AlexNet trained with cross-entropy and judged by top-1 and top-5 error (section 6).

    ``net`` holds the arguments of :class:`lit_alexnet.AlexNet` (``towers``, ``norm``,
    ``pooling``, ``activation``, ``dropout``, ``init``), the paper's net where left out.
    ``optimizer`` and ``scheduler`` are factories, such as Hydra partials:
    ``optimizer(params)`` and ``scheduler(optimizer)``. By default the paper's SGD
    (:class:`lit_alexnet.PaperSGD`) with no schedule. A
    :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` watches the validation top-1 error;
    a factory that takes ``total_steps`` (one cycle) gets the run's number of optimizer steps
    and is stepped after every batch.

    A validation or test batch of shape ``[B, n, 3, H, W]`` holds ``n`` views per image
    (the paper's ten crops, section 4.1); their softmax outputs are averaged.

    ``compile=True`` (``model.compile``) compiles the net with ``torch.compile`` in place
    (``nn.Module.compile``) when a trainer first configures the model, so the state dict's
    keys, and checkpoints, stay those of the plain net. It is a runtime choice, not part of
    the model: it is not saved with the checkpoint.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        net: Mapping[str, Any] | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        compile: bool = False,
        **flat_net: Any,
    ) -> None:
        super().__init__()
        net = _nested_net(net, flat_net)
        # The run logs the whole resolved config itself; keep hparams for checkpoints only.
        self.save_hyperparameters("num_classes", "net", logger=False)
        self.net = AlexNet(num_classes, **net)
        # Not `self.compile`: that is nn.Module's method, which this switch calls on the net.
        self.compile_net = compile
        self._net_compiled = False
        self.optimizer_factory = optimizer
        self.train_images = 0  # seen by this process, for the run's images per second
        self.scheduler_factory = scheduler
        self._rng_states: dict[str, Any] | None = None  # from a checkpoint, set at train start
        self._monitored: float | None = None  # MONITOR when the checkpoint was saved
        # One metric object per stage and k: torchmetrics accumulates each stage on its own.
        self.errors = nn.ModuleDict(
            {
                f"{stage}_top{k}": TopKError(num_classes, k=k)
                for stage in ("train", "val", "test")
                for k in (1, 5)
            }
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the datamodule's class names and mean with the weights (``predict`` reads
        them), where the datamodule can say them."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer else None
        describe = getattr(datamodule, "preprocessing", None)
        if callable(describe):
            checkpoint[PREPROCESSING] = describe()
        checkpoint[RNG_STATES] = capture_rng_states()
        monitored = self._trainer.callback_metrics.get(MONITOR) if self._trainer else None
        if monitored is not None:
            checkpoint[MONITORED] = float(monitored)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Set when training starts, after the sanity check and the data's setup, so that the
        # next dropout mask is the one the uninterrupted run drew.
        self._rng_states = checkpoint.get(RNG_STATES)
        self._monitored = checkpoint.get(MONITORED)

    def configure_model(self) -> None:
        """Compile the net in place where ``compile=True``; once, however many times a trainer
        calls this (every ``fit``, ``validate``, ``test`` does)."""
        # Compilation is lazy (at the first batch), so it does not matter that the strategy
        # moves or splits the net over devices after this hook.
        if self.compile_net and not self._net_compiled:
            self.net.compile()
            self._net_compiled = True

    def on_train_start(self) -> None:
        if self._rng_states is not None:
            restore_rng_states(self._rng_states)
            self._rng_states = None
        self._take_the_checkpoints_epoch_step()
        # A resumed one cycle comes back from its checkpoint sized to the first run; a resume
        # that trains longer (a raised max_epochs, a run TimeBudget cut short) would step
        # past its end. Lightning restores schedulers after configure_optimizers, so here.
        total_steps = int(self.trainer.estimated_stepping_batches)
        for config in self.trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            if isinstance(scheduler, OneCycleLR) and scheduler.total_steps != total_steps:
                self.resize_schedule(total_steps)

    def _take_the_checkpoints_epoch_step(self) -> None:
        """Step the per-epoch schedules for the epoch a resumed checkpoint ended.

        Lightning saves an epoch's checkpoint before stepping that epoch's schedules and, on
        resuming, goes straight to the next epoch without the step (for a plateau schedule
        because the metric it needs is not in the checkpoint), so a resumed run kept its lr one
        drop too high. A schedule stepped once per epoch has taken one step per finished
        epoch; one short is taken here, a plateau one with the metric saved beside it. A
        fresh run (no epoch finished, no step short) is left alone.
        """
        epochs = self.trainer.current_epoch  # finished, the checkpoint's own included
        for config in self.trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            if config.interval != "epoch" or config.frequency != 1:
                continue
            if getattr(scheduler, "last_epoch", None) != epochs - 1:
                continue
            metric = None
            if config.reduce_on_plateau:
                if self._monitored is None:
                    continue  # nothing to judge the plateau by, as Lightning would have had
                metric = torch.tensor(self._monitored)
            self.lr_scheduler_step(scheduler, metric)

    def forward(self, images: Tensor) -> Tensor:
        """Logits for ``[B, 3, 224, 224]`` images."""
        return self.net(images)

    def predict_proba(self, images: Tensor) -> Tensor:
        """Class probabilities; ``[B, n, 3, H, W]`` views are averaged in softmax space."""
        if images.ndim == 5:
            b, n = images.shape[:2]
            probs = self.net(images.flatten(0, 1)).softmax(-1)
            return probs.view(b, n, -1).mean(1)
        return self.net(images).softmax(-1)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        self.train_images += labels.shape[0]
        logits = self.net(images)
        loss = F.cross_entropy(logits, labels)
        self._log_errors("train", loss, logits, labels, on_step=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch)

    def _evaluate(self, stage: str, batch: tuple[Tensor, Tensor]) -> None:
        images, labels = batch
        probs = self.predict_proba(images)
        loss = F.nll_loss(torch.log(probs.clamp_min(1e-12)), labels)
        self._log_errors(stage, loss, probs, labels, on_step=False)

    def _log_errors(
        self, stage: str, loss: Tensor, scores: Tensor, labels: Tensor, on_step: bool
    ) -> None:
        opts: dict[str, Any] = dict(on_step=on_step, on_epoch=True, batch_size=labels.shape[0])
        self.log(f"{stage}/loss", loss, prog_bar=stage == "train", **opts)
        for k in (1, 5):
            metric = cast(TopKError, self.errors[f"{stage}_top{k}"])
            metric(scores, labels)
            self.log(f"{stage}/top{k}_error", metric, prog_bar=k == 1, **opts)

    def configure_optimizers(self) -> Any:
        params = self.net.parameters()
        optimizer = self.optimizer_factory(params) if self.optimizer_factory else PaperSGD(params)
        if self.scheduler_factory is None:
            return optimizer
        kwargs = {}
        if _takes_total_steps(self.scheduler_factory):
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = _scheduler(self.scheduler_factory, optimizer, **kwargs)
        config: dict[str, Any] = {"scheduler": scheduler, "interval": "epoch"}
        if isinstance(scheduler, ReduceLROnPlateau):
            config["monitor"] = MONITOR
        elif isinstance(scheduler, OneCycleLR):
            config["interval"] = "step"
        return {"optimizer": optimizer, "lr_scheduler": config}

    def lr_scheduler_step(self, scheduler: Any, metric: Any | None) -> None:
        """Step as Lightning does; end training once a :class:`~lit_alexnet.PlateauDecay` with
        ``stop_after_last`` has met the plateau after its last drop (section 5)."""
        super().lr_scheduler_step(scheduler, metric)
        if getattr(scheduler, "finished", False):
            self.trainer.should_stop = True

    def resize_schedule(self, total_steps: int) -> bool:
        """Re-plan a schedule that spans the run (one cycle) over ``total_steps`` optimizer
        steps, continuing from the current step; ``False`` if the schedule has no length.

        :class:`lit_alexnet.callbacks.TimeBudget` calls this when it shortens a run.
        """
        factory = self.scheduler_factory
        if factory is None or not _takes_total_steps(factory):
            return False
        # Lightning has no hook to replace a scheduler during a fit; the config's scheduler is
        # the object it steps, so the re-planned one goes there.
        config = self.trainer.lr_scheduler_configs[0]
        done = self.trainer.global_step
        # last_epoch=done - 1: the new scheduler takes its first step to `done`, where the old
        # one stands; the optimizer's param groups already hold its initial_lr.
        config.scheduler = _scheduler(
            factory,
            config.scheduler.optimizer,
            total_steps=max(total_steps, done + 1),
            last_epoch=done - 1,
        )
        return True


# Checkpoints of lit_alexnet 0.1 hold the net's arguments beside num_classes, not under `net`.
_FLAT_NET = ("towers", "norm", "pooling", "activation", "dropout", "init")


def _nested_net(net: Mapping[str, Any] | None, flat: dict[str, Any]) -> dict[str, Any]:
    """``net``, with the arguments of a checkpoint of the flat layout moved into it."""
    unknown = sorted(set(flat) - set(_FLAT_NET))
    if unknown:
        raise TypeError(
            f"LitAlexNet got unexpected arguments {unknown}: the network's arguments go in "
            "net={...} (lit_alexnet.AlexNet's), e.g. LitAlexNet(10, net={'towers': 1})"
        )
    return {**(net or {}), **flat}


def _scheduler(factory: SchedulerFactory, optimizer: Optimizer, **kwargs: Any) -> Any:
    """``factory(optimizer, **kwargs)``, a schedule too short for one cycle refused in one line."""
    try:
        return factory(optimizer, **kwargs)
    except ZeroDivisionError:
        if "total_steps" not in kwargs:  # not a schedule sized to the run: not this case
            raise
        # OneCycleLR divides by its warm-up's length in steps less one: zero for a one-step
        # warm-up (pct_start x total_steps = 1), which it meets on its first step.
        pct = getattr(factory, "keywords", {}).get("pct_start", "its pct_start")
        raise Invalid(
            f"scheduler: one cycle over {kwargs.get('total_steps')} optimizer steps with "
            f"pct_start={pct} warms up in a single step, which torch's OneCycleLR cannot "
            "take: train more steps (trainer.max_epochs, limit_train_batches), change "
            "scheduler.pct_start, or use scheduler=none"
        ) from None


def _takes_total_steps(factory: SchedulerFactory) -> bool:
    """Whether a scheduler factory still needs the run's length (OneCycleLR's total_steps)."""
    bound = getattr(factory, "keywords", {})
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return "total_steps" in params and "total_steps" not in bound
