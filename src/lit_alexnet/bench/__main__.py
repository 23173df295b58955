"""Command line for the benchmarks: ``python -m lit_alexnet.bench {model} [options]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _add_model_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "model",
        help="time a training step of AlexNet vs torchvision's alexnet",
        description="Time forward + loss + backward + SGD of the paper's AlexNet, the same net "
        "with torch.nn.LocalResponseNorm, and torchvision's alexnet, interleaved.",
    )
    p.add_argument("--batch-size", type=int, default=16, help="images per step (default 16)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per net (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per net (default 3)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--output", type=Path, default=None, help="also write a markdown report here")
    p.set_defaults(run=_run_model)


def _run_model(args: argparse.Namespace) -> int:
    from lit_alexnet.bench.model import format_model_results, run_model_benchmark

    results = run_model_benchmark(args.batch_size, args.steps, args.warmup, args.threads)
    print(format_model_results(results))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(format_model_results(results, markdown=True), encoding="utf-8")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen benchmark; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m lit_alexnet.bench", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_model_parser(subparsers)
    # Later subcommands (e.g. ``data``) register themselves here the same way.
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
