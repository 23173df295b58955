"""What every benchmark's report shares: the machine and versions it ran with, and its layout
(the same lines printed, or written as a markdown file)."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator, Sequence
from typing import Any

import lightning
import PIL
import torch
import torchvision
from PIL import features

from lit_alexnet.data.parallel import usable_cpus
from lit_alexnet.precision import cpu_name, machine_report


def machine_description(load_before: float = float("nan")) -> dict[str, Any]:
    """CPU model, core counts, threads of this process and the versions of the libraries the
    figures depend on (nvidia-dali ``absent`` without it); the 1-minute load average now and
    ``load_before`` (taken before the run: other processes' alone)."""
    try:
        from nvidia import dali

        dali_version = str(dali.__version__)
    except ImportError:
        dali_version = "absent"
    turbo = features.version("libjpeg_turbo") if features.check_feature("libjpeg_turbo") else None
    report = machine_report()
    return {
        "cpu": cpu_name(),
        # What bf16 speed and oneDNN's kernels depend on; ATEN_CPU_CAPABILITY and
        # ONEDNN_MAX_CPU_ISA can hold a machine to less than its CPU has.
        "cpu_kernels": report.describe_cpu(),
        "native_bf16": report.cpu_native_bf16,
        "logical_cores": os.cpu_count() or 0,
        "usable_cores": usable_cpus(),
        "threads": torch.get_num_threads(),
        # Other work on the machine skews CPU timings; the load average records it.
        "load_average_1min": load_average(),
        "load_average_1min_before": load_before,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "CUDA": str(torch.version.cuda),
        "torchvision": torchvision.__version__,
        "lightning": lightning.__version__,
        "nvidia-dali": dali_version,
        "Pillow": PIL.__version__ + (f" (libjpeg-turbo {turbo})" if turbo else ""),
    }


def load_average() -> float:
    """The 1-minute load average; NaN where the system has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` inside (``None``: left as they are)."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def machine_lines(machine: dict[str, Any], software: str, *more: str) -> list[str]:
    """The bullets every report starts with: the CPU and the kernels torch uses on it; torch,
    ``software`` (more libraries, or threads) and Python, with the 1-minute load average
    before and after the run; then ``more``."""
    m, before = machine, machine.get("load_average_1min_before", float("nan"))
    return [
        f"CPU: {m['cpu']} ({m['usable_cores']} usable of {m['logical_cores']} logical cores)",
        f"CPU kernels: {m['cpu_kernels']}; bfloat16 native: {'yes' if m['native_bf16'] else 'no'}",
        f"torch {m['torch']}, {software}, Python {m['python']}; 1-min load average "
        f"{before:.2f} before, {m['load_average_1min']:.2f} after",
        *more,
    ]


def table(
    header: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool, left: int = 1
) -> list[str]:
    """``rows`` under ``header``, the first ``left`` columns flush left and the others (the
    figures) flush right: aligned text, or a markdown table."""
    if markdown:
        rule = "|".join(["---"] * left + ["---:"] * (len(header) - left))
        return [f"| {' | '.join(header)} |", f"|{rule}|", *(f"| {' | '.join(r)} |" for r in rows)]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(c.ljust(widths[i]) if i < left else c.rjust(widths[i]) for i, c in enumerate(r))
        for r in [header, *rows]
    ]


def document(title: str, command: str | None, bullets: Sequence[str], body: Sequence[str]) -> str:
    """A markdown report: ``# title``, ``command`` (how the run was started) in a code block,
    ``bullets`` (the machine and settings) as a list, then ``body``."""
    lines = [f"# {title}", ""]
    if command is not None:
        lines += ["```", command, "```", ""]
    return "\n".join([*lines, *(f"- {b}" for b in bullets), "", *body]) + "\n"
