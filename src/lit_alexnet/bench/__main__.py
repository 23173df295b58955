"""Command line for the benchmarks: ``python -m lit_alexnet.bench COMMAND [options]``."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lit_alexnet.console import prog
from lit_alexnet.data.choices import BATCH_SIZE  # a plain module: --help stays quick


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give counts >= 0 separated by commas")
    return counts


def _command(commands: Any, name: str, what: str, run: Callable[..., int]) -> Any:
    """A subcommand that runs ``run`` and can write its report to ``--output``."""
    command = commands.add_parser(name, help=what, description=what)
    command.add_argument("--output", type=Path, help="also write a markdown report here")
    command.set_defaults(run=run)
    return command


def _parser() -> argparse.ArgumentParser:
    # Each benchmark is imported when it runs, so that --help answers at once.
    parser = argparse.ArgumentParser(prog=prog("lit_alexnet.bench"), description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model = _command(
        commands,
        "model",
        "time a training step of AlexNet, the same with torch's LRN, and torchvision's alexnet",
        _run_model,
    )
    model.add_argument("--batch-size", type=int, default=16, help="images per step (16)")
    model.add_argument("--steps", type=int, default=10, help="timed steps per net (10)")
    model.add_argument("--warmup", type=int, default=3, help="untimed steps per net first (3)")
    model.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    model.add_argument("--precision", choices=("32", "bf16"), default="32", help="bf16: autocast")
    model.add_argument("--channels-last", action="store_true", help="NHWC batches, as DALI's")
    model.add_argument(
        "--optimizer", choices=("sgd", "adamw"), default="sgd", help="section 5's; quickstart's"
    )
    model.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    data = _command(
        commands,
        "data",
        "images per second of DALI and torchvision's DataLoader on the same JPEGs, raw and "
        "prepared at 256x256; the last line is DALI's over the best DataLoader's",
        _run_data,
    )
    source = data.add_mutually_exclusive_group()
    source.add_argument("--root", type=Path, help="a dataset root with train/<class>/*.jpg")
    source.add_argument(
        "--kind",
        choices=("builtin", "photo"),
        default="builtin",
        help="generated data: the built-in dataset (default) or photo-like 500x375 JPEGs",
    )
    data.add_argument("--images", type=int, default=1024, help="images per epoch (1024)")
    data.add_argument("--batch-size", type=int, default=64, help="images per batch (64)")
    data.add_argument("--repeats", type=int, default=5, help="timed epochs per loader (5)")
    data.add_argument("--warmup", type=int, default=1, help="untimed epochs per loader (1)")
    data.add_argument(
        "--workers", type=_counts, help="DataLoader workers, e.g. 0,2,4 (default 0, 1, 2, 4, ...)"
    )
    data.add_argument("--threads", type=_counts, help="DALI threads (default: cores, cores + 1)")
    data.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help="DALI's")
    data.add_argument(
        "--prepared",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the images prepared at 256x256, as a folder and as shards (written "
        "into the cache for generated data; for --root, give the two roots below)",
    )
    data.add_argument("--prepared-root", type=Path, help="--root as data.prepare writes it")
    data.add_argument("--shards-root", type=Path, help="the same with --format shards")
    gpu = _command(
        commands,
        "gpu",
        "run and measure every GPU path in one go (each part says 'no GPU: skipped' without "
        "one); exit status 1 if a part raised an error",
        _run_gpu,
    )
    gpu.add_argument(
        "--quick",
        action="store_true",
        help="every part on fewer steps and photos (about 3 minutes on one H200); the options "
        "below still win",
    )
    gpu.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        help="images per batch (%(default)s, the data's)",
    )
    gpu.add_argument("--images", type=int, help="photos in the set (1024; quick 256)")
    gpu.add_argument("--steps", type=int, help="timed steps per net (20; quick 10)")
    gpu.add_argument("--fit-steps", type=int, help="end-to-end batches (300; quick 100)")
    check = commands.add_parser(
        "check",
        help="the GPU check: install carried wheels, then the gpu tests, bench gpu --quick, "
        "a DALI smoke run and the quickstart, each under its cap (8 minutes in all)",
        description="the GPU check (lit_alexnet.bench.check); exit status 1 if a part that "
        "ran failed or outran its cap",
    )
    check.add_argument(
        "--output-dir", type=Path, required=True, help="check.md and each part's log go here"
    )
    check.add_argument(
        "--wheels", type=Path, help="a folder of *.whl, or of the part* files that join into them"
    )
    check.add_argument(
        "--only",
        nargs="+",
        default=(),
        metavar="PART",
        help="run only these parts (gpu-tests, bench-gpu-quick, smoke-dali-gpu, quickstart-gpu)",
    )
    check.set_defaults(run=_run_check)
    for command in (data, gpu):
        command.add_argument("--cache-dir", type=Path, help="default: $LIT_ALEXNET_CACHE")
    return parser


def _report(args: argparse.Namespace, format: Callable[..., str], results: Any) -> None:
    """Print ``results``; with ``--output``, also write them there as markdown."""
    print(format(results))
    if args.output is not None:
        command = shlex.join(["python", "-m", "lit_alexnet.bench", *args.argv])
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(format(results, markdown=True, command=command), encoding="utf-8")


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _run_model(args: argparse.Namespace) -> int:
    from lit_alexnet.bench.model import format_model_results, run_model_benchmark

    options = ("batch_size", "steps", "warmup", "threads", "precision", "channels_last")
    kwargs = {name: getattr(args, name) for name in (*options, "optimizer", "device")}
    _report(args, format_model_results, run_model_benchmark(**kwargs))
    return 0


def _run_data(args: argparse.Namespace) -> int:
    from lit_alexnet.bench.data import ensure_prepared, format_data_results, run_data_benchmark
    from lit_alexnet.bench.photos import ensure_photo_dataset
    from lit_alexnet.data.builtin import ensure_builtin_dataset
    from lit_alexnet.data.cache import default_cache_dir

    cache = (args.cache_dir or default_cache_dir()).expanduser()
    root, kind, prepared, shards = args.root, "root", args.prepared_root, args.shards_root
    if root is None:
        kind = args.kind
        if kind == "photo":
            root = ensure_photo_dataset(cache, args.images)
        else:
            root = ensure_builtin_dataset(cache)
        if args.prepared:
            prepared, shards = ensure_prepared(root, cache), ensure_prepared(root, cache, True)
    if not args.prepared:
        prepared = shards = None
    names = ("images", "batch_size", "repeats", "warmup", "workers", "threads", "device")
    options = {name: getattr(args, name) for name in names}
    results = run_data_benchmark(
        root, kind=kind, prepared=prepared, shards=shards, log=_log, **options
    )
    _report(args, format_data_results, results)
    return 0


def _run_gpu(args: argparse.Namespace) -> int:
    from lit_alexnet.bench.gpu import QUICK, GpuBenchSettings, format_gpu_report, run_gpu_benchmark
    from lit_alexnet.console import quiet_console

    quiet_console(wandb_offline=True)
    given = {"images": args.images, "model_steps": args.steps, "fit_steps": args.fit_steps}
    options = {**(QUICK if args.quick else {}), **{k: v for k, v in given.items() if v is not None}}
    try:
        settings = GpuBenchSettings(batch_size=args.batch_size, cache_dir=args.cache_dir, **options)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results = run_gpu_benchmark(settings, log=_log)
    _report(args, format_gpu_report, results)
    return 1 if results["errors"] else 0  # skipped parts and missed targets are no error


def _run_check(args: argparse.Namespace) -> int:
    from lit_alexnet.bench.check import PARTS, failed, run_check

    unknown = sorted(set(args.only) - {part.name for part in PARTS})
    if unknown:
        names = ", ".join(part.name for part in PARTS)
        print(
            f"error: --only {' '.join(unknown)}: no such part; the parts: {names}", file=sys.stderr
        )
        return 2
    outcomes = run_check(args.output_dir, wheels=args.wheels, only=args.only, say=_log)
    return 1 if failed(outcomes) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen benchmark; returns the exit status."""
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for reports: how it was run
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
