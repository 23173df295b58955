"""The training entry point end to end: the smoke run, resume, multirun, W&B offline, --help."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from lit_alexnet import AlexNet, LitAlexNet
from lit_alexnet.report import main as report_main

from .wandb_records import config_and_history, logged_images, metric_summaries, run_info

if TYPE_CHECKING:
    from conftest import Composer

FINAL_LINE = re.compile(r"^val top-1 error (\d\.\d{3}) \| top-5 error (\d\.\d{3}) \| (\S+)$", re.M)


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def train_cli(*args: str, cwd: Path, cache_dir: Path, timeout: int = 300) -> str:
    env = {**os.environ, "LIT_ALEXNET_CACHE": str(cache_dir), "WANDB_MODE": "offline"}
    proc = subprocess.run(
        [sys.executable, "-m", "lit_alexnet.train", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, in the order a terminal shows them
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> tuple[Path, str]:
    """One smoke run through the real CLI with the default logger (W&B, offline)."""
    work = tmp_path_factory.mktemp("smoke")
    out = train_cli("+experiment=smoke", "hydra.run.dir=run", cwd=work, cache_dir=cache_dir)
    return work / "run", out


def test_smoke_run_prints_the_final_line(smoke_run: tuple[Path, str]) -> None:
    _, out = smoke_run
    match = FINAL_LINE.search(out)
    assert match, out[-2000:]
    top1, top5 = float(match[1]), float(match[2])
    assert 0.0 <= top5 <= top1 <= 1.0
    assert Path(match[3]) == Path("run")


def test_smoke_run_checkpoints_best_and_last(smoke_run: tuple[Path, str]) -> None:
    run_dir, _ = smoke_run
    names = {p.name for p in (run_dir / "checkpoints").glob("*.ckpt")}
    assert "last.ckpt" in names
    assert any(n.startswith("epoch000-top1err") for n in names), names


def test_checkpoint_loads_into_plain_alexnet_for_inference(smoke_run: tuple[Path, str]) -> None:
    run_dir, _ = smoke_run
    module = LitAlexNet.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    net = AlexNet(num_classes=10)
    net.load_state_dict(module.net.state_dict())
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), module.eval()(x))


def test_offline_wandb_run_lives_in_the_job_dir(smoke_run: tuple[Path, str]) -> None:
    run_dir, _ = smoke_run
    (run_file,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    config, history = config_and_history(run_file)
    hydra_record = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "config.yaml"))
    assert config["optimizer"] == hydra_record["optimizer"]  # type: ignore[index]
    assert config["data"]["train_per_class"] == 4
    assert config["trainer"]["default_root_dir"] == str(run_dir.resolve())
    logged = set().union(*history)
    for key in (
        "train/loss_step",
        "val/loss",
        "val/top1_error",
        "val/top5_error",
        "train/top1_error_epoch",
    ):
        assert key in logged, sorted(logged)
    assert any(k.startswith("lr-") for k in logged), sorted(logged)
    # The summary keeps the least validation error (WandbBestError), not the last.
    assert "min" in metric_summaries(run_file).get("val/top1_error", set())
    # results.json names the run, for what is logged after training (figures, report).
    recorded = json.loads((run_dir / "results.json").read_text())["wandb"]
    info = run_info(run_file)
    assert recorded == {"project": "lit_alexnet", "group": None, "name": "smoke", "id": info["id"]}
    assert run_file.stem == f"run-{info['id']}"


def test_resume_from_last_checkpoint(
    smoke_run: tuple[Path, str], tmp_path: Path, cache_dir: Path
) -> None:
    run_dir, _ = smoke_run
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    out = train_cli(
        "+experiment=smoke",
        "logger=csv",
        f"ckpt_path={ckpt}",
        "trainer.max_epochs=2",
        "hydra.run.dir=resumed",
        cwd=tmp_path,
        cache_dir=cache_dir,
    )
    assert "Restoring states from the checkpoint" in out or "Restored all states" in out
    resumed = torch.load(tmp_path / "resumed/checkpoints/last.ckpt", weights_only=False)
    first = torch.load(ckpt, weights_only=False)
    # The second epoch only: the first came from the checkpoint.
    assert resumed["epoch"] == first["epoch"] + 1
    assert resumed["global_step"] == 2 * first["global_step"]


def test_multirun_gives_each_job_its_own_dir_checkpoint_and_wandb_run(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = train_cli(
        "-m",
        "pooling=overlap,standard",
        "+experiment=smoke",
        "hydra.sweep.dir=sweep",
        cwd=tmp_path,
        cache_dir=cache_dir,
        timeout=600,
    )
    assert len(FINAL_LINE.findall(out)) == 2
    run_ids = set()
    for job, pooling, kernel in (("0", "overlap", 3), ("1", "standard", 2)):
        job_dir = tmp_path / "sweep" / job
        last = job_dir / "checkpoints" / "last.ckpt"
        trained = LitAlexNet.load_from_checkpoint(last, map_location="cpu", weights_only=True)
        assert trained.net.towers[0].pool.kernel_size == kernel  # section 3.4's windows
        (run_file,) = (job_dir / "wandb").glob("offline-run-*/run-*.wandb")
        run_ids.add(run_file.stem)
        config, _ = config_and_history(run_file)
        assert config["model"]["net"]["pooling"]["name"] == pooling
        recorded = json.loads((job_dir / "results.json").read_text())["wandb"]
        assert recorded["group"] == run_info(run_file)["group"] == "sweep"
        assert run_file.stem == f"run-{recorded['id']}"
    assert len(run_ids) == 2

    # The report's charts go to a W&B run of their own in the sweep's group, as logged.
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert report_main([str(tmp_path / "sweep"), "--wandb"]) == 0
    (report_file,) = (tmp_path / "sweep" / "wandb").glob("offline-run-*/run-*.wandb")
    info = run_info(report_file)
    assert (info["group"], info["job_type"], info["project"]) == ("sweep", "report", "lit_alexnet")
    images = logged_images(report_file)
    assert set(images) == {"report/chart", "report/curves"}
    for key, name in (("report/chart", "report.png"), ("report/curves", "report_curves.png")):
        assert np.array_equal(pixels(images[key]), pixels(tmp_path / "sweep" / name)), key


@pytest.mark.slow  # two spawned processes: minutes on 2 cores
def test_multirun_with_the_ddp_strategy_runs_the_sweep_once(
    tmp_path: Path, cache_dir: Path
) -> None:
    # Lightning's popen launcher would re-run `-m ...` in each new process, i.e. the sweep.
    out = train_cli(
        "-m",
        "seed=0,1",
        "+experiment=smoke",
        "strategy=two_device_ddp",
        "data.train_per_class=2",
        "data.val_per_class=1",
        "logger=csv",
        "hydra.sweep.dir=sweep",
        cwd=tmp_path,
        cache_dir=cache_dir,
        timeout=600,
    )
    assert len(FINAL_LINE.findall(out)) == 2
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1"]
    assert [p.name for p in tmp_path.iterdir()] == ["sweep"]  # no stray runs beside it
    # Each job ran two processes, one per device pair, and started nothing else.
    assert out.count("MEMBER: 1/2") == out.count("MEMBER: 2/2") == 2, out[-3000:]


def test_help_lists_the_config_groups(tmp_path: Path, cache_dir: Path) -> None:
    out = train_cli("--help", cwd=tmp_path, cache_dir=cache_dir)
    assert "== Configuration groups ==" in out
    assert "+experiment=paper" in out
    for group in (
        "data",
        "model",
        "norm",
        "pooling",
        "optimizer",
        "scheduler",
        "trainer",
        "logger",
        "callbacks",
        "experiment",
        "paths",
    ):
        assert re.search(rf"^{group}: ", out, re.M), group
    assert re.search(r"^pooling: overlap, standard$", out, re.M)


@pytest.mark.slow
def test_default_quickstart_learns_within_its_budget(tmp_path: Path, cache_dir: Path) -> None:
    """The README's first command: the default config on the built-in dataset, in the
    precision this machine chooses, within the 5-minute budget: every kind measured ended
    within it (README; 257 to 275 s on 2 AVX2 EPYC cores), and 30 s more are allowed for a
    CI machine busy with other work.

    Measured (val top-1 error; chance 0.90): all 14 epochs on an AMD EPYC with AVX-512-BF16,
    0.247, 0.287 and 0.280 for seeds 0-2 (4 min 34 s to 4 min 45 s); with the earlier cap of
    10 epochs, 0.400 on an AVX-512-BF16/AMX Xeon (2 min 59 s); in the 7 or 8 epochs that fit
    held to AVX2, 0.573 and 0.49 to 0.53; a loaded CI machine that fit fewer epochs reached
    0.607; on a real AVX2 AMD EPYC (fp32) 4 epochs fit and reached 0.703. The bounds leave the
    spread as margin, and tighten with the epochs.
    """
    start = time.monotonic()
    out = train_cli(
        "logger=csv", "hydra.run.dir=quickstart", cwd=tmp_path, cache_dir=cache_dir, timeout=1200
    )
    wall = time.monotonic() - start
    match = FINAL_LINE.search(out)
    assert match, out[-2000:]
    error = float(match[1])
    run = tmp_path / "quickstart"
    epochs = json.loads((run / "results.json").read_text())["epochs"]
    configured = OmegaConf.load(run / ".hydra" / "config.yaml").trainer.max_epochs
    assert wall <= 5 * 60 + 30, f"{wall:.0f} s"
    # All epochs: well below half of chance; 5 or more (a slow or busy CPU): three times
    # chance's accuracy; fewer: still clearly above chance, which a net that does not learn
    # keeps (the paper's SGD does, on this budget).
    bound = 0.40 if epochs == configured else 0.70 if epochs >= 5 else 0.80
    assert error <= bound, f"{error} after {epochs} epochs"


@pytest.mark.slow
def test_the_quickstart_recipe_lands_the_same_way_for_each_seed(
    tmp_path: Path, cache_dir: Path
) -> None:
    """The quickstart's recipe over seeds 0, 1 and 2, for a fixed 3 epochs (no time budget, so
    a busy machine changes the wall time only): every seed learns, and the seeds' val top-1
    errors lie within 10 points of each other.

    Measured on a real AVX2 EPYC (fp32, 2 cores, about 2 minutes a seed): 0.697, 0.703 and
    0.733, a spread of 3.7 points around a mean of 0.711 (chance 0.90). A recipe at the edge
    of stability (a peak lr of 5e-4 leaves ReLUs dead, conf/train.yaml) strands some seeds at
    chance and fails both checks.
    """
    errors = []
    for seed in (0, 1, 2):
        run = f"seed{seed}"
        out = train_cli(
            f"seed={seed}",
            "logger=csv",
            "trainer.max_epochs=3",
            "callbacks.time_budget=null",
            f"hydra.run.dir={run}",
            cwd=tmp_path,
            cache_dir=cache_dir,
            timeout=900,
        )
        results = json.loads((tmp_path / run / "results.json").read_text())
        assert results["epochs"] == 3, out[-2000:]
        errors.append(results["val"]["top1_error"])
    assert max(errors) - min(errors) <= 0.10, errors
    assert max(errors) <= 0.80 and sum(errors) / 3 <= 0.78, errors


def test_the_summary_line_is_the_last_thing_printed_and_the_noise_is_gone(
    smoke_run: tuple[Path, str],
) -> None:
    _, out = smoke_run
    assert FINAL_LINE.fullmatch(out.rstrip().splitlines()[-1]), out[-1500:]
    for noise in ("💡 Tip", "FLOPs", "LeafSpec", "anonymous setting", "TopKError"):
        assert noise not in out, noise
    # Not a terminal: a progress line per epoch instead of a progress bar, and not Lightning's
    # default bar besides, whose final state Rich prints off a terminal.
    assert re.search(r"^epoch 1/1 end \| [\d.]+ it/s \| train loss", out, re.M), out[-1500:]
    assert "v_num" not in out and not re.search(r"^Epoch \d", out, re.M), out[-1500:]
    assert "precision " in out and "(trainer.precision=auto:" in out


def refused_cli(*args: str, cwd: Path, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    """A training command expected to be refused before it trains."""
    env = {**os.environ, "LIT_ALEXNET_CACHE": str(cache_dir), "WANDB_MODE": "offline"}
    command = [sys.executable, "-m", "lit_alexnet.train", "+experiment=smoke", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_a_refused_config_leaves_no_output_folder(tmp_path: Path, cache_dir: Path) -> None:
    proc = refused_cli("data.batch_size=0", cwd=tmp_path, cache_dir=cache_dir)
    assert proc.returncode != 0
    assert "data.batch_size=0" in proc.stderr
    assert not (tmp_path / "outputs").exists(), list(tmp_path.rglob("*"))


def test_a_refused_config_never_removes_the_working_directory(
    tmp_path: Path, cache_dir: Path
) -> None:
    # hydra.run.dir right below an empty working directory: only the job folder goes.
    cwd = tmp_path / "empty"
    cwd.mkdir()
    proc = refused_cli("data.batch_size=0", "hydra.run.dir=job", cwd=cwd, cache_dir=cache_dir)
    assert proc.returncode == 2, proc.stderr
    assert cwd.is_dir() and not (cwd / "job").exists()


def _jpeg_root(root: Path, layout: dict[str, list[str]]) -> Path:
    """A folder dataset of real 64x64 JPEGs: ``{"train": ["a", "b"], "val": [...]}``."""
    from PIL import Image

    for split, classes in layout.items():
        for name in classes:
            (root / split / name).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (64, 64), (40 * i, 90, 200)).save(root / split / name / f"{i}.jpg")
    return root


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.batch_size=0"], "data.batch_size=0 must be"),
        (["data=folder", "data.root=/no/such"], "data.root='/no/such' is not a folder"),
        (["data=folder", "data.root={root1}"], "train/ holds 1 class folder (a/)"),
        (["data=folder", "data.root={val_only}"], "class folders the training split lacks"),
        # 4 steps, a quarter of them warming up: OneCycleLR divides by zero on a 1-step warm-up.
        (
            ["scheduler=onecycle", "trainer.check_val_every_n_epoch=1"],
            "one cycle over 4 optimizer steps with pct_start=0.25 warms up in a single step",
        ),
        # Raised while Hydra instantiates the datamodule, which wraps it in its own error.
        (["data=shards", "data.root={root1}"], "is not a shards root"),
    ],
    ids=[
        "bad-value",
        "missing-root",
        "one-class",
        "class-only-in-val",
        "one-cycle-too-short",
        "shards-root-is-a-folder",
    ],
)
def test_a_refusal_is_its_message_alone_with_exit_code_2(
    tmp_path: Path, cache_dir: Path, overrides: list[str], message: str
) -> None:
    roots = {
        "root1": _jpeg_root(tmp_path / "one", {"train": ["a"], "val": ["a"]}),
        "val_only": _jpeg_root(tmp_path / "vo", {"train": ["a", "b"], "val": ["a", "zz"]}),
    }
    args = ["+experiment=smoke", "hydra.run.dir=run", *(o.format(**roots) for o in overrides)]
    env = {**os.environ, "LIT_ALEXNET_CACHE": str(cache_dir), "WANDB_MODE": "offline"}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "lit_alexnet.train", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, proc.stderr[-3000:]
    # Nothing trained: the refusal comes before the first epoch.
    assert not list(tmp_path.rglob("*.ckpt"))


def test_hydra_full_error_shows_a_refusals_traceback(tmp_path: Path, cache_dir: Path) -> None:
    env = {**os.environ, "LIT_ALEXNET_CACHE": str(cache_dir), "HYDRA_FULL_ERROR": "1"}
    full = subprocess.run(
        [sys.executable, "-m", "lit_alexnet.train", "+experiment=smoke", "data.batch_size=0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    # The frames down to the check; how they are laid out differs between Hydra versions
    # (1.3.8: Python's "Traceback ..."; 1.3.5: one "file line function" row each).
    assert full.returncode != 0 and "validate" in full.stderr, full.stderr[-3000:]
    assert "job.py" in full.stderr and "config.py" in full.stderr, full.stderr[-3000:]
    assert "data.batch_size=0 must be" in full.stderr


@pytest.mark.dali
def test_a_file_dali_cannot_decode_is_named_as_the_run_stops(
    tmp_path: Path, cache_dir: Path
) -> None:
    from PIL import Image

    root = _jpeg_root(tmp_path / "data", {"train": ["a", "b"], "val": ["a", "b"]})
    gif = root / "train" / "b" / "animated.jpg"  # Pillow reads it; DALI's decoder does not
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    env = {**os.environ, "LIT_ALEXNET_CACHE": str(cache_dir), "WANDB_MODE": "offline"}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lit_alexnet.train",
            "+experiment=smoke",
            "data=folder",
            f"data.root={root}",
            "data.backend=dali",
            "data.verify=off",  # what verify would have caught reaches the pipeline
            "hydra.run.dir=run",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: DALI could not decode {gif} ("), proc.stderr[-3000:]


@pytest.mark.slow  # two spawned processes: minutes on 2 cores
def test_a_bad_files_refusal_under_ddp_stops_every_rank(tmp_path: Path, cache_dir: Path) -> None:
    root = _jpeg_root(tmp_path / "data", {"train": ["a", "b"], "val": ["a", "b"]})
    (root / "val" / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    env = {**os.environ, "LIT_ALEXNET_CACHE": str(cache_dir), "WANDB_MODE": "offline"}
    env.pop("HYDRA_FULL_ERROR", None)
    args = ["+experiment=smoke", "strategy=two_device_ddp", "data=folder", f"data.root={root}"]
    proc = subprocess.run(
        [sys.executable, "-m", "lit_alexnet.train", *args, "data.bad_files=error", "logger=csv"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # a rank left waiting for the other would hang here
    )
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "MEMBER: 2/2" in proc.stdout + proc.stderr  # both ranks ran
    # Rank 0 read the files and sent rank 1 the refusal; the report is what the user reads last.
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    tail = proc.stderr.strip().splitlines()[-3:]
    assert tail[0] == f"error: 1 of 5 files in {root / 'val'} cannot be trained on:", tail
    assert tail[1].startswith(f"  {root / 'val' / 'b' / 'broken.jpg'}: cannot decode"), tail


@pytest.mark.usefixtures("sigint_handled")
def test_ctrl_c_saves_last_ckpt_says_how_to_resume_and_exits_130(
    tmp_path: Path, cache_dir: Path
) -> None:
    env = {**os.environ, "LIT_ALEXNET_CACHE": str(cache_dir), "WANDB_MODE": "offline"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lit_alexnet.train",
            "+experiment=smoke",
            "logger=csv",
            "trainer.max_epochs=100",
            "hydra.run.dir=run",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # interrupt once the first epoch has ended
        seen.append(line)
        if line.startswith("epoch 1/100 end"):
            proc.send_signal(signal.SIGINT)
            break
    try:
        rest, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()  # a run that trains on past its Ctrl-C is not left behind
    out = "".join(seen) + rest
    assert proc.returncode == 130, out[-2000:]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert last.exists()
    assert (
        out.rstrip().splitlines()[-1]
        == "interrupted: resume with ckpt_path=run/checkpoints/last.ckpt"
    )
    assert torch.load(last, weights_only=False)["global_step"] >= 4  # the first epoch, whole


def test_last_checkpoint_settings_do_not_depend_on_max_epochs(composed: Composer) -> None:
    # Lightning restores a callback's state only when its state_key matches: a key tied to
    # max_epochs (as every_n_epochs=${trainer.max_epochs} was) warns on every longer resume.
    from hydra.utils import instantiate

    keys = []
    for epochs in (2, 20):
        cfg = composed(f"trainer.max_epochs={epochs}")
        node = OmegaConf.to_container(cfg.callbacks.last_checkpoint)
        node["dirpath"] = "/tmp/unused"  # type: ignore[index]
        keys.append(instantiate(node).state_key)
    assert keys[0] == keys[1]


def test_help_lists_only_what_a_user_chooses(tmp_path: Path) -> None:
    def help_of(command: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", f"lit_alexnet.{command}", "--help"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout

    train = help_of("train")
    assert "data: builtin, folder, imagenet" in train
    assert "schema" not in train
    stats = help_of("stats")
    assert "data: builtin (default), folder, imagenet" in stats
    for group in ("callbacks", "logger", "optimizer", "schema"):
        assert f"{group}:" not in stats.split("== Config ==")[0], group


def test_an_experiment_of_ones_own_composes_from_a_config_dir(tmp_path: Path) -> None:
    """README: an experiment in a folder of the user's, beside the installed package's groups."""
    mine = tmp_path / "myconf" / "experiment" / "mine.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text(
        "# @package _global_\ndefaults:\n  - override /pooling: standard\n"
        "task_name: mine\ntrainer:\n  max_epochs: 30\n"
    )
    args = ["--config-dir", str(tmp_path / "myconf"), "+experiment=mine", "--cfg", "job"]
    proc = subprocess.run(
        [sys.executable, "-m", "lit_alexnet.train", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    job = OmegaConf.create(proc.stdout)
    assert job.task_name == "mine" and job.trainer.max_epochs == 30
    assert job.model.net.pooling.name == "standard"  # the default is overlap
