"""`python -m lit_alexnet.bench gpu` and the `model.compile` switch it measures.

Without a GPU the command must still run end to end and say, part by part, that it skipped;
the parts' own machinery (the fit timer, the fits through the data module and the two-device
strategy) is checked here on the CPU, where it runs the same code a GPU run does.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import pytest
import torch
from hydra.errors import ConfigCompositionException
from torch import nn

from lit_alexnet import LitAlexNet, TwoDeviceModelParallelStrategy
from lit_alexnet.bench import gpu
from lit_alexnet.bench.__main__ import main
from lit_alexnet.bench.gpu import (
    END_TO_END,
    PARTS,
    STEP_BF16,
    STEP_FP32,
    GpuBenchSettings,
    Target,
    fit_images_per_second,
    format_gpu_report,
    run_gpu_benchmark,
    targets,
)
from lit_alexnet.bench.model import PAPER, TORCHVISION, format_model_results
from lit_alexnet.job import build_model

if TYPE_CHECKING:
    from conftest import Composer

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- the command


def test_without_a_gpu_every_part_says_skipped_and_the_command_exits_0(tmp_path: Path) -> None:
    output = tmp_path / "gpu.md"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # a GPU machine, too, runs this as a CPU
    done = subprocess.run(
        [sys.executable, "-m", "lit_alexnet.bench", "gpu", "--output", str(output)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for part in PARTS:
        assert f"{part}: no GPU: skipped" in lines
    assert "targets: none measured (no GPU)" in lines
    assert not any("ratio" in line for line in lines)  # no figure is made up
    report = output.read_text(encoding="utf-8")
    assert "GPU: none" in report and "no GPU figure was measured" in report
    assert f"- CPU: {lines[0].removeprefix('CPU: ')}" in report  # the CPU is named
    assert "python -m lit_alexnet.bench gpu --output" in report
    for part in PARTS:
        assert f"| {part} | no GPU: skipped | |" in report


def test_bad_settings_are_refused_with_exit_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gpu", "--fit-steps", "50"]) == 2  # no batch left after the 50 of warm-up
    assert "fit_warmup" in capsys.readouterr().err


def _step_figures(ours: float, theirs: float) -> dict[str, Any]:
    """A model-step part's figures: 5 images per step, steps of ``ours`` and ``theirs`` ms."""
    return {
        "models": {
            PAPER: {"ms_median": ours, "images_per_s": 5000 / ours},
            TORCHVISION: {"ms_median": theirs, "images_per_s": 5000 / theirs},
        }
    }


def _fake_step(
    name: str, settings: GpuBenchSettings, device: torch.device, figures: dict[str, Any]
) -> str:
    # fp32: ours 11 ms against torchvision's 10 ms; bf16: 5 ms against 5 ms, 1000 images/s.
    figures[name] = _step_figures(11.0, 10.0) if name == STEP_FP32 else _step_figures(5.0, 5.0)
    return "figures"


class _FakeTimer:
    images_per_s = 800.0
    warmup_s = 1.5


def test_on_a_gpu_a_failing_part_is_an_error_the_others_run_and_targets_are_judged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The orchestration of a GPU run, with the measurements themselves replaced."""

    def boom(*args: Any) -> str:
        raise RuntimeError("boom\nsecond line")

    def against_plain(name: str, *args: Any) -> str:
        if name == gpu.COMPILE:
            return "1.2x"
        raise RuntimeError("boom\nsecond line")  # the two-device part

    machine = gpu.report.machine_description()  # this CPU's: the real one asks CUDA about the GPU
    monkeypatch.setattr(gpu.report, "machine_description", lambda load_before: machine)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake H100")
    monkeypatch.setattr(gpu, "_step_part", _fake_step)
    monkeypatch.setattr(gpu, "_dali_part", boom)
    monkeypatch.setattr("lit_alexnet.bench.photos.ensure_photo_dataset", lambda *a: tmp_path)
    monkeypatch.setattr(gpu, "end_to_end_fit", lambda *a, **k: _FakeTimer())  # the real part
    monkeypatch.setattr(gpu, "_against_plain", against_plain)

    report = run_gpu_benchmark(GpuBenchSettings())
    text = format_gpu_report(report)
    assert report["errors"] == [gpu.DALI, gpu.TWO_DEVICE]
    assert [p.name for p in report["parts"]] == list(PARTS)
    assert "DALI mixed decoding: error: RuntimeError: boom" in text.splitlines()
    assert "model.compile: 1.2x" in text.splitlines()
    assert "two-device strategy: error: RuntimeError: boom" in text.splitlines()
    assert "end-to-end fit: 800 images/s against 1000 model-only" in text
    # 11 / 10 = 1.10 and 5 / 5 = 1.00 (<= 1.10); 800 / 1000 = 0.80 (>= 0.80).
    assert text.splitlines()[-4:] == [
        "ours/torchvision step-time ratio, fp32: 1.10 (target <= 1.10): met",
        "ours/torchvision step-time ratio, bf16 channels-last: 1.00 (target <= 1.10): met",
        "end-to-end/model-only images-per-second ratio: 0.80 (target >= 0.80): met",
        "errors in: DALI mixed decoding, two-device strategy",
    ]
    markdown = format_gpu_report(report, markdown=True)
    assert "- GPU: Fake H100" in markdown
    assert "## Targets" in markdown
    assert "- errors in: DALI mixed decoding, two-device strategy" in markdown
    monkeypatch.setenv("WANDB_SILENT", "true")  # what the command sets
    assert main(["gpu"]) == 1  # the command's exit status after an error


class _Session:
    """What the nox gpu session calls of a nox.Session, recorded."""

    def __init__(self, fail_tests: bool) -> None:
        self.posargs = ["--images", "8"]
        self.fail_tests = fail_tests
        self.runs: list[tuple[str, ...]] = []

    def install(self, *args: str) -> None:
        pass

    def run(self, *args: str, **kwargs: Any) -> None:
        import nox.command

        self.runs.append(args)
        if args[0] == "pytest" and self.fail_tests:
            raise nox.command.CommandFailed("1 failed")

    def error(self, message: str) -> None:
        raise RuntimeError(message)  # as nox's ends the session, failed


@pytest.mark.parametrize("fail_tests", [False, True])
def test_nox_gpu_runs_the_gpu_tests_then_every_measurement(fail_tests: bool) -> None:
    pytest.importorskip("nox")
    spec = importlib.util.spec_from_file_location("noxfile", ROOT / "noxfile.py")
    assert spec is not None and spec.loader is not None
    noxfile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(noxfile)
    session = _Session(fail_tests)
    if fail_tests:  # measured all the same, and the session fails
        with pytest.raises(RuntimeError, match="gpu-marked tests failed"):
            noxfile.gpu(session)
    else:
        noxfile.gpu(session)
    tests, bench = session.runs
    assert tests[:3] == ("pytest", "-m", "gpu")
    command = ("python", "-m", "lit_alexnet.bench", "gpu", "--output", "benchmarks/gpu.md")
    assert bench == (*command, "--images", "8")


# ----------------------------------------------------------------------------- pure logic


def test_ratios_are_ours_over_theirs() -> None:
    figures = {STEP_FP32: _step_figures(11.0, 10.0), STEP_BF16: _step_figures(1.0, 2.0)}
    figures[END_TO_END] = 4000.0  # images/s, against 5000 model-only in bf16
    values = [target.value for target in targets(figures)]
    assert values == pytest.approx([1.10, 0.50, 0.80])
    assert [target.value for target in targets({STEP_BF16: figures[STEP_BF16]})] == [0.5]


@pytest.mark.parametrize(
    ("target", "line"),
    [
        (Target("e2e", 0.8, 0.80, True), "e2e: 0.80 (target >= 0.80): met"),
        (Target("e2e", 0.794, 0.80, True), "e2e: 0.79 (target >= 0.80): MISSED"),
        (Target("step", 1.104, 1.10, False), "step: 1.10 (target <= 1.10): met"),  # as printed
        (Target("step", 1.106, 1.10, False), "step: 1.11 (target <= 1.10): MISSED"),
        (Target("step", 0.5, 1.10, False), "step: 0.50 (target <= 1.10): met"),
    ],
)
def test_a_target_line_gives_the_value_the_bound_and_the_verdict(target: Target, line: str) -> None:
    assert target.line == line


def test_a_model_report_of_a_gpu_run_names_the_gpu_and_a_cpu_report_does_not() -> None:
    figure = {"ms_median": 10.0, "ms_min": 9.0, "ms_all": [10.0], "images_per_s": 100.0}
    machine = {
        "cpu": "Some CPU",
        "cpu_kernels": "AVX2",
        "native_bf16": False,
        "logical_cores": 2,
        "usable_cores": 2,
        "torch": "2.x",
        "threads": 2,
        "load_average_1min": 0.0,
        "python": "3.11",
    }
    results = {
        "machine": machine,
        "batch_size": 1,
        "steps": 1,
        "warmup": 0,
        "precision": "32",
        "channels_last": False,
        "optimizer": "sgd",
        "models": {PAPER: figure, TORCHVISION: figure},
        "ratio": 1.0,
        "lrn_speedup": 1.0,
        "lrn_relu": {"48x55x55": 1.5, "128x27x27": 1.2},
        "device": "cpu",
        "gpu": None,
    }
    assert "GPU:" not in format_model_results(results)
    on_gpu = format_model_results({**results, "device": "cuda:0", "gpu": "Fake H100"})
    assert "GPU: Fake H100 (cuda:0)" in on_gpu


# ----------------------------------------------------------------------------- fits, on the CPU


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 2)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> Any:
        images, labels = batch
        return nn.functional.cross_entropy(self.layer(images), labels)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_the_fit_timer_counts_the_images_of_the_batches_after_its_warmup() -> None:
    sizes = [1, 2, 3, 4, 5]
    batches = [(torch.randn(n, 3), torch.zeros(n, dtype=torch.long)) for n in sizes]
    timer = fit_images_per_second(
        _Tiny(), steps=4, warmup=2, device=CPU, precision="32-true", batches=batches
    )
    assert timer.batches == 4  # max_steps ends the fit
    assert timer.images == 3 + 4  # batches 3 and 4: after the warm-up, up to max_steps
    assert timer.images_per_s > 0 and timer.warmup_s >= 0


def test_a_fit_that_ends_within_its_warmup_is_an_error_not_a_figure() -> None:
    batches = [(torch.randn(2, 3), torch.zeros(2, dtype=torch.long))] * 2
    timer = fit_images_per_second(
        _Tiny(), steps=2, warmup=3, device=CPU, precision="32-true", batches=batches
    )
    with pytest.raises(RuntimeError, match="within its 3 warm-up batches"):
        _ = timer.images_per_s


def test_the_two_device_fit_runs_through_the_strategy() -> None:
    torch.manual_seed(0)
    model = LitAlexNet(5)
    batches = [(torch.randn(2, 3, 224, 224), torch.tensor([0, 1]))] * 3
    strategy = TwoDeviceModelParallelStrategy(["cpu", "cpu"])
    timer = fit_images_per_second(
        model,
        steps=3,
        warmup=1,
        device=CPU,
        precision="32-true",
        batches=batches,
        strategy=strategy,
    )
    assert timer.images == 4
    assert model.trainer.strategy is strategy


@pytest.mark.dali
def test_the_end_to_end_fit_reads_the_photo_set_through_dali(tmp_path: Path) -> None:
    from lit_alexnet.bench.photos import ensure_photo_dataset

    photos = ensure_photo_dataset(tmp_path / "cache", 8)
    timer = gpu.end_to_end_fit(
        photos, batch_size=4, steps=3, warmup=1, device=CPU, precision="32-true"
    )
    # Two batches of four per epoch: the third step is in the second epoch.
    assert timer.batches == 3 and timer.images == 8


# ----------------------------------------------------------------------------- model.compile


def _fake_compile(calls: list[str]) -> Any:
    """A stand-in for torch.compile: records what it compiled and each call of the result."""

    def compile(fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(f"compile {type(fn.__self__).__name__}")

        def compiled(*a: Any, **k: Any) -> Any:
            calls.append("call")
            return fn(*a, **k)

        return compiled

    return compile


@pytest.mark.parametrize("switch", [True, False])
def test_model_compile_compiles_the_net_in_place_once_for_training(
    switch: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(torch, "compile", _fake_compile(calls))
    torch.manual_seed(0)
    model = LitAlexNet(5, compile=switch)
    keys = list(model.state_dict())
    batches = [(torch.randn(2, 3, 224, 224), torch.tensor([0, 1]))] * 2
    fit_images_per_second(
        model, steps=2, warmup=1, device=CPU, precision="32-true", batches=batches
    )
    model.configure_model()  # as a second trainer.fit or test would: not compiled again
    if switch:
        assert calls == ["compile AlexNet", "call", "call"]  # the training steps ran it
    else:
        assert calls == []
    assert list(model.state_dict()) == keys  # checkpoints keep the plain net's keys
    assert "compile" not in model.hparams  # a runtime choice, not saved with the weights


def test_model_compile_is_a_config_switch(composed: Composer) -> None:
    assert build_model(composed(), 10).compile_net is False
    assert build_model(composed("model.compile=true"), 10).compile_net is True
    with pytest.raises(ConfigCompositionException, match="compile"):
        composed("model.compile=maybe")
