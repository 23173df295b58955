"""TimeBudget, a run sized to its wall-clock budget (checked on a fake clock), and
FinalValidation, the validation of the fit's last epoch."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.loggers import CSVLogger
from torch.optim.lr_scheduler import OneCycleLR
from torch.utils.data import DataLoader, TensorDataset

from lit_alexnet import LitAlexNet
from lit_alexnet.callbacks import (
    EpochBar,
    FinalValidation,
    LastCheckpoint,
    StopAtStepEnd,
    TimeBudget,
)
from lit_alexnet.callbacks import budget as budget_module


class FakeClock:
    """time.time() for the callback: each training batch takes `step_s` seconds."""

    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now


class Tick(L.Callback):
    def __init__(self, clock: FakeClock, step_s: float) -> None:
        self.clock, self.step_s = clock, step_s
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self.clock.now += self.step_s
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


class Validations(L.Callback):
    """The (0-based) epochs in which a validation ran, sanity check left out."""

    def __init__(self) -> None:
        self.epochs: list[int] = []

    def on_validation_end(self, trainer: L.Trainer, *args: Any) -> None:
        if not trainer.sanity_checking:
            self.epochs.append(trainer.current_epoch)


def test_affordable_epochs_counts_the_steps_and_validations_left() -> None:
    budget = TimeBudget(minutes=2, reserve_s=10, start_time=0.0)
    # 120 s - 10 s reserve, 20 s gone: 90 s left. 10 steps of 1 s per epoch, 3 done; a
    # validation costs 4 s, every second epoch and after the last.
    args = dict(now=20.0, step_s=1.0, val_s=4.0, steps_per_epoch=10, epoch=0, batches_done=3)
    # 8 epochs: 77 steps + validations after epochs 2, 4, 6, 8 = 93 s > 90; 7 epochs: 67 steps
    # + validations after 2, 4, 6 and the last, 7 = 83 s.
    assert budget.affordable_epochs(**args, every_n=2, max_epochs=10) == 7
    assert budget.affordable_epochs(**args, every_n=2, max_epochs=5) == 5
    # Validating every epoch: 6 epochs = 57 + 24 = 81; 7 = 67 + 28 = 95.
    assert budget.affordable_epochs(**args, every_n=1, max_epochs=10) == 6
    # Out of time already: the current epoch is still finished.
    late = {**args, "now": 200.0}
    assert budget.affordable_epochs(**late, every_n=1, max_epochs=10) == 1


def test_a_re_plan_after_a_validation_does_not_count_it_again() -> None:
    budget = TimeBudget(minutes=2, reserve_s=10, start_time=0.0)
    # Epoch 0 (10 steps of 1 s) is done and validated: 86 s left. Each further epoch costs
    # 10 s of steps and 4 s of validation: 6 more epochs (7 in all) cost 84 s. Counting epoch
    # 0's validation again (88 s) would plan one epoch short.
    args = dict(now=24.0, step_s=1.0, val_s=4.0, steps_per_epoch=10, epoch=0, batches_done=10)
    assert budget.affordable_epochs(**args, every_n=1, max_epochs=10, validated=True) == 7
    assert budget.affordable_epochs(**args, every_n=1, max_epochs=10, validated=False) == 6


def fit_with_budget(
    monkeypatch: pytest.MonkeyPatch, minutes: float, max_epochs: int, every_n: int
) -> tuple[L.Trainer, Tick, TimeBudget]:
    clock = FakeClock()
    monkeypatch.setattr(budget_module, "time", clock)
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(6, 3, 224, 224), torch.randint(0, 3, (6,)))
    loader = DataLoader(data, batch_size=2)
    model = LitAlexNet(
        num_classes=3,
        init="kaiming",
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-4),
        scheduler=functools.partial(OneCycleLR, max_lr=1e-3, pct_start=0.25),
    )
    tick = Tick(clock, step_s=10.0)
    budget = TimeBudget(minutes, warmup_steps=1, measure_steps=2, reserve_s=0, start_time=clock.now)
    trainer = _trainer(max_epochs, every_n, [tick, budget, FinalValidation(), Validations()])
    trainer.fit(model, loader, loader)
    return trainer, tick, budget


def _trainer(
    max_epochs: int, every_n: int, callbacks: list[L.Callback], max_steps: int = -1
) -> L.Trainer:
    return L.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        max_epochs=max_epochs,
        check_val_every_n_epoch=every_n,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def test_a_slow_run_is_cut_to_whole_epochs_that_fit_and_its_cycle_still_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 3 batches of 10 s an epoch, 2 minutes; validations take 0 s on this clock. An epoch's
    # first batch is not timed, so the 3 timed steps are in after batch 2 of epoch 1: 50 s
    # gone, 5 batches done, 70 s left: 4 epochs (7 more batches). The re-plan after epoch 3's
    # validation (90 s gone, 30 s left, 3 batches to go) keeps 4.
    trainer, tick, budget = fit_with_budget(monkeypatch, minutes=2, max_epochs=10, every_n=3)
    assert budget.planned_epochs == 4
    assert trainer.current_epoch == 4  # epochs done
    assert trainer.global_step == 12
    # The run ended with a validation although 4 is not a multiple of every_n=3.
    validations = next(c for c in trainer.callbacks if isinstance(c, Validations))
    assert validations.epochs == [2, 3]
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(scheduler, OneCycleLR)
    assert scheduler.total_steps == 12
    # The cycle annealed to its end: the last step's lr is back near max_lr / (div * final_div),
    # after a peak near max_lr.
    assert len(tick.lrs) == 12
    assert tick.lrs[-1] < 1e-3 * 0.01
    assert max(tick.lrs) > 0.5e-3


def test_a_run_that_fits_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    trainer, _, budget = fit_with_budget(monkeypatch, minutes=60, max_epochs=2, every_n=1)
    assert budget.planned_epochs == 2
    assert trainer.current_epoch == 2
    assert trainer.lr_scheduler_configs[0].scheduler.total_steps == 6


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="minutes"):
        TimeBudget(minutes=0)


@pytest.mark.parametrize("final", [True, False])
def test_the_last_epoch_is_validated_whatever_the_interval(final: bool) -> None:
    # 3 epochs, validation every 2nd: Lightning alone validates after epoch 2 only (0-based 1),
    # and a run would report epoch 2's error as its result.
    torch.manual_seed(0)
    loader = DataLoader(
        TensorDataset(torch.randn(4, 3, 224, 224), torch.randint(0, 3, (4,))), batch_size=2
    )
    model = LitAlexNet(num_classes=3, optimizer=functools.partial(torch.optim.SGD, lr=1e-3))
    seen, last = Validations(), FinalValidation()
    trainer = _trainer(3, 2, [last, seen] if final else [seen])
    trainer.fit(model, loader, loader)
    assert seen.epochs == ([1, 2] if final else [1])
    if final:
        assert not last.needs_validation(trainer)


def test_a_fit_cut_between_validations_asks_for_one() -> None:
    # max_steps ends the fit in epoch 2 of 3, before its validation.
    torch.manual_seed(0)
    loader = DataLoader(
        TensorDataset(torch.randn(4, 3, 224, 224), torch.randint(0, 3, (4,))), batch_size=2
    )
    model = LitAlexNet(num_classes=3, optimizer=functools.partial(torch.optim.SGD, lr=1e-3))
    seen, last = Validations(), FinalValidation()
    trainer = _trainer(3, 2, [last, seen], max_steps=3)
    trainer.fit(model, loader, loader)
    assert trainer.global_step == 3 and seen.epochs == []
    assert last.needs_validation(trainer)


@pytest.mark.parametrize(
    ("epochs", "period", "steps"),
    [(2, {"every_n_train_steps": 3}, 8), (3, {"every_n_epochs": 2}, 12)],
    ids=["every-3-steps", "every-2-epochs"],
)
def test_last_ckpt_holds_the_final_step(
    tmp_path: Path, epochs: int, period: dict[str, int], steps: int
) -> None:
    # Epochs of 4 steps, saving every 3 steps (8 steps in all) or every 2 epochs (12):
    # Lightning's ModelCheckpoint ends with last.ckpt at step 6, or 8; this one at the last.
    torch.manual_seed(0)
    loader = DataLoader(
        TensorDataset(torch.randn(8, 3, 224, 224), torch.randint(0, 3, (8,))), batch_size=2
    )
    model = LitAlexNet(num_classes=3, optimizer=functools.partial(torch.optim.SGD, lr=1e-3))
    last = LastCheckpoint(
        dirpath=tmp_path, filename="epoch{epoch:03d}", save_top_k=1, save_last="link", **period
    )
    trainer = _trainer(epochs, 1, [last])
    trainer.fit(model, loader, loader)
    saved = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=False)
    assert trainer.global_step == steps
    assert saved["global_step"] == steps


def test_a_one_cycle_run_resumed_for_longer_anneals_over_the_new_length(tmp_path: Path) -> None:
    # One epoch of 4 steps, then resumed with max_epochs=2: the checkpoint's scheduler was
    # sized to 4 steps, and OneCycleLR refuses a fifth ("Tried to step 5 times").
    torch.manual_seed(0)
    loader = DataLoader(
        TensorDataset(torch.randn(4, 3, 224, 224), torch.randint(0, 3, (4,))), batch_size=1
    )

    def model() -> LitAlexNet:
        return LitAlexNet(
            num_classes=3,
            optimizer=functools.partial(torch.optim.SGD, lr=1e-3),
            scheduler=functools.partial(OneCycleLR, max_lr=1e-2, pct_start=0.5),
        )

    first = _trainer(1, 1, [])
    first.fit(model(), loader, loader)
    first.save_checkpoint(tmp_path / "one.ckpt")
    tick = Tick(FakeClock(), step_s=0.0)
    longer = _trainer(2, 1, [tick])
    longer.fit(model(), loader, loader, ckpt_path=tmp_path / "one.ckpt")
    assert longer.global_step == 8
    # torch's own OneCycleLR over the 8 steps of the whole run gives the resumed steps' lrs.
    param = torch.zeros(1, requires_grad=True)
    reference = OneCycleLR(
        torch.optim.SGD([param], lr=1e-3), max_lr=1e-2, total_steps=8, pct_start=0.5
    )
    lrs = []
    for _ in range(8):
        lrs.append(reference.get_last_lr()[0])
        reference.optimizer.step()
        reference.step()
    assert tick.lrs == pytest.approx(lrs[4:])


class MetricsSeen(L.Callback):
    """What the trainer held after each validation: val top-1 error and the lr; and each
    training batch's top-1 error, by epoch."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, float]] = []
        self.batch_errors: dict[int, list[float]] = {}

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        error = float(trainer.callback_metrics["train/top1_error_step"])
        self.batch_errors.setdefault(trainer.current_epoch + 1, []).append(error)

    def on_validation_end(self, trainer: L.Trainer, *args: Any) -> None:
        if not trainer.sanity_checking:
            error = float(trainer.callback_metrics["val/top1_error"])
            self.rows.append((error, trainer.optimizers[0].param_groups[0]["lr"]))


def test_learning_curves_are_drawn_from_the_runs_metrics_and_go_on_after_a_resume(
    tmp_path: Path,
) -> None:
    import json

    from PIL import Image

    from lit_alexnet.callbacks import LearningCurves

    torch.manual_seed(0)
    loader = DataLoader(
        TensorDataset(torch.randn(4, 3, 224, 224), torch.randint(0, 3, (4,))), batch_size=2
    )

    def fit(epochs: int, ckpt: Path | None = None) -> MetricsSeen:
        seen = MetricsSeen()
        model = LitAlexNet(
            num_classes=3,
            optimizer=functools.partial(torch.optim.SGD, lr=1e-3),
            scheduler=functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5),
        )
        trainer = L.Trainer(
            max_epochs=epochs,
            accelerator="cpu",
            default_root_dir=tmp_path,
            limit_val_batches=1,
            num_sanity_val_steps=0,
            callbacks=[LearningCurves(), seen],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(model, loader, loader, ckpt_path=ckpt)
        if ckpt is None:
            trainer.save_checkpoint(tmp_path / "two.ckpt")
        return seen

    first = fit(2)
    rows = json.loads((tmp_path / "curves.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [(r["val/top1_error"], r["lr"]) for r in rows] == first.rows
    assert all("train/loss" in r and "val/loss" in r for r in rows)
    # The running training error of Figure 1: the mean of the epoch's batches (of one size).
    for r in rows:
        batches = first.batch_errors[int(r["epoch"])]
        assert r["train/top1_error"] == pytest.approx(sum(batches) / len(batches))
    resumed = fit(3, tmp_path / "two.ckpt")
    rows = json.loads((tmp_path / "curves.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [(r["val/top1_error"], r["lr"]) for r in rows] == first.rows + resumed.rows
    with Image.open(tmp_path / "curves.png") as picture:
        assert picture.format == "PNG" and picture.width > 600


class _Logs(BoringModel):
    """Logs the package's progress-bar metrics under the names LitAlexNet gives them."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        out = super().training_step(batch, batch_idx)
        opts: dict[str, Any] = dict(on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/loss", out["loss"], **opts)
        self.log("train/top1_error", 0.5, **opts)
        return out

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        self.log("val/top1_error", 0.25, prog_bar=True)


def test_the_bar_counts_epochs_from_one_and_shows_short_names_only(tmp_path: Path) -> None:
    bar = EpochBar()
    trainer = L.Trainer(
        max_epochs=3,
        limit_train_batches=2,
        limit_val_batches=1,
        callbacks=[bar],
        logger=CSVLogger(tmp_path),  # a logger puts v_num in the bar
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    model = _Logs()
    trainer.fit(model)
    # Lightning's own bar says "Epoch 2/2" for the last of three epochs.
    assert bar._get_train_description(trainer.current_epoch - 1).strip() == "Epoch 3/3"
    assert bar._get_train_description(0).strip() == "Epoch 1/3"
    assert set(bar.get_metrics(trainer, model)) == {"loss", "err", "val err"}
    assert bar.get_metrics(trainer, model)["val err"] == pytest.approx(0.25)


def test_learning_curves_load_matplotlib_before_the_first_epoch() -> None:
    # A Ctrl-C inside a C extension's first import is an ImportError, not KeyboardInterrupt:
    # the first epoch's end, where users press it, must not be where matplotlib loads.
    code = (
        "import sys, types\n"
        "from lit_alexnet.callbacks import LearningCurves\n"
        "assert 'matplotlib.backends.backend_agg' not in sys.modules\n"
        "LearningCurves().setup(types.SimpleNamespace(is_global_zero=True), None, 'fit')\n"
        "print('matplotlib.backends.backend_agg' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr


class _Interrupts(L.Callback):
    """Sends this process SIGINT `times` times as training step `step` starts: from inside a
    finalizer, where Python prints and drops the KeyboardInterrupt of its default handler, or
    from the hook itself."""

    def __init__(self, step: int, times: int = 1, in_finalizer: bool = True) -> None:
        self.step, self.times, self.in_finalizer = step, times, in_finalizer

    def _send(self) -> None:
        for _ in range(self.times):
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))  # a pending signal's handler runs between bytecodes

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step != self.step:
            return
        if not self.in_finalizer:
            self._send()
            return

        class Finalised:
            def __del__(self_) -> None:
                self._send()

        Finalised()


def _fit_interrupted(callbacks: list[L.Callback]) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=3,
        limit_train_batches=4,
        limit_val_batches=1,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    try:
        trainer.fit(BoringModel())
    except SystemExit as exit:  # how Lightning ends an interrupted fit
        assert exit.code == 1
    return trainer


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.usefixtures("sigint_handled")
def test_a_ctrl_c_that_python_would_drop_stops_the_fit_after_its_step() -> None:
    # Without the callback the interrupt is lost and the fit runs all 12 steps (CI's ctrl-c
    # test once trained on past its Ctrl-C); with it, step 5 ends and the fit stops there.
    lost = _fit_interrupted([_Interrupts(step=5)])
    assert not lost.interrupted and lost.global_step == 12
    stopped = _fit_interrupted([StopAtStepEnd(), _Interrupts(step=5)])
    assert stopped.interrupted and stopped.global_step == 6


@pytest.mark.usefixtures("sigint_handled")
def test_a_second_ctrl_c_stops_at_once() -> None:
    twice = _Interrupts(step=5, times=2, in_finalizer=False)
    trainer = _fit_interrupted([StopAtStepEnd(), twice])
    assert trainer.interrupted and trainer.global_step == 5  # step 5 never ended


def test_the_handler_is_put_back_after_a_fit() -> None:
    before = signal.getsignal(signal.SIGINT)
    trainer = _fit_interrupted([StopAtStepEnd()])
    assert not trainer.interrupted and trainer.global_step == 12
    assert signal.getsignal(signal.SIGINT) is before
