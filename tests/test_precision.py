"""trainer.precision=auto: bfloat16 only where the hardware computes it, for each case."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from lit_alexnet.job import trainer_precision
from lit_alexnet.precision import MachineReport, choose_precision, machine_report, used_gpus

AVX512_BF16 = MachineReport(cpu_capability="AVX512", cpu_avx512_bf16=True)
AMX = MachineReport(cpu_capability="AVX512", cpu_amx=True)
AVX512_ONLY = MachineReport(cpu_capability="AVX512")
AVX2 = MachineReport(cpu_capability="AVX2")


def gpu(major: int, minor: int) -> MachineReport:
    return MachineReport(cuda=True, cuda_name="GPU", cuda_capability=(major, minor))


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        (gpu(9, 0), "bf16-mixed"),  # H100
        (gpu(8, 0), "bf16-mixed"),  # A100
        (gpu(7, 5), "16-mixed"),  # T4: float16 tensor cores, no bfloat16
        (gpu(7, 0), "16-mixed"),  # V100
        (gpu(6, 1), "32-true"),  # Pascal: no tensor cores
        (AVX512_BF16, "bf16-mixed"),
        (AMX, "bf16-mixed"),
        (AVX512_ONLY, "32-true"),  # AVX-512 without its bf16 extension emulates bf16
        (AVX2, "32-true"),
        (MachineReport(), "32-true"),  # ARM, or an unknown CPU
    ],
)
def test_auto_precision_follows_the_hardware(report: MachineReport, expected: str) -> None:
    chosen, why = choose_precision(report)
    assert chosen == expected
    assert why  # the run says why


def test_a_bf16_cpu_held_to_avx2_by_aten_or_onednn_counts_as_avx2() -> None:
    # ATEN_CPU_CAPABILITY=avx2 lowers the reported capability; ONEDNN_MAX_CPU_ISA caps oneDNN.
    held_aten = MachineReport(cpu_capability="AVX2", cpu_avx512_bf16=True, cpu_amx=True)
    held_onednn = MachineReport(cpu_capability="AVX512", cpu_amx=True, onednn_max_isa="AVX2")
    held_below_bf16 = MachineReport(
        cpu_capability="AVX512", cpu_avx512_bf16=True, onednn_max_isa="AVX512_CORE"
    )
    allowed = MachineReport(cpu_capability="AVX512", cpu_amx=True, onednn_max_isa="avx512_core_amx")
    assert choose_precision(held_aten)[0] == "32-true"
    assert choose_precision(held_onednn)[0] == "32-true"
    assert choose_precision(held_below_bf16)[0] == "32-true"
    assert choose_precision(allowed)[0] == "bf16-mixed"


def test_the_accelerator_setting_decides_which_device_is_asked() -> None:
    both = MachineReport(cuda=True, cuda_capability=(7, 5), cpu_capability="AVX2")
    assert choose_precision(both, "auto")[0] == "16-mixed"
    assert choose_precision(both, "gpu")[0] == "16-mixed"
    assert choose_precision(both, "cpu")[0] == "32-true"
    assert choose_precision(AVX512_BF16, "mps")[0] == "32-true"


def test_the_report_reads_onednns_cap_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert machine_report().onednn_max_isa == "AVX2"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert machine_report().onednn_max_isa is None


def test_an_explicit_precision_wins_and_auto_is_resolved_and_said(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("lit_alexnet.precision.machine_report", lambda devices: AVX2)
    explicit = OmegaConf.create({"precision": "bf16-mixed", "accelerator": "cpu"})
    assert trainer_precision(explicit) == "bf16-mixed"
    auto = OmegaConf.create({"precision": "auto", "accelerator": "auto"})
    with caplog.at_level(logging.INFO):
        assert trainer_precision(auto) == "32-true"
    assert "precision 32-true (trainer.precision=auto: this CPU (AVX2 kernels)" in caplog.text
    monkeypatch.setattr("lit_alexnet.precision.machine_report", lambda devices: AMX)
    assert trainer_precision(auto) == "bf16-mixed"


@pytest.mark.parametrize(
    ("devices", "used"),
    [
        ("auto", [0, 1, 2]),
        (-1, [0, 1, 2]),
        ("-1", [0, 1, 2]),
        (2, [0, 1]),
        ("1", [0]),
        ([2], [2]),
        ([0, 2], [0, 2]),
        ("1,2", [1, 2]),
        ("2,", [2]),
    ],
)
def test_the_gpus_a_run_uses_are_those_lightnings_devices_setting_names(
    devices: object, used: list[int]
) -> None:
    # Lightning's devices: an int is the first n, a list or "i,j" are indices (Trainer docs).
    assert used_gpus(devices, count=3) == used


def test_the_weakest_gpu_the_run_uses_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [("H100", (9, 0)), ("T4", (7, 5)), ("P100", (6, 0))]
    monkeypatch.setattr("lit_alexnet.precision.cuda_gpus", lambda: gpus)
    assert machine_report([0]).cuda_capability == (9, 0)
    assert choose_precision(machine_report([0]))[0] == "bf16-mixed"
    # A T4 beside the H100 cannot compute bfloat16 natively: the pair gets float16.
    both = machine_report([0, 1])
    assert (both.cuda_name, both.cuda_capability) == ("T4", (7, 5))
    assert choose_precision(both)[0] == "16-mixed"
    assert choose_precision(machine_report("auto"))[0] == "32-true"  # the P100 too


@pytest.mark.gpu
def test_reading_the_gpus_leaves_cuda_uninitialised_for_forked_workers() -> None:
    # In a fresh process: this test process may have initialised CUDA already.
    code = (
        "import torch; from lit_alexnet.precision import machine_report; "
        "r = machine_report(); assert r.cuda and r.cuda_capability > (0, 0), r; "
        "assert not torch.cuda.is_initialized(), 'CUDA initialised'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


# oneDNN's dnnl_cpu_isa_t masks, as its documentation lists them: each ISA's bits include those
# of the ISAs it extends, and bfloat16 dot products come with AVX512_CORE_BF16's (0xe7).
ONEDNN_ISA_MASKS = {
    "SSE41": 0x1,
    "AVX": 0x3,
    "AVX2": 0x7,
    "AVX2_VNNI": 0xF,
    "AVX2_VNNI_2": 0x1F,
    "AVX512_CORE": 0x27,
    "AVX512_CORE_VNNI": 0x67,
    "AVX512_CORE_BF16": 0xE7,
    "AVX10_1_512": 0x1EF,
    "AVX512_CORE_FP16": 0x1EF,
    "AVX10_1_512_AMX": 0xFEF,
    "AVX512_CORE_AMX": 0xFEF,
    "AVX10_1_512_AMX_FP16": 0x1FEF,
    "AVX512_CORE_AMX_FP16": 0x1FEF,
}


@pytest.mark.parametrize("isa", [*ONEDNN_ISA_MASKS, "DEFAULT"])
def test_every_onednn_cap_keeps_bf16_exactly_when_it_allows_bf16_dot_products(isa: str) -> None:
    native = isa == "DEFAULT" or ONEDNN_ISA_MASKS[isa] & 0xE7 == 0xE7
    report = MachineReport(cpu_capability="AVX512", cpu_amx=True, onednn_max_isa=isa)
    assert choose_precision(report)[0] == ("bf16-mixed" if native else "32-true")
