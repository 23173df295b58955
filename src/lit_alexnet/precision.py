"""``trainer.precision=auto``: the numeric precision this machine runs fastest without loss.

bfloat16 autocast pays only where the hardware computes in bfloat16: a GPU of compute
capability 8.0 or newer, or a CPU with AVX-512-BF16 or AMX. Elsewhere every bf16 kernel is
emulated: on a 2-core Intel Xeon (AVX-512-BF16, AMX) held to AVX2 with ONEDNN_MAX_CPU_ISA and
ATEN_CPU_CAPABILITY, an AlexNet training step at batch 32 took 22 s under bf16 autocast against
1.2 s in float32 (``benchmarks/model-cpu-avx2-emulated.md``); a real AVX2 CPU measured 4x.
Older GPUs with tensor cores (7.x) get float16 autocast with loss scaling instead.

The choice is a pure function of a :class:`MachineReport`, so each case is testable without
the hardware; :func:`machine_report` reads the real one. On several GPUs the weakest of those
the run uses decides; reading them leaves CUDA uninitialised in this process, so that a
strategy may still fork its workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass

import torch

AUTO = "auto"
# oneDNN's ISA names (ONEDNN_MAX_CPU_ISA) from which on bfloat16 dot products are native, and
# DEFAULT and ALL, which cap nothing (oneDNN's dnnl_cpu_isa_t).
_ONEDNN_BF16_ISAS = (
    "AVX512_CORE_BF16",
    "AVX10_1_512",
    "AVX512_CORE_FP16",
    "AVX10_1_512_AMX",
    "AVX512_CORE_AMX",
    "AVX10_1_512_AMX_FP16",
    "AVX512_CORE_AMX_FP16",
    "AVX10_2_512",
    "AVX10_2_512_AMX_2",
    "DEFAULT",
    "ALL",
)


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo; elsewhere, platform's answer): what every
    speed figure names."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class MachineReport:
    """What the machine says about its arithmetic, as far as the precision choice needs."""

    cuda: bool = False
    cuda_name: str = ""
    cuda_capability: tuple[int, int] = (0, 0)
    # torch.backends.cpu.get_cpu_capability(): "AVX512", "AVX2", "DEFAULT", ... (ATen's
    # kernels; ATEN_CPU_CAPABILITY lowers it).
    cpu_capability: str = "DEFAULT"
    cpu_avx512_bf16: bool = False
    cpu_amx: bool = False
    # ONEDNN_MAX_CPU_ISA, if set: caps what oneDNN's convolutions and matmuls use.
    onednn_max_isa: str | None = None

    @property
    def cpu_native_bf16(self) -> bool:
        """Whether the CPU computes bfloat16 in hardware *and* torch's kernels may use it."""
        if not (self.cpu_avx512_bf16 or self.cpu_amx):
            return False
        if not self.cpu_capability.upper().startswith("AVX512"):
            return False  # ATen held below AVX-512 (ATEN_CPU_CAPABILITY)
        isa = self.onednn_max_isa
        return isa is None or isa.upper() in _ONEDNN_BF16_ISAS

    def describe_cpu(self) -> str:
        """``"AVX512 kernels, has AVX-512-BF16 and AMX"``: what bf16 depends on, in words."""
        features = [
            n for n, on in (("AVX-512-BF16", self.cpu_avx512_bf16), ("AMX", self.cpu_amx)) if on
        ]
        text = f"{self.cpu_capability} kernels"
        if features:
            text += ", has " + " and ".join(features)
        if self.onednn_max_isa:
            text += f", oneDNN held to {self.onednn_max_isa}"
        return text


Gpu = tuple[str, tuple[int, int]]  # name, compute capability

# Run in a child process where CUDA is not yet initialised here: reading a capability
# initialises CUDA, after which Lightning's fork-started strategies (ddp_fork) refuse to start.
_GPU_QUERY = (
    "import json, torch; print(json.dumps([[torch.cuda.get_device_name(i), "
    "torch.cuda.get_device_capability(i)] for i in range(torch.cuda.device_count())]))"
)


def cuda_gpus() -> list[Gpu]:
    """Each visible GPU's name and compute capability; CUDA is not initialised by asking."""
    # NVML counts the GPUs without initialising CUDA (torch.cuda.device_count's note).
    if torch.cuda.device_count() == 0:
        return []
    if not torch.cuda.is_initialized():
        try:
            out = subprocess.run(
                [sys.executable, "-c", _GPU_QUERY],
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            ).stdout
            return [(name, (int(cap[0]), int(cap[1]))) for name, cap in json.loads(out)]
        except (OSError, subprocess.SubprocessError, ValueError):
            pass  # asked here instead: only fork-started strategies mind
    count = torch.cuda.device_count()
    return [
        (torch.cuda.get_device_name(i), torch.cuda.get_device_capability(i)) for i in range(count)
    ]


def used_gpus(devices: object, count: int) -> list[int]:
    """The indices of the GPUs Lightning's ``devices`` setting takes out of ``count``:
    ``"auto"``/``-1`` all, ``n`` the first n, ``[0, 2]`` or ``"0,2"`` those."""
    text = str(devices).strip()
    if devices is None or text in (AUTO, "-1"):
        return list(range(count))
    if isinstance(devices, int) or text.isdigit():
        return list(range(min(int(text), count)))
    if isinstance(devices, str):
        items: list[object] = [d for d in text.split(",") if d.strip()]
    else:
        items = list(devices)  # type: ignore[call-overload]
    return [int(str(d)) for d in items if int(str(d)) < count]


def machine_report(devices: object = AUTO) -> MachineReport:
    """The report of this process's machine, for a run on ``devices`` (Lightning's setting):
    on several GPUs, the weakest of those it uses."""
    gpus = cuda_gpus()
    used = [gpus[i] for i in used_gpus(devices, len(gpus))]
    name, capability = min(used, key=lambda gpu: gpu[1], default=("", (0, 0)))
    cpu = getattr(torch, "cpu", None)
    return MachineReport(
        cuda=bool(gpus),
        cuda_name=name,
        cuda_capability=capability,
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        cpu_avx512_bf16=bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()),
        cpu_amx=bool(getattr(cpu, "_is_amx_tile_supported", lambda: False)()),
        onednn_max_isa=os.environ.get("ONEDNN_MAX_CPU_ISA") or None,
    )


def uses_gpu(accelerator: str, report: MachineReport) -> bool:
    """Whether Lightning's ``accelerator`` setting puts this run on a CUDA GPU."""
    return accelerator in ("gpu", "cuda") or (accelerator == AUTO and report.cuda)


def choose_precision(report: MachineReport, accelerator: str = AUTO) -> tuple[str, str]:
    """Lightning's ``precision`` for a run on ``accelerator``, and why, in one phrase."""
    if uses_gpu(accelerator, report):
        major, minor = report.cuda_capability
        gpu = f"{report.cuda_name or 'the GPU'} (compute capability {major}.{minor})"
        if major >= 8:
            return "bf16-mixed", f"{gpu} computes bfloat16 natively"
        if major >= 7:
            return "16-mixed", f"{gpu} has float16 tensor cores but no bfloat16"
        return "32-true", f"{gpu} has no tensor cores"
    if accelerator not in (AUTO, "cpu"):
        return "32-true", f"no automatic choice for accelerator={accelerator!r}"
    cpu = f"this CPU ({report.describe_cpu()})"
    if report.cpu_native_bf16:
        return "bf16-mixed", f"{cpu} computes bfloat16 natively"
    return "32-true", f"{cpu} would emulate bfloat16, several times slower than float32"


def auto_precision(accelerator: str = AUTO, devices: object = AUTO) -> str:
    """:func:`choose_precision` for this machine and Lightning's ``accelerator`` and
    ``devices``, said once at the start of the run."""
    from lightning.pytorch.utilities import rank_zero_info

    precision, why = choose_precision(machine_report(devices), accelerator)
    rank_zero_info(f"precision {precision} (trainer.precision=auto: {why})")
    return precision
