"""How a fit ends: its last epoch validated (:class:`FinalValidation`), its last step in
``last.ckpt`` (:class:`LastCheckpoint`), and Ctrl-C at a step's end (:class:`StopAtStepEnd`)."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from typing_extensions import override


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
