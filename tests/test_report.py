"""The report's arms: seeds grouped per arm, Welch's intervals, failed jobs, labels and the
chart's data, on sweeps written here as the jobs write them (no training), each checked
against figures worked out by hand or printed in statistics tables."""

from __future__ import annotations

import json
import math
import os
import socket
import statistics
from pathlib import Path
from typing import Any

import matplotlib.colors
import pytest
from PIL import Image

from lit_alexnet import plots
from lit_alexnet.report import (
    arm_label,
    chart_data,
    curves,
    find_jobs,
    group_arms,
    main,
)

MINUS = "\u2212"
FAILED: dict[str, Any] = {"status": "failed", "error": "RuntimeError: boom", "wall_s": 68.0}


def done(top1: float, top5: float = 0.0) -> dict[str, Any]:
    """``results.json`` of a finished job (as lit_alexnet.job writes it)."""
    return {
        "status": "done",
        "val": {"top1_error": top1, "top5_error": top5},
        "epochs": 10,
        "steps": 320,
        "wall_s": 612.0,
        "host": "another-host",
        "pid": 1,
    }


def write_job(
    folder: Path, overrides: list[str], results: dict[str, Any] | None, classes: int | None
) -> None:
    """A job folder as Hydra and the job leave it: ``.hydra/overrides.yaml`` (and
    ``config.yaml`` where ``classes``), ``results.json`` unless ``results`` is None."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if classes is not None:
        (folder / ".hydra" / "config.yaml").write_text(
            f"seed: 0\ndata:\n  cache_dir: ${{paths.cache_dir}}\n  num_classes: {classes}\n"
        )
    if results is not None:
        (folder / "results.json").write_text(json.dumps(results))


def sweep_of(
    root: Path,
    arms: dict[str, list[dict[str, Any] | None]],
    key: str = "+ablation",
    seeds: bool = True,
    classes: int | None = 10,
) -> Path:
    """A multirun folder: for each arm, a job per results (``seed=0, 1, ...``), numbered in
    the basic sweeper's order (arm by arm, seed by seed)."""
    n = 0
    for arm, runs in arms.items():
        for seed, results in enumerate(runs):
            overrides = [f"{key}={arm}", *([f"seed={seed}"] if seeds else [])]
            write_job(root / str(n), overrides, results, classes)
            n += 1
    return root


def report(sweep: Path, capsys: pytest.CaptureFixture[str], *options: str) -> list[str]:
    """The report's printed lines (its exit code checked)."""
    assert main([str(sweep), *options]) == 0
    return capsys.readouterr().out.splitlines()


def row(lines: list[str], arm: str) -> str:
    (found,) = [line for line in lines if line.startswith(f"| {arm} | ") and "done" not in line]
    return found


def test_a_clearly_different_arm_is_distinguishable_and_an_overlapping_one_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = sweep_of(
        tmp_path,
        {
            "baseline": [done(0.30), done(0.31), done(0.32)],
            "no_lrn": [done(0.50), done(0.51), done(0.52)],
            "tanh": [done(0.25), done(0.35), done(0.45)],
        },
    )
    lines = report(sweep, capsys)
    # no_lrn: +20 points, se = sqrt(2 * 0.0001 / 3) = 0.008165, df 4: half 2.776 x 0.8165 = 2.27.
    # Sample sd of 50, 51, 52 is 1.0 (the population sd would be 0.8).
    assert row(lines, "no_lrn") == (
        "| no_lrn | 3 | 51.0 ± 1.0 | +20.0 [+17.7, +22.3] | +1.4 (section 3.3) |"
    )
    assert row(lines, "baseline") == "| baseline | 3 | 31.0 ± 1.0 | baseline | — |"
    assert "- no_lrn: +20.0 points [+17.7, +22.3], distinguishable from zero over 3 seeds" in lines
    (tanh,) = [line for line in lines if line.startswith("- tanh:")]
    # tanh: +4 points, s = 10 points against 1: the interval spans zero.
    assert tanh.startswith(f"- tanh: +4.0 points [{MINUS}")
    assert tanh.endswith(", not distinguishable from zero over 3 seeds")
    assert row(lines, "tanh").endswith("| — |")  # the paper gives no top-1 delta for tanh
    assert not any("No arm's difference" in line for line in lines)
    assert (sweep / "report.md").read_text().splitlines() == lines[:-1]  # all but "wrote ..."


def test_when_no_arm_differs_a_closing_line_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = sweep_of(
        tmp_path,
        {
            "baseline": [done(0.30), done(0.40), done(0.50)],
            "standard_pooling": [done(0.35), done(0.45), done(0.41)],
        },
    )
    lines = report(sweep, capsys)
    assert "- No arm's difference from baseline is distinguishable from zero." in lines
    assert row(lines, "standard_pooling").endswith("| +0.4 (section 3.4) |")


def test_failed_jobs_are_counted_and_left_out_of_the_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = sweep_of(
        tmp_path,
        {
            # one that failed in its test after validating, one without results.json at all
            "baseline": [done(0.30), {**FAILED, "val": {"top1_error": 0.9}}, done(0.32), None],
            "one_gpu": [FAILED, FAILED],
            "no_lrn": [done(0.50), done(0.52), {"status": "interrupted", "wall_s": 5.0}],
        },
    )
    lines = report(sweep, capsys)
    # Mean of the two done seeds only; sample sd of 30 and 32 is sqrt(2) = 1.4.
    assert row(lines, "baseline") == "| baseline | 2 (2 failed) | 31.0 ± 1.4 | baseline | — |"
    assert row(lines, "one_gpu") == "| one_gpu | 0 (2 failed) | — | — | +1.7 (section 3.2) |"
    assert row(lines, "no_lrn").startswith("| no_lrn | 2 (1 failed) | 51.0 ± 1.4 | +20.0 [")
    assert "- one_gpu: no result, all 2 of its jobs failed" in lines
    assert any(line.startswith("- no_lrn: +20.0 points [") for line in lines)
    arms = group_arms(find_jobs([sweep]))
    assert chart_data(arms).failed == [2, 2, 1]
    assert chart_data(arms).series["val top-1"] == [[0.30, 0.32], [], [0.50, 0.52]]
    assert Image.open(sweep / "report.png").size[0] > 100


def test_arm_labels_drop_the_ablation_key_name_only(tmp_path: Path) -> None:
    assert arm_label({"ablation": "no_lrn", "pooling": "standard"}, ["ablation", "pooling"]) == (
        "no_lrn, pooling=standard"
    )
    for n, (ablation, pooling) in enumerate([("baseline", "overlap"), ("no_lrn", "standard")]):
        for seed in (0, 1):
            overrides = [f"+ablation={ablation}", f"pooling={pooling}", f"seed={seed}"]
            write_job(tmp_path / str(2 * n + seed), overrides, done(0.3), None)
    arms = group_arms(find_jobs([tmp_path]))
    assert [arm.label for arm in arms] == ["baseline, pooling=overlap", "no_lrn, pooling=standard"]
    assert [len(arm.jobs) for arm in arms] == [2, 2]


def test_one_seed_per_arm_gives_the_means_and_says_why_there_is_no_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = sweep_of(tmp_path, {"baseline": [done(0.30)], "no_lrn": [done(0.42)]}, seeds=False)
    lines = report(sweep, capsys)
    assert row(lines, "baseline") == "| baseline | 1 | 30.0 | baseline | — |"
    assert row(lines, "no_lrn") == "| no_lrn | 1 | 42.0 | +12.0 [—] | +1.4 (section 3.3) |"
    assert (
        "- no_lrn: +12.0 points, no interval: that needs at least 2 seeds in each arm "
        "(no_lrn has 1, baseline 1)"
    ) in lines
    assert any(line.startswith("- No difference can be judged") for line in lines)


def test_a_sweep_over_other_keys_keeps_them_and_compares_with_the_first_arm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = sweep_of(
        tmp_path,
        {"overlap": [done(0.40), done(0.41)], "standard": [done(0.30), done(0.31)]},
        key="pooling",
    )
    lines = report(sweep, capsys)
    assert row(lines, "pooling=overlap") == ("| pooling=overlap | 2 | 40.5 ± 0.7 | baseline | — |")
    standard = row(lines, "pooling=standard")
    assert standard.startswith(f"| pooling=standard | 2 | 30.5 ± 0.7 | {MINUS}10.0 [")


def test_the_baseline_option_picks_the_arm_compared_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = sweep_of(
        tmp_path,
        {"baseline": [done(0.30), done(0.31)], "no_lrn": [done(0.50), done(0.52)]},
    )
    lines = report(sweep, capsys, "--baseline", "no_lrn")
    assert any("| vs no_lrn, points [95% interval] |" in line for line in lines)
    assert row(lines, "no_lrn") == "| no_lrn | 2 | 51.0 ± 1.4 | baseline | — |"
    # The paper's figures are against the full net: none against another arm.
    assert row(lines, "baseline").startswith(f"| baseline | 2 | 30.5 ± 0.7 | {MINUS}20.5 [")
    assert row(lines, "baseline").endswith("| — |")
    assert main([str(sweep), "--baseline", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: --baseline nope: no such arm")


def test_a_sweep_of_seeds_alone_is_one_arm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for seed in (0, 1, 2):
        write_job(tmp_path / str(seed), [f"seed={seed}"], done(0.3 + seed / 100), None)
    lines = report(tmp_path, capsys)
    assert row(lines, "all") == "| all | 3 | 31.0 ± 1.0 | baseline | — |"
    assert "- One arm only (all): nothing to compare." in lines


def test_the_chart_draws_chance_and_leaves_out_a_top5_that_says_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trivial = sweep_of(
        tmp_path / "trivial",
        {"baseline": [done(0.30, 0.01), done(0.31, 0.0)], "tanh": [done(0.5, 0.049), FAILED]},
    )
    data = chart_data(group_arms(find_jobs([trivial])))
    assert data.chance == pytest.approx(0.9)  # 10 classes: 1 - 1/10
    assert list(data.series) == ["val top-1"]
    assert data.labels == ["baseline", "tanh"]
    report(trivial, capsys)
    assert Image.open(trivial / "report.png").size[0] > 100

    telling = sweep_of(
        tmp_path / "telling",
        {"baseline": [done(0.30, 0.01)], "tanh": [done(0.5, 0.2)]},
        classes=4,
    )
    data = chart_data(group_arms(find_jobs([telling])))
    assert data.chance == pytest.approx(0.75)
    assert data.series["val top-5"] == [[0.01], [0.2]]


def test_without_a_class_count_the_chart_has_no_chance_line(tmp_path: Path) -> None:
    sweep = sweep_of(tmp_path, {"baseline": [done(0.3)], "no_lrn": [done(0.4)]}, classes=None)
    assert chart_data(group_arms(find_jobs([sweep]))).chance is None


def test_a_sweep_reported_part_way_counts_its_running_jobs_as_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # This process stands in for a job still training: its pid is alive on this host.
    running = {"status": "running", "host": socket.gethostname(), "pid": os.getpid()}
    sweep = sweep_of(
        tmp_path,
        {
            "baseline": [done(0.30), done(0.32), running],
            "no_lrn": [running, running],
            "one_gpu": [FAILED],
        },
    )
    lines = report(sweep, capsys)
    assert row(lines, "baseline") == "| baseline | 2 (1 running) | 31.0 ± 1.4 | baseline | — |"
    assert row(lines, "no_lrn").startswith("| no_lrn | 0 (2 running) | — |")
    assert row(lines, "one_gpu").startswith("| one_gpu | 0 (1 failed) | — |")
    assert "- no_lrn: no result yet, 2 running" in lines
    assert "- one_gpu: no result, its job failed" in lines
    data = chart_data(group_arms(find_jobs([sweep])))
    assert (data.failed, data.running) == ([0, 0, 1], [1, 2, 0])


def test_a_sweeps_curves_have_a_colour_per_arm_and_a_legend_of_arms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = sweep_of(tmp_path, {"baseline": [done(0.3)] * 3, "no_lrn": [done(0.4)] * 3})
    for n in range(6):
        rows = [{"epoch": e, "train/loss": 2.0 - e / 10 - n / 100, "lr": 1e-4} for e in (1, 2)]
        (sweep / str(n) / "curves.json").write_text(json.dumps(rows))
    figures: list[Any] = []

    def keep(fig: Any, path: str | Path) -> Path:
        figures.append(fig)
        return Path(path)

    monkeypatch.setattr(plots, "save_figure", keep)
    curves(find_jobs([sweep]), tmp_path / "curves.png")
    (fig,) = figures
    # One legend entry per arm, not one per run and key (12 entries for these 6 runs).
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["baseline", "no_lrn"]
    loss = fig.axes[0]
    colours = [matplotlib.colors.to_hex(line.get_color()) for line in loss.get_lines()]
    assert len(colours) == 6 and len(set(colours[:3])) == len(set(colours[3:])) == 1
    assert colours[0] != colours[3]


def write_curves(job: Path, train_errors: list[float]) -> None:
    """``curves.json`` as LearningCurves writes it: a row per epoch, the running training
    error in each, validation in every other."""
    rows = [
        {"epoch": float(e), "train/top1_error": err, **({"val/top1_error": 0.5} if e % 2 else {})}
        for e, err in enumerate(train_errors, start=1)
    ]
    (job / "curves.json").write_text(json.dumps(rows))


def test_figure_1s_measure_is_the_epochs_to_a_training_error_paired_by_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = sweep_of(tmp_path / "sweep", {"baseline": [done(0.3)] * 3, "tanh": [done(0.5)] * 3})
    # Jobs 0-2 are the baseline's seeds 0-2, jobs 3-5 tanh's. At a threshold of 0.5 the
    # baseline gets there in epochs 2, 3 and 4; tanh in 4 and 9, and seed 2 never in 10.
    base = [[0.9, 0.5, 0.4], [0.9, 0.7, 0.45], [0.9, 0.8, 0.6, 0.5]]
    tanh = [[0.9] * 3 + [0.5], [0.9] * 8 + [0.49], [0.9] * 10]
    for n, errors in enumerate(base + tanh):
        write_curves(sweep / str(n), errors)
    lines = report(sweep, capsys, "--train-error", "0.5")
    assert "| baseline | 0: 2, 1: 3, 2: 4 | baseline |" in lines
    # Ratios 4/2 and 9/3: their geometric mean with a t interval over the two log ratios,
    # df 1 (t = 12.7062, the printed table's to four places).
    logs = [math.log(2), math.log(3)]
    mean = sum(logs) / 2
    half = 12.7062 * statistics.stdev(logs) / math.sqrt(2)
    low, high = math.exp(mean - half), math.exp(mean + half)
    assert (
        f"| tanh | 0: 4, 1: 9, 2: >10 | {math.exp(mean):.2f}x [{low:.2f}, {high:.2f}] over 2 "
        "seeds (1 seed never got there) |" in lines
    )
    assert not any("training error" in line for line in report(sweep, capsys))
    with pytest.raises(SystemExit) as refused:
        main([str(sweep), "--train-error", "25"])
    assert refused.value.code == 2 and "--train-error 25.0: must be a fraction" in (
        capsys.readouterr().err
    )
