"""The built wheel carries the Hydra configs: the smoke run works from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def test_installed_wheel_runs_the_smoke_experiment_from_anywhere(
    tmp_path: Path, cache_dir: Path
) -> None:
    dist = tmp_path / "dist"
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        dist,
        REPO,
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("lit_alexnet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "lit_alexnet/conf/train.yaml" in names
    assert "lit_alexnet/conf/experiment/smoke.yaml" in names
    assert "lit_alexnet/nn/lrn_kernel.c" in names  # the LRN's CPU kernel is compiled from it

    # A clean environment for the package itself. The heavy dependencies come from the
    # running environment's site-packages, named in a .pth file: `--system-site-packages`
    # would give the base interpreter's, which lack torch when the tests run in a venv.
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    venv_site = run(
        python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path
    )
    running = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(venv_site.strip()) / "running-env.pth").write_text("\n".join(sorted(running)) + "\n")
    run(python, "-m", "pip", "install", "--no-deps", "--no-index", wheel, cwd=tmp_path)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"LIT_ALEXNET_CACHE": str(cache_dir), "WANDB_MODE": "offline"}
    where = run(
        python,
        "-c",
        "import lit_alexnet.config as c; print(c.__file__); print(c.config_dir())",
        cwd=elsewhere,
        env=env,
    ).split()
    assert all(Path(p).is_relative_to(venv) for p in where), where
    # The console script, as a user of the installed package types it.
    out = run(
        venv / "bin" / "lit-alexnet-train",
        "+experiment=smoke",
        "logger=csv",
        cwd=elsewhere,
        env=env,
    )
    assert "val top-1 error" in out
    assert list((elsewhere / "outputs").glob("*/*/checkpoints/last.ckpt"))
    scripts = {p.name for p in (venv / "bin").glob("lit-alexnet-*")}
    commands = "train evaluate predict figures report figure1 stats prepare verify bench"
    assert scripts == {f"lit-alexnet-{command}" for command in commands.split()}
    assert "usage: lit-alexnet-evaluate" in run(
        venv / "bin" / "lit-alexnet-evaluate", "--help", cwd=elsewhere, env=env
    )
