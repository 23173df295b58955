"""``python -m lit_alexnet.report SWEEP``: a sweep's jobs and arms, as markdown and a chart.

    python -m lit_alexnet.train -m +experiment=ablations      # each ablation, seeds 0, 1, 2
    python -m lit_alexnet.report multirun/2026-12-02/10-00-00
    python -m lit_alexnet.report multirun/2026-12-02/10-00-00 --baseline no_lrn
    python -m lit_alexnet.report outputs/2026-12-02/10-00-00 outputs/2026-12-02/11-30-00
    python -m lit_alexnet.report multirun/2026-12-02/10-00-00 --train-error 0.5  # Figure 1

The first table has a row per job: a column for every override that differs between the
jobs, its status (``done``; ``running``; ``failed``, ``interrupted`` or ``killed`` where it did
not finish; ``no results`` for a folder written before lit_alexnet 0.2), validation and, where
tested, test top-1 and top-5 errors, epochs and wall time, all read from the jobs'
``results.json``.

The second table has a row per arm: the jobs whose differing overrides are the same but for
``seed``, labelled by them (``no_lrn`` for ``+ablation=no_lrn``, ``key=value`` for other keys). It
gives the arm's seeds (a job still running is counted as running, one that ended otherwise than
``done`` as failed, and both are left out of the figures), the mean and sample standard deviation of
their val top-1 error, the difference of the mean from the baseline arm's with a 95% Welch's t
interval (which needs two seeds in each arm), and the paper's ImageNet figure for that difference
where section 3 gives one (:data:`PAPER_DELTAS`, shown against the ``baseline`` arm only). The
baseline is the arm labelled ``baseline``, else the first; ``--baseline LABEL`` picks another. A
line per arm then says whether its difference is distinguishable from zero, that is whether the
interval leaves zero out. Each interval is at 95% on its own: among many arms, about one in twenty
that do not differ will look as if they do.

With ``--train-error F`` a third table measures learning speed as the paper's Figure 1 does
(section 3.1): each seed's epochs until its running training top-1 error (``curves.json``) is
at most ``F``, and each arm's ratio to the baseline's, seed by seed, as a geometric mean with a
95% t interval over the log ratios; a seed that never got there is shown as ``>N`` epochs and
left out of the ratio.

The tables and the lines are printed and written as ``report.md``, with a chart of the arms
``report.png`` (each arm's mean, its standard deviation and its seeds, failed arms as hatched
slots, chance as a dashed line, top-5 left out where every job's is below 5%) and the jobs'
learning curves ``report_curves.png`` (into the sweep folder, or ``--out``). ``--wandb`` also
logs both to a W&B run of ``job_type`` ``report`` in the jobs' project and group
(:func:`lit_alexnet.wandb_pictures.log_pictures`).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lit_alexnet.callbacks import read_curves
from lit_alexnet.checks import Invalid, Missing, Refused
from lit_alexnet.console import duration, prog
from lit_alexnet.intervals import (
    CONFIDENCE,
    Interval,
    RatioInterval,
    ratio_interval,
    welch_interval,
)
from lit_alexnet.plots import error_chart, learning_curves
from lit_alexnet.runs import RESULTS, read_results, run_overrides
from lit_alexnet.wandb_pictures import log_pictures, saved_line

_NONE = "—"
_DEFAULT = "default"  # an arm's value of a key its jobs did not override
_MINUS = "\u2212"  # the minus sign, as printed before a negative difference

# The paper's differences in top-1 error on ILSVRC-2012, arm minus the full net, in percentage
# points, by ablation (conf/ablation/) with the section that states each.
PAPER_DELTAS: dict[str, tuple[float, str]] = {
    "no_lrn": (1.4, "3.3"),
    "standard_pooling": (0.4, "3.4"),
    "one_gpu": (1.7, "3.2"),
}
BASELINE = "baseline"  # the arm the others are compared with unless --baseline says
SEED = "seed"  # the override that varies within an arm
ABLATION = "ablation"  # the override whose values label arms on their own
TRIVIAL_TOP5 = 0.05  # val top-5 errors all below this (10 classes) say nothing: not drawn


@dataclass
class Job:
    """One job of a sweep: its folder, its overrides as ``{key: value}`` and its results."""

    path: Path
    overrides: dict[str, str]
    results: dict[str, Any]

    def error(self, split: str, k: int) -> float:
        """The job's ``split`` ("val" or "test") top-``k`` error, NaN where it has none."""
        return float(self.results.get(split, {}).get(f"top{k}_error", math.nan))

    @cached_property
    def curves(self) -> list[dict[str, float]]:
        """The job's learning curves (``curves.json``), read once for the tables and the
        picture; empty where it has none."""
        return read_curves(self.path)


def find_jobs(paths: Sequence[str | Path]) -> list[Job]:
    """The jobs under ``paths``: each a job folder (holding ``.hydra/``) or a sweep folder of
    them (Hydra's ``multirun/<date>/<time>/<n>/``), in job-number order."""
    jobs: list[Job] = []
    for given in paths:
        root = Path(given).expanduser()
        if (root / ".hydra").is_dir() or (root / RESULTS).is_file():
            folders = [root]
        else:
            folders = (
                sorted(
                    (p for p in root.iterdir() if (p / ".hydra").is_dir()),
                    key=lambda p: (
                        not p.name.isdigit(),
                        int(p.name) if p.name.isdigit() else 0,
                        p.name,
                    ),
                )
                if root.is_dir()
                else []
            )
        if not folders:
            raise Missing(f"{root} holds no run (no .hydra/ folder in it or below it)")
        for folder in folders:
            pairs = (o.lstrip("+~").split("=", 1) for o in run_overrides(folder) if "=" in o)
            jobs.append(Job(folder, {k: v for k, v in pairs}, read_results(folder)))
    return jobs


def varying_keys(jobs: Sequence[Job]) -> list[str]:
    """The override keys whose values are not the same in every job, in first-seen order."""
    keys = list(dict.fromkeys(k for job in jobs for k in job.overrides))
    return [k for k in keys if len({job.overrides.get(k, _NONE) for job in jobs}) > 1]


def table(jobs: Sequence[Job]) -> str:
    """The markdown table of ``jobs``."""
    keys = varying_keys(jobs)
    tested = any("test" in job.results for job in jobs)
    head = ["job", *keys, "status", "val top-1", "val top-5"]
    head += ["test top-1", "test top-5"] if tested else []
    head += ["epochs", "wall time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for job in jobs:
        r = job.results
        cells = [job.path.name, *(job.overrides.get(k, _NONE) for k in keys), r["status"]]
        splits = ("val", "test") if tested else ("val",)
        cells += [_figure(job.error(split, k)) for split in splits for k in (1, 5)]
        wall = r.get("wall_s")
        cells += [str(r.get("epochs", _NONE)), _NONE if wall is None else duration(wall)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass
class Arm:
    """Jobs that differ in their seed only: the arm's label and its jobs."""

    label: str
    jobs: list[Job]

    @property
    def done(self) -> list[Job]:
        """The jobs that ended ``done`` with a val top-1 error: the arm's seeds."""
        return [
            job
            for job in self.jobs
            if job.results.get("status") == "done" and not math.isnan(job.error("val", 1))
        ]

    @property
    def running(self) -> int:
        """How many of the arm's jobs are still running (a sweep reported part-way)."""
        return sum(job.results.get("status") == "running" for job in self.jobs)

    @property
    def failed(self) -> int:
        """How many of the arm's jobs ended otherwise than ``done`` (failed, killed...)."""
        return len(self.jobs) - len(self.done) - self.running

    def errors(self, k: int = 1) -> list[float]:
        """The val top-``k`` errors of the arm's seeds (those it has)."""
        return [e for job in self.done if not math.isnan(e := job.error("val", k))]


def arm_label(overrides: Mapping[str, str], keys: Sequence[str]) -> str:
    """An arm's name: its values of ``keys``, an ablation's by its name alone (``no_lrn``),
    any other as ``key=value`` (``key=default`` where the arm's jobs leave it as configured)."""
    values = [(k, overrides.get(k, _DEFAULT)) for k in keys]
    return ", ".join(v if k == ABLATION else f"{k}={v}" for k, v in values)


def group_arms(jobs: Sequence[Job]) -> list[Arm]:
    """The jobs grouped by their varying overrides other than ``seed``, in first-seen order;
    one arm ``all`` where only the seed varies."""
    keys = [k for k in varying_keys(jobs) if k != SEED]
    arms: dict[str, Arm] = {}
    for job in jobs:
        label = arm_label(job.overrides, keys) or "all"
        arms.setdefault(label, Arm(label, [])).jobs.append(job)
    return list(arms.values())


def choose_baseline(arms: Sequence[Arm], label: str | None = None) -> Arm:
    """The arm labelled ``label``; without one, the arm labelled ``baseline``, else the first."""
    by_label = {arm.label: arm for arm in arms}
    if label is None:
        return by_label.get(BASELINE, arms[0])
    if label not in by_label:
        raise Invalid(f"--baseline {label}: no such arm; choose one of {list(by_label)}")
    return by_label[label]


def compare(arm: Arm, baseline: Arm) -> tuple[float, Interval | None]:
    """The difference of ``arm``'s mean val top-1 error from ``baseline``'s (NaN where either
    has no seed) and its interval (None with fewer than two seeds in either)."""
    a, b = arm.errors(1), baseline.errors(1)
    difference = statistics.fmean(a) - statistics.fmean(b) if a and b else math.nan
    return difference, welch_interval(a, b)


def _points(fraction: float) -> str:
    """An error difference in signed percentage points: ``+4.2``, ``\u22123.1``."""
    return f"{100 * fraction:+.1f}".replace("-", _MINUS)


def _bounds(interval: Interval) -> str:
    return f"[{_points(interval.low)}, {_points(interval.high)}]"


def _seeds(arm: Arm) -> str:
    others = [f"{n} {what}" for n, what in ((arm.failed, "failed"), (arm.running, "running")) if n]
    return f"{len(arm.done)} ({', '.join(others)})" if others else str(len(arm.done))


def _spread(arm: Arm) -> str:
    errors = [100 * e for e in arm.errors(1)]
    if not errors:
        return _NONE
    mean = f"{statistics.fmean(errors):.1f}"
    return f"{mean} ± {statistics.stdev(errors):.1f}" if len(errors) > 1 else mean


def paper_delta(arm: Arm, baseline: Arm) -> tuple[float, str] | None:
    """The paper's difference for ``arm`` (points, section) where it states one: for an
    ablation's arm compared with the ``baseline`` arm, the quickstart as it is."""
    return PAPER_DELTAS.get(arm.label) if baseline.label == BASELINE else None


def arms_table(arms: Sequence[Arm], baseline: Arm) -> str:
    """The markdown table of the arms: seeds, mean ± sd of val top-1 error in percent, the
    difference from ``baseline`` with its 95% interval and the paper's difference."""
    head = [
        "arm",
        "seeds",
        "val top-1 % (mean ± sd)",
        f"vs {baseline.label}, points [95% interval]",
        "paper, points",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm in arms:
        difference, interval = compare(arm, baseline)
        if arm is baseline:
            versus = "baseline"
        elif math.isnan(difference):
            versus = _NONE
        else:
            versus = f"{_points(difference)} {_bounds(interval) if interval else '[—]'}"
        paper = paper_delta(arm, baseline)
        stated = f"{paper[0]:+.1f} (section {paper[1]})" if paper else _NONE
        cells = [arm.label, _seeds(arm), _spread(arm), versus, stated]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(arms: Sequence[Arm], baseline: Arm) -> list[str]:
    """A line per arm other than ``baseline`` saying whether its difference is
    distinguishable from zero at 95%, and a closing line where none is."""
    others = [arm for arm in arms if arm is not baseline]
    if not others:
        return [f"One arm only ({baseline.label}): nothing to compare."]
    if not baseline.done:
        return [f"{baseline.label} has no finished seed: nothing to compare with."]
    lines: list[str] = []
    judged = distinct = 0
    for arm in others:
        difference, interval = compare(arm, baseline)
        n, m = len(arm.done), len(baseline.done)
        if not n and arm.running:
            lines.append(f"{arm.label}: no result yet, {arm.running} running")
        elif not n:
            lost = f"all {arm.failed} of its jobs" if arm.failed > 1 else "its job"
            lines.append(f"{arm.label}: no result, {lost} failed")
        elif interval is None:
            lines.append(
                f"{arm.label}: {_points(difference)} points, no interval: that needs at least "
                f"2 seeds in each arm ({arm.label} has {n}, {baseline.label} {m})"
            )
        else:
            judged += 1
            distinct += interval.excludes_zero
            verdict = "distinguishable" if interval.excludes_zero else "not distinguishable"
            over = f"{n} seeds" if n == m else f"{n} seeds ({baseline.label}: {m})"
            lines.append(
                f"{arm.label}: {_points(difference)} points {_bounds(interval)}, "
                f"{verdict} from zero over {over}"
            )
    if not judged:
        lines.append(
            "No difference can be judged: with fewer than 2 seeds in an arm its "
            "seed-to-seed spread is unknown (sweep seed=0,1,2)."
        )
    elif not distinct:
        lines.append(f"No arm's difference from {baseline.label} is distinguishable from zero.")
    if judged:
        lines.append(
            f"(Welch's t intervals at {CONFIDENCE:.0%}, each on its own: were no arm to differ, "
            f"about {judged * (1 - CONFIDENCE):.1f} of these {judged} would leave zero out "
            "by chance.)"
        )
    return lines


def report_text(jobs: Sequence[Job], arms: Sequence[Arm], baseline: Arm) -> str:
    """What the report prints and writes: the jobs' table, the arms' table and the lines."""
    lines = "\n".join(f"- {line}" for line in verdicts(arms, baseline))
    return f"{table(jobs)}\n\n{arms_table(arms, baseline)}\n\n{lines}"


def num_classes(job: Job) -> int | None:
    """How many classes ``job`` was trained on: ``results.json``'s ``num_classes`` where it
    says, else ``data.num_classes`` of its ``.hydra/config.yaml`` (the built-in data's), else
    None (a folder dataset's classes are its folders, not in the config)."""
    recorded = job.results.get("num_classes")
    if isinstance(recorded, int):
        return recorded
    config = job.path / ".hydra" / "config.yaml"
    if not config.is_file():
        return None
    value = OmegaConf.select(
        OmegaConf.load(config), "data.num_classes", default=None, throw_on_resolution_failure=False
    )
    return value if isinstance(value, int) else None


@dataclass(frozen=True)
class ChartData:
    """What the report's chart draws: per arm (``labels``), each series' seed values
    (``{"val top-1": [[...], ...]}``) and how many jobs failed and still run; the chance
    error, if known."""

    labels: list[str]
    series: dict[str, list[list[float]]]
    failed: list[int]
    running: list[int]
    chance: float | None


def chart_data(arms: Sequence[Arm]) -> ChartData:
    """The arms' val top-1 errors, and top-5 unless every one is below ``TRIVIAL_TOP5`` (with
    10 classes top-5 is near zero and says nothing); chance is 1 - 1/classes where every job
    that says agrees on the number of classes."""
    series = {"val top-1": [arm.errors(1) for arm in arms]}
    top5 = [arm.errors(5) for arm in arms]
    if any(e >= TRIVIAL_TOP5 for errors in top5 for e in errors):
        series["val top-5"] = top5
    classes = {c for arm in arms for job in arm.jobs if (c := num_classes(job)) is not None}
    chance = 1.0 - 1.0 / classes.pop() if len(classes) == 1 else None
    return ChartData(
        [arm.label for arm in arms],
        series,
        [arm.failed for arm in arms],
        [arm.running for arm in arms],
        chance,
    )


def chart(arms: Sequence[Arm], path: Path) -> Path:
    """The arms' chart (:func:`chart_data` drawn by :func:`lit_alexnet.plots.error_chart`)."""
    data = chart_data(arms)
    return error_chart(
        data.labels,
        data.series,
        path,
        failed=data.failed,
        running=data.running,
        chance=data.chance,
    )


def curves(jobs: Sequence[Job], path: Path) -> Path | None:
    """The jobs' learning curves in one figure (their ``curves.json``), a colour per arm;
    None where no job has any."""
    arm_of = {str(job.path): arm.label for arm in group_arms(jobs) for job in arm.jobs}
    runs = {str(job.path): job.curves for job in jobs if job.curves}
    return learning_curves(runs, path, arm_of=arm_of) if runs else None


def epochs_to(rows: Sequence[Mapping[str, float]], threshold: float) -> int | None:
    """The first epoch of a run's ``curves.json`` rows whose running training top-1 error is
    at most ``threshold``: Figure 1's measure of how fast a net learns; None where none is."""
    for row in rows:
        error = row.get("train/top1_error")
        if error is not None and error <= threshold:
            return int(row["epoch"])
    return None


def _seed_of(job: Job) -> str:
    return job.overrides.get(SEED, _DEFAULT)


@dataclass(frozen=True)
class Reached:
    """A job's epochs to the threshold (None: not within them) and the epochs it trained."""

    epochs: int | None
    trained: int

    def __str__(self) -> str:
        return str(self.epochs) if self.epochs is not None else f">{self.trained}"


def epoch_ratio(
    arm: Arm, baseline: Arm, reached: Mapping[Path, Reached]
) -> tuple[RatioInterval | None, int]:
    """``arm``'s epochs to the threshold over ``baseline``'s, seed by seed (both arms' jobs of
    that seed must reach it; ``reached`` has every done job's): their geometric mean and its
    95% interval, and how many seeds were left out because a run never reached it."""
    theirs = {_seed_of(job): reached[job.path].epochs for job in baseline.done}
    ratios, censored = [], 0
    for job in arm.done:
        seed = _seed_of(job)
        if seed not in theirs:
            continue
        mine, base = reached[job.path].epochs, theirs[seed]
        if mine is None or base is None:
            censored += 1
        else:
            ratios.append(mine / base)
    return (ratio_interval(ratios) if ratios else None), censored


def speed_table(arms: Sequence[Arm], baseline: Arm, threshold: float) -> str:
    """Figure 1's comparison (section 3.1) for every arm: each seed's epochs until the epoch's
    running training top-1 error is at most ``threshold`` (``>N``: not within its N epochs),
    and the ratio to the baseline's, paired by seed."""
    reached = {
        job.path: Reached(epochs_to(job.curves, threshold), len(job.curves))
        for arm in arms
        for job in arm.done
    }
    rows = [
        f"| arm | epochs to {threshold:.0%} training error, by seed | vs {baseline.label}, "
        f"ratio [{CONFIDENCE:.0%} interval] |",
        "|---|---|---|",
    ]
    for arm in arms:
        seeds = ", ".join(f"{_seed_of(job)}: {reached[job.path]}" for job in arm.done) or _NONE
        if arm is baseline:
            versus = "baseline"
        else:
            interval, censored = epoch_ratio(arm, baseline, reached)
            versus = _NONE if interval is None else f"{interval.mean:.2f}x"
            if interval is not None and interval.n >= 2:
                versus += f" [{interval.low:.2f}, {interval.high:.2f}] over {interval.n} seeds"
            if censored:
                versus += f" ({censored} seed{'s' if censored > 1 else ''} never got there)"
        rows.append(f"| {arm.label} | {seeds} | {versus} |")
    return "\n".join(rows)


def _figure(value: float) -> str:
    return _NONE if math.isnan(value) else f"{value:.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Print and write the report; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog=prog("lit_alexnet.report"), description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("paths", type=Path, nargs="+", help="a sweep folder, or run folders")
    parser.add_argument("--out", type=Path, help="where report.md and report.png go")
    parser.add_argument(
        "--train-error",
        type=float,
        metavar="F",
        help="also each arm's epochs until its running training top-1 error is at most F "
        "(Figure 1's measure: 0.25) and their ratio to the baseline's",
    )
    parser.add_argument(
        "--baseline",
        metavar="LABEL",
        help=f"the arm the others are compared with (default: {BASELINE}, else the first)",
    )
    parser.add_argument(
        "--wandb",
        action="store_true",
        help="also log the charts to W&B, in the sweep's group (offline unless WANDB_MODE=online)",
    )
    args = parser.parse_args(argv)
    if args.train_error is not None and not 0 < args.train_error <= 1:
        parser.error(f"--train-error {args.train_error}: must be a fraction in (0, 1], e.g. 0.25")
    try:
        jobs = find_jobs(args.paths)
        arms = group_arms(jobs)
        baseline = choose_baseline(arms, args.baseline)
    except (Refused, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or (args.paths[0] if len(args.paths) == 1 else Path.cwd())
    text = report_text(jobs, arms, baseline)
    if args.train_error is not None:
        text += "\n\n" + speed_table(arms, baseline, args.train_error)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(text + "\n")
    pictures = [chart(arms, out / "report.png"), curves(jobs, out / "report_curves.png")]
    print(text)
    print(f"wrote {out / 'report.md'}, " + " and ".join(str(p) for p in pictures if p))
    if args.wandb:
        # The jobs of a sweep share their W&B project and group; any job's record gives them.
        training = next((j.results["wandb"] for j in jobs if "wandb" in j.results), None)
        keys = ("report/chart", "report/curves")
        where = log_pictures(
            {key: p for key, p in zip(keys, pictures, strict=True) if p},
            out,
            "report",
            name="report",
            training=training,
            config={"jobs": [str(j.path) for j in jobs]},
        )
        print(saved_line(where))
    return 0


if __name__ == "__main__":
    sys.exit(main())
