"""What a run leaves to look at: results.json, evaluate, predict, the figures and the report,
each checked against figures computed here by other means."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from lit_alexnet import LitAlexNet
from lit_alexnet.data.folders import scan_split
from lit_alexnet.data.formats import STATS_FILENAME, DatasetStats
from lit_alexnet.data.images import open_image
from lit_alexnet.data.prepare import prepare_shards
from lit_alexnet.data.transforms import ten_crop_transform
from lit_alexnet.evaluate import evaluate
from lit_alexnet.figures import main as figures_main
from lit_alexnet.figures import make_figures, nearest
from lit_alexnet.job import run_config
from lit_alexnet.predict import predict
from lit_alexnet.report import find_jobs, table
from lit_alexnet.runs import best_checkpoint
from lit_alexnet.wandb_pictures import log_pictures

from .test_train import FINAL_LINE, pixels, train_cli
from .wandb_records import logged_images, run_info


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """A smoke run logging to TensorBoard."""
    work = tmp_path_factory.mktemp("results")
    out = train_cli(
        "+experiment=smoke",
        "logger=tensorboard",
        "hydra.run.dir=run",
        cwd=work,
        cache_dir=cache_dir,
    )
    (work / "stdout.txt").write_text(out)
    return work / "run"


def data_root(run: Path) -> Path:
    return Path(str(run_config(run).data.cache_dir)) / "builtin-c10-t4-v2-s0-v1"


def test_results_json_holds_the_runs_figures(run: Path) -> None:
    results = json.loads((run / "results.json").read_text())
    match = FINAL_LINE.search((run.parent / "stdout.txt").read_text())
    assert match
    assert results["status"] == "done"
    assert f"{results['val']['top1_error']:.3f}" == match[1]
    assert f"{results['val']['top5_error']:.3f}" == match[2]
    # smoke: one epoch of 40 images in batches of 10
    assert (results["epochs"], results["steps"], results["train_images"]) == (1, 4, 40)
    assert results["train_images_per_s"] > 0 and results["wall_s"] > 0
    assert results["overrides"] == ["+experiment=smoke", "logger=tensorboard"]
    assert results["version"] == "0.2.0"


def test_ten_crop_error_is_the_softmax_average_over_the_ten_patches(run: Path) -> None:
    got = evaluate(run, ["data.backend=torchvision"], views=["ten_crop"])["ten_crop"]
    assert json.loads((run / "eval.json").read_text())["ten_crop"] == got

    model = LitAlexNet.load_from_checkpoint(best_checkpoint(run), weights_only=True).eval()
    root = data_root(run)
    val = scan_split(root, "val", classes=scan_split(root, "train").classes)
    transform = ten_crop_transform(DatasetStats.load(root / STATS_FILENAME))
    top1 = top5 = 0
    with torch.no_grad():
        for path, label in zip(val.files, val.labels, strict=True):
            views = transform(Image.open(path))
            probs = torch.stack([model.net(v[None])[0].softmax(-1) for v in views]).mean(0)
            ranked = probs.argsort(descending=True).tolist()
            top1 += ranked[0] != label
            top5 += label not in ranked[:5]
    assert got["top1_error"] == pytest.approx(top1 / len(val), abs=1e-6)
    assert got["top5_error"] == pytest.approx(top5 / len(val), abs=1e-6)


def test_evaluate_and_figures_on_shards(run: Path, tmp_path: Path) -> None:
    # The run's own data written as webdataset shards, named with the data overrides.
    shards = tmp_path / "shards"
    prepare_shards(data_root(run), shards)
    data = ["data=shards", f"data.root={shards}", "data.backend=torchvision"]
    got = evaluate(run, data, views=["center"])["center"]
    assert 0 <= got["top1_error"] <= 1
    assert json.loads((run / "eval.json").read_text())["images"] == 20  # 10 classes x 2
    # Figure 4 reads image files, which shards do not have: one line saying what to add.
    proc = subprocess.run(
        [sys.executable, "-m", "lit_alexnet.figures", str(run), *data, "--train-images", "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: data=shards:") and "add data=folder" in last, last


def test_evaluate_names_a_folder_that_is_no_run(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lit_alexnet.evaluate", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nothing'} is neither a run's output directory nor a .ckpt file"
    ]


def test_predict_reads_what_users_drop_on_it(run: Path, tmp_path: Path) -> None:
    (source,) = list((data_root(run) / "val" / "00_disk").glob("00000.jpg"))
    upright = Image.open(source).convert("RGB")
    # A phone photo: pixels stored sideways, with EXIF orientation 6 (turn 90 degrees clockwise).
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways.save(tmp_path / "phone.jpg", quality=95, exif=exif)
    assert np.array_equal(
        np.asarray(open_image(tmp_path / "phone.jpg")),
        np.asarray(Image.open(tmp_path / "phone.jpg").transpose(Image.Transpose.ROTATE_270)),
    )
    upright.convert("L").save(tmp_path / "grey.png")
    first, grey, phone = predict(run, [source, tmp_path / "grey.png", tmp_path / "phone.jpg"])
    names = sorted(p.name for p in (data_root(run) / "train").iterdir())
    for classes in (first, grey, phone):
        assert len(classes) == 5 and {n for n, _ in classes} <= set(names)
        assert [p for _, p in classes] == sorted((p for _, p in classes), reverse=True)
    model = LitAlexNet.load_from_checkpoint(best_checkpoint(run), weights_only=True).eval()
    assert sum(p for _, p in first) <= 1 + 1e-6 and model.net.fc8.out_features == len(names)

    (tmp_path / "notes.jpg").write_text("not a picture")
    proc = subprocess.run(
        [sys.executable, "-m", "lit_alexnet.predict", str(run), str(tmp_path / "notes.jpg")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'notes.jpg'}: not an image")


def test_neighbours_are_the_brute_force_nearest() -> None:
    gen = torch.Generator().manual_seed(0)
    queries, pool = torch.randn(4, 16, generator=gen), torch.randn(50, 16, generator=gen)
    dist, idx = nearest(queries, pool, k=3)
    for q in range(4):
        row = queries[q].tolist()
        by_hand = sorted(
            (math.sqrt(sum((a - b) ** 2 for a, b in zip(row, p.tolist(), strict=True))), i)
            for i, p in enumerate(pool)
        )[:3]
        assert idx[q].tolist() == [i for _, i in by_hand]
        assert dist[q].tolist() == pytest.approx([d for d, _ in by_hand])


def test_figure_4_shows_the_nearest_images_by_fc7_with_dropout_off(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Figure 4 compares images by the last hidden layer (section 6.1): fc7's 4096 outputs
    after its ReLU, in eval mode (dropout off). The vectors make_figures embeds are those
    computed here by forward hooks on each tower's fc7 layer of the checkpoint's net in eval
    mode, the same when embedded again, and the figure shows, for each query, the training
    images nearest by the Euclidean distance of those vectors, worked out here by hand."""
    from lit_alexnet import figures

    embedded: list[tuple[Any, list[Path], Any, torch.Tensor]] = []
    embed = figures.embed

    def recording(net: Any, files: list[Path], transform: Any, *args: Any) -> torch.Tensor:
        out = embed(net, files, transform, *args)
        embedded.append((net, list(files), transform, out))
        return out

    drawn: dict[str, Any] = {}

    def figure(queries: Any, neighbours: Any, distances: Any, path: Path) -> Path:
        drawn.update(neighbours=neighbours, distances=distances)
        return Path(path)

    monkeypatch.setattr(figures, "embed", recording)
    monkeypatch.setattr(figures, "neighbours_figure", figure)
    make_figures(run, train_images=12, queries=3, neighbours=4)
    (net, query_files, transform, queries), (_, pool_files, _, pool) = embedded
    assert (len(query_files), len(pool_files)) == (3, 12)

    model = LitAlexNet.load_from_checkpoint(best_checkpoint(run), weights_only=True)
    reference = model.net.eval()
    assert reference.towers[0].dropout.p > 0  # dropout would show, were it on
    halves: list[torch.Tensor] = []
    hooks = [
        tower.fc7.register_forward_hook(lambda _m, _i, out: halves.append(out))
        for tower in reference.towers
    ]

    def fc7(files: list[Path]) -> torch.Tensor:
        halves.clear()
        with torch.no_grad():
            reference(torch.stack([transform(open_image(f)) for f in files]))
        return torch.relu(torch.cat(halves, dim=1))

    expected_queries, expected_pool = fc7(query_files), fc7(pool_files)
    for hook in hooks:
        hook.remove()
    assert expected_pool.shape == (12, 4096)
    torch.testing.assert_close(queries, expected_queries, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(pool, expected_pool, rtol=1e-4, atol=1e-4)
    # Dropout off: the net make_figures embedded with gives the same vectors again.
    assert torch.equal(embed(net, query_files, transform, "again"), queries)

    a, b = expected_queries.double(), expected_pool.double()
    distances = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1).sqrt()
    order = distances.argsort(dim=1)[:, :4]
    np.testing.assert_allclose(drawn["distances"], distances.gather(1, order), rtol=1e-4)
    shown = [figures.shown(f, transform) for f in pool_files]
    for row, nearest_four in zip(drawn["neighbours"], order.tolist(), strict=True):
        assert len(row) == 4
        for image, i in zip(row, nearest_four, strict=True):
            assert np.array_equal(image, shown[i])


def test_the_kernel_picture_holds_exactly_the_conv1_weights(run: Path) -> None:
    made = make_figures(run, train_images=12, queries=2, neighbours=3)
    assert made.neighbours.is_file() and made.train_images == 12
    picture = np.asarray(Image.open(made.conv1_kernels_pixels).convert("RGB"))
    model = LitAlexNet.load_from_checkpoint(best_checkpoint(run), weights_only=True)
    # Kernel 2 of tower 1 (overall 50): 16 kernels to a row, 3 rows per tower, 11x11 pixels
    # each shown 4x4 with 1-pixel gaps and 4 pixels between the towers' blocks.
    w = model.net.towers[1].conv1.weight[2].detach().double()
    expected = ((w - w.min()) / (w.max() - w.min()) * 255).round().byte().permute(1, 2, 0)
    y, x = 1 + 3 * 45 + 4, 1 + 2 * 45
    shown = picture[y : y + 44 : 4, x : x + 44 : 4]
    assert np.array_equal(shown, expected.numpy())
    assert len(made.selectivity) == 2 and all(0 <= s <= 1 for s in made.selectivity)
    # The titled figure shows that picture larger than its pixels.
    assert Image.open(made.conv1_kernels).size[0] > picture.shape[1]


def test_each_validation_logs_the_kernel_picture(run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = run.rglob("events.out.tfevents.*")
    acc = EventAccumulator(str(events), size_guidance={"images": 0})
    acc.Reload()
    assert "conv1_kernels" in acc.Tags()["images"]
    (image,) = acc.Images("conv1_kernels")  # one epoch, one validation
    assert (image.width, image.height) == (16 * 45 + 1, 2 * 3 * 45 + 4 + 1)


def test_the_report_has_a_row_per_job_with_its_results(run: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for n, pooling in enumerate(("overlap", "standard")):
        job = sweep / str(n)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- pooling={pooling}\n- seed=1\n")
    done = json.loads((run / "results.json").read_text())
    (sweep / "0" / "results.json").write_text(json.dumps(done))
    (sweep / "0" / "curves.json").write_text((run / "curves.json").read_text())
    # A job whose process is gone without saying how it ended: it was killed.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (sweep / "1" / "results.json").write_text(
        json.dumps({"status": "running", "host": os.uname().nodename, "pid": int(dead)})
    )
    jobs = find_jobs([sweep])
    lines = table(jobs).splitlines()
    assert lines[0] == "| job | pooling | status | val top-1 | val top-5 | epochs | wall time |"
    val = done["val"]
    assert lines[2].startswith(
        f"| 0 | overlap | done | {val['top1_error']:.3f} | {val['top5_error']:.3f} | 1 |"
    )
    assert lines[3] == "| 1 | standard | killed | — | — | — | — |"
    proc = subprocess.run(
        [sys.executable, "-m", "lit_alexnet.report", str(sweep)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (sweep / "report.md").read_text().splitlines()[: len(lines)] == lines
    assert Image.open(sweep / "report.png").size[0] > 100
    # The run's own learning curves, drawn by the job (one epoch) and here for the sweep.
    assert [row["epoch"] for row in json.loads((run / "curves.json").read_text())] == [1]
    assert Image.open(sweep / "report_curves.png").size[0] > 600


def test_figures_go_to_a_wandb_run_of_their_own_as_drawn(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    options = ["--train-images", "8", "--queries", "2", "--neighbours", "2", "--wandb"]
    assert figures_main([str(run), *options]) == 0
    (run_file,) = (run / "figures" / "wandb").glob("offline-run-*/run-*.wandb")
    assert "wandb sync" in capsys.readouterr().out
    info = run_info(run_file)
    # Trained without W&B (TensorBoard): the package's project, no group.
    assert (info["project"], info["group"], info["job_type"]) == ("lit_alexnet", "", "figures")
    images = logged_images(run_file)
    assert set(images) == {"figure3/conv1_kernels", "figure4/neighbours"}
    for key, name in (
        ("figure3/conv1_kernels", "conv1_kernels"),
        ("figure4/neighbours", "neighbours"),
    ):
        assert np.array_equal(pixels(images[key]), pixels(run / "figures" / f"{name}.png")), key


def test_pictures_join_the_training_runs_project_and_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    picture = tmp_path / "a.png"
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)).save(picture)
    training = {"project": "mine", "group": "multirun/sweep1", "name": "train-3", "id": "abc123"}
    where = log_pictures({"x/a": picture}, tmp_path / "out", "figures", "train-3-figures", training)
    (run_file,) = where.glob("run-*.wandb")
    info = run_info(run_file)
    assert info["project"] == "mine" and info["group"] == "multirun/sweep1"
    assert (info["job_type"], info["name"]) == ("figures", "train-3-figures")
    assert info["config"]["training_run"] == "abc123"
    assert np.array_equal(pixels(logged_images(run_file)["x/a"]), pixels(picture))
