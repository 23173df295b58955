"""``python -m lit_alexnet.bench check``: the GPU check, sized to a lent GPU machine's minutes.

It installs the wheels carried over (``--wheels``: the parts ``prepare-wheels.sh`` cuts, or a
folder of wheels), then runs each part as its own process under its own time cap, writing the
part's whole output to ``NN-name.log`` in ``--output-dir`` as it runs and adding the part's
line to ``check.md`` there the moment it ends, so that a check cut off still leaves what it
finished. The parts and their caps (8 minutes in all, with the installation):

1. the gpu-marked tests (90 s);
2. ``python -m lit_alexnet.bench gpu --quick`` (180 s), its report written as ``gpu.md``;
3. the smoke run with DALI decoding on the GPU (60 s);
4. the quickstart on the GPU (120 s), its ``results.json`` kept as ``quickstart.json``.

Without a CUDA GPU each part says ``no GPU: skipped`` and runs nothing. The runs' own folders
go to a temporary directory: the device tool brings back only a few files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

NO_GPU = "no GPU: skipped"
REPORT = "check.md"
INSTALL_CAP_S = 30  # unzipping ~0.2 GB of wheels; the caps add up to 8 minutes


@dataclass(frozen=True)
class Part:
    """One step of the check: ``argv`` (``{out}`` and ``{work}`` filled in) under ``cap_s``;
    ``keep``: a file of the run to copy into the output folder, and its name there."""

    name: str
    cap_s: int
    argv: tuple[str, ...]
    keep: tuple[str, str] | None = None


PYTHON = sys.executable
# Only the test files that hold gpu tests are collected: the others import what the GPU machine
# lacks (wandb). Filled in when the part runs, from the checkout's tests/.
GPU_TEST_FILES = "{gpu_test_files}"
TRAIN = (PYTHON, "-m", "lit_alexnet.train", "trainer=gpu")
PARTS = (
    Part(
        "gpu-tests",
        90,
        (PYTHON, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", GPU_TEST_FILES),
    ),
    Part(
        "bench-gpu-quick",
        180,
        (PYTHON, "-m", "lit_alexnet.bench", "gpu", "--quick", "--output", "{out}/gpu.md"),
    ),
    Part(
        "smoke-dali-gpu",
        60,
        (
            *TRAIN,
            "+experiment=smoke",
            "data.backend=dali",
            "data.device=gpu",
            "logger=none",
            "hydra.run.dir={work}/smoke",
        ),
        keep=("smoke/results.json", "smoke.json"),
    ),
    Part(
        "quickstart-gpu",
        120,
        (*TRAIN, "logger=csv", "hydra.run.dir={work}/quickstart"),
        keep=("quickstart/results.json", "quickstart.json"),
    ),
)


@dataclass
class Outcome:
    """How a part ended: ``ok``, ``failed (exit N)``, ``over its cap``, or skipped."""

    part: str
    status: str
    seconds: float = 0.0
    last_line: str = ""

    @property
    def row(self) -> str:
        return f"| {self.part} | {self.status} | {self.seconds:.0f} | {self.last_line} |"


def gpu_test_files(tests: Path = Path("tests")) -> list[Path]:
    """The test files of ``tests`` with a ``gpu``-marked test."""
    return sorted(path for path in tests.glob("test_*.py") if "mark.gpu" in path.read_text())


def unpack_wheels(source: Path, into: Path) -> list[Path]:
    """The wheels of ``source``: ``*.whl`` files, or the tar that ``part*`` files make
    together (``prepare-wheels.sh``), unpacked into ``into``."""
    wheels = sorted(source.glob("*.whl"))
    parts = sorted(source.glob("part*"))
    if not wheels and parts:
        into.mkdir(parents=True, exist_ok=True)
        joined = into / "wheels.tar"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk:
                    shutil.copyfileobj(chunk, out)
        with tarfile.open(joined) as tar:
            tar.extractall(into, filter="data")
        joined.unlink()
        wheels = sorted(into.glob("*.whl"))
    if not wheels:
        raise FileNotFoundError(f"no *.whl and no part* files in {source}")
    return wheels


def install(wheels: Sequence[Path], target: Path, log: Path) -> None:
    """``pip install --target`` with no index: the machine reaches no registry."""
    argv = [PYTHON, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
    with log.open("w") as out:
        subprocess.run(
            [*argv, "--target", str(target), *map(str, wheels)],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=INSTALL_CAP_S,
            check=True,
        )


# What the parts import that the GPU machine lacks: a failed installation stops the check here.
PROBE = Part(
    "install",
    INSTALL_CAP_S,
    (PYTHON, "-c", "import hydra, omegaconf, webdataset, nvidia.dali, lit_alexnet.train"),
)


def run_part(part: Part, out: Path, work: Path, log: Path, env: dict[str, str]) -> Outcome:
    """Run ``part`` with its output going to ``log`` as it comes; kill it at its cap."""
    argv: list[str] = []
    for arg in part.argv:
        if arg == GPU_TEST_FILES:
            argv.extend(str(path) for path in gpu_test_files())
        else:
            argv.append(arg.replace("{out}", str(out)).replace("{work}", str(work)))
    started = time.monotonic()
    with log.open("w") as stream:
        stream.write(f"$ {' '.join(argv)}\n")
        stream.flush()
        try:
            code = subprocess.run(
                argv, stdout=stream, stderr=subprocess.STDOUT, env=env, timeout=part.cap_s
            ).returncode
            status = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            status = f"over its cap of {part.cap_s} s: stopped"
    if part.keep is not None and (work / part.keep[0]).exists():
        shutil.copyfile(work / part.keep[0], out / part.keep[1])
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return Outcome(part.name, status, time.monotonic() - started, lines[-1][:200] if lines else "")


def write_report(out: Path, outcomes: Sequence[Outcome], header: str) -> None:
    table = ["| part | status | s | last line |", "|---|---|---:|---|"]
    text = "\n".join([f"# lit_alexnet GPU check\n\n{header}\n", *table, *(o.row for o in outcomes)])
    (out / REPORT).write_text(text + "\n", encoding="utf-8")


def run_check(
    out: Path,
    *,
    wheels: Path | None = None,
    only: Sequence[str] = (),
    has_gpu: Callable[[], bool] | None = None,
    say: Callable[[str], None] = print,
) -> list[Outcome]:
    """Install ``wheels`` (if given) and run the parts (``only`` those named), writing into
    ``out`` as each ends; returns their outcomes."""
    out.mkdir(parents=True, exist_ok=True)
    # The unpacked wheels and their install (DALI's alone is ~0.6 GB) are scratch: what the
    # check leaves is in ``out``.
    work = Path(tempfile.mkdtemp(prefix="lit-alexnet-check-"))
    try:
        return _run_parts(out, work, wheels, only, has_gpu, say)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_parts(
    out: Path,
    work: Path,
    wheels: Path | None,
    only: Sequence[str],
    has_gpu: Callable[[], bool] | None,
    say: Callable[[str], None],
) -> list[Outcome]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline"}
    outcomes: list[Outcome] = []
    gpu = (has_gpu or torch.cuda.is_available)()
    header = "GPU: yes" if gpu else "GPU: none (torch.cuda.is_available() is False)"
    if wheels is not None:
        site = work / "site"
        install(unpack_wheels(wheels, work / "wheels"), site, out / "00-install.log")
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
        outcomes.append(run_part(PROBE, out, work, out / "00-imports.log", env))
        write_report(out, outcomes, header)
        if outcomes[-1].status != "ok":
            say(f"install: the wheels do not import ({out / '00-imports.log'}): stopped")
            return outcomes
    write_report(out, outcomes, header)
    for number, part in enumerate(PARTS, 1):
        if only and part.name not in only:
            continue
        if gpu:
            say(f"{part.name}: running (cap {part.cap_s} s)")
            log = out / f"{number:02d}-{part.name}.log"
            outcome = run_part(part, out, work, log, env)
        else:
            outcome = Outcome(part.name, NO_GPU)
        outcomes.append(outcome)
        say(f"{part.name}: {outcome.status} [{outcome.seconds:.0f} s]")
        write_report(out, outcomes, header)
    return outcomes


def failed(outcomes: Sequence[Outcome]) -> list[str]:
    """The parts that ran and did not end well."""
    return [o.part for o in outcomes if o.status not in ("ok", NO_GPU)]
