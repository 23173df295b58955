"""``python -m lit_alexnet.report SWEEP``: one table of a sweep's jobs, as markdown and a chart.

    python -m lit_alexnet.train -m pooling=overlap,standard norm=lrn,none
    python -m lit_alexnet.report multirun/2026-12-02/10-00-00
    python -m lit_alexnet.report outputs/2026-12-02/10-00-00 outputs/2026-12-02/11-30-00

Each job is a row: a column for every override that differs between the jobs, its status
(``done``; ``running``; ``failed``, ``interrupted`` or ``killed`` where it did not finish;
``no results`` for a folder written before lit_alexnet 0.2), validation and, where tested,
test top-1 and top-5 errors, epochs and wall time, all read from the jobs' ``results.json``.
The table is printed and written as ``report.md`` with a bar chart ``report.png`` and the
jobs' learning curves ``report_curves.png`` (into the sweep folder, or ``--out``).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lit_alexnet.callbacks import read_curves
from lit_alexnet.checks import Missing
from lit_alexnet.console import prog
from lit_alexnet.plots import error_chart, learning_curves
from lit_alexnet.runs import RESULTS, read_results, run_overrides

_NONE = "—"


@dataclass
class Job:
    """One job of a sweep: its folder, its overrides as ``{key: value}`` and its results."""

    path: Path
    overrides: dict[str, str]
    results: dict[str, Any]

    def error(self, split: str, k: int) -> float:
        """The job's ``split`` ("val" or "test") top-``k`` error, NaN where it has none."""
        return float(self.results.get(split, {}).get(f"top{k}_error", math.nan))


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
        cells += [str(r.get("epochs", _NONE)), _duration(r.get("wall_s"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _labels(jobs: Sequence[Job]) -> list[str]:
    """Each job as its overrides that vary (``pooling=standard``), or its folder's name."""
    keys = varying_keys(jobs)
    return [
        ", ".join(f"{k}={job.overrides.get(k, _NONE)}" for k in keys) or job.path.name
        for job in jobs
    ]


def chart(jobs: Sequence[Job], path: Path) -> Path:
    """A bar chart of the jobs' errors."""
    labels = _labels(jobs)
    series = {f"val top-{k}": [job.error("val", k) for job in jobs] for k in (1, 5)}
    if any("test" in job.results for job in jobs):
        series |= {f"test top-{k}": [job.error("test", k) for job in jobs] for k in (1, 5)}
    return error_chart(labels, series, path)


def curves(jobs: Sequence[Job], path: Path) -> Path | None:
    """The jobs' learning curves in one figure (their ``curves.json``); None where no job
    has any."""
    runs = {
        label: rows
        for label, job in zip(_labels(jobs), jobs, strict=True)
        if (rows := read_curves(job.path))
    }
    return learning_curves(runs, path) if runs else None


def _figure(value: float) -> str:
    return _NONE if math.isnan(value) else f"{value:.3f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return _NONE
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def main(argv: Sequence[str] | None = None) -> int:
    """Print and write the report; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog=prog("lit_alexnet.report"), description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("paths", type=Path, nargs="+", help="a sweep folder, or run folders")
    parser.add_argument("--out", type=Path, help="where report.md and report.png go")
    args = parser.parse_args(argv)
    try:
        jobs = find_jobs(args.paths)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or (args.paths[0] if len(args.paths) == 1 else Path.cwd())
    text = table(jobs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(text + "\n")
    pictures = [chart(jobs, out / "report.png"), curves(jobs, out / "report_curves.png")]
    print(text)
    print(f"wrote {out / 'report.md'}, " + " and ".join(str(p) for p in pictures if p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
