"""Command line for the benchmarks: ``python -m lit_alexnet.bench {model,data,gpu} [options]``."""

from __future__ import annotations

import argparse
import shlex
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
    p.add_argument(
        "--precision", choices=("32", "bf16"), default="32", help="float32 or bf16 autocast"
    )
    p.add_argument("--channels-last", action="store_true", help="NHWC batches (the quickstart's)")
    p.add_argument(
        "--optimizer", choices=("sgd", "adamw"), default="sgd", help="section 5's or fused AdamW"
    )
    p.add_argument(
        "--device", default="cpu", help="where the nets run: cpu (default), cuda or cuda:N"
    )
    p.add_argument("--output", type=Path, default=None, help="also write a markdown report here")
    p.set_defaults(run=_run_model)


def _run_model(args: argparse.Namespace) -> int:
    from lit_alexnet.bench.model import format_model_results, run_model_benchmark

    results = run_model_benchmark(
        args.batch_size,
        args.steps,
        args.warmup,
        args.threads,
        precision=args.precision,
        channels_last=args.channels_last,
        optimizer=args.optimizer,
        device=args.device,
    )
    print(format_model_results(results))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(format_model_results(results, markdown=True), encoding="utf-8")
    return 0


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give counts >= 0 separated by commas")
    return counts


def _add_data_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data",
        help="images per second of the DALI pipeline vs torchvision's DataLoader",
        description="Time whole training epochs of the DALI pipeline and of torchvision's "
        "DataLoader (several worker counts) on the same JPEG folder with the same "
        "augmentation, interleaved; the last line is DALI's images per second over the best "
        "DataLoader's.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--root", type=Path, default=None, help="a dataset root with train/<class>/*.jpg"
    )
    source.add_argument(
        "--kind",
        choices=("builtin", "photo"),  # lit_alexnet.bench.data.KINDS; importing it is slow
        default="builtin",
        help="generated data: the built-in dataset (default) or photo-like 500x375 JPEGs",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="where generated data lives (default $LIT_ALEXNET_CACHE or ~/.cache/lit_alexnet)",
    )
    p.add_argument(
        "--images",
        type=int,
        default=1024,
        help="images per epoch: --kind photo generates this many, a root or the built-in "
        "dataset gives at most this many, evenly spread (default 1024)",
    )
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    p.add_argument("--repeats", type=int, default=5, help="timed epochs per loader (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs per loader (default 1)")
    p.add_argument(
        "--workers",
        type=_counts,
        default=None,
        help="DataLoader worker counts to try, e.g. 0,2,4 (default 0, 1, 2, 4, ... up to the "
        "usable cores, and one more)",
    )
    p.add_argument(
        "--threads",
        type=_counts,
        default=None,
        help="DALI CPU thread counts to try, e.g. 2,3 (default: the usable cores, and one more)",
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "gpu"),
        default="auto",
        help="where DALI decodes and augments (default auto: the GPU where there is one)",
    )
    p.add_argument(
        "--prepared",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time both loaders on the 256x256 version of the same images, as a folder "
        "and as webdataset shards, written by lit_alexnet.data.prepare (into the cache for "
        "generated data; for --root, give --prepared-root and --shards-root); default on",
    )
    p.add_argument(
        "--prepared-root",
        type=Path,
        default=None,
        help="the prepared version of --root (python -m lit_alexnet.data.prepare ROOT OUT)",
    )
    p.add_argument(
        "--shards-root",
        type=Path,
        default=None,
        help="the same as shards (python -m lit_alexnet.data.prepare ROOT OUT --format shards)",
    )
    p.add_argument("--output", type=Path, default=None, help="also write a markdown report here")
    p.set_defaults(run=_run_data)


def _run_data(args: argparse.Namespace) -> int:
    from lit_alexnet.bench.data import format_data_results, run_data_benchmark
    from lit_alexnet.bench.photos import ensure_photo_dataset
    from lit_alexnet.data.builtin import default_cache_dir

    if args.root is not None:
        root, kind = args.root, "root"
    else:
        cache = default_cache_dir() if args.cache_dir is None else args.cache_dir.expanduser()
        kind = args.kind
        if kind == "photo":
            root = ensure_photo_dataset(cache, args.images)
        else:
            from lit_alexnet.data.builtin import ensure_builtin_dataset

            root = ensure_builtin_dataset(cache)
    prepared, shards = args.prepared_root, args.shards_root
    if args.prepared and args.root is None:
        from lit_alexnet.bench.data import ensure_prepared, ensure_shards

        prepared, shards = ensure_prepared(root, cache), ensure_shards(root, cache)
    results = run_data_benchmark(
        root,
        kind=kind,
        images=args.images,
        batch_size=args.batch_size,
        repeats=args.repeats,
        warmup=args.warmup,
        workers=args.workers,
        threads=args.threads,
        device=args.device,
        prepared=prepared if args.prepared else None,
        shards=shards if args.prepared else None,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(format_data_results(results))
    if args.output is not None:
        command = shlex.join(["python", "-m", "lit_alexnet.bench", *args.argv])
        args.output.parent.mkdir(parents=True, exist_ok=True)
        report = format_data_results(results, markdown=True, command=command)
        args.output.write_text(report, encoding="utf-8")
    return 0


def _add_gpu_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "gpu",
        help="run and measure every GPU path (each says 'no GPU: skipped' without one)",
        description="In one go, under 10 minutes on one H100: the gpu-marked tests; a training "
        "step of AlexNet vs torchvision's alexnet in fp32 and in bf16 channels-last; DALI mixed "
        "decoding on photo-like JPEGs; an end-to-end fit against the model-only figure; "
        "model.compile against eager; the two-device strategy on one GPU against the plain "
        "model. Exit status 1 if a part raised an error; skipped parts are not errors.",
    )
    p.add_argument("--batch-size", type=int, default=128, help="images per batch (default 128)")
    p.add_argument(
        "--images", type=int, default=1024, help="photo-like JPEGs in the photo set (default 1024)"
    )
    p.add_argument(
        "--steps", type=int, default=20, help="timed steps per net of the model parts (default 20)"
    )
    p.add_argument(
        "--fit-steps",
        type=int,
        default=300,
        help="batches of the end-to-end fit, of which the first 50 are not timed (default 300)",
    )
    p.add_argument("--no-tests", action="store_true", help="leave out the gpu-marked tests")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="where the photo set lives (default $LIT_ALEXNET_CACHE or ~/.cache/lit_alexnet)",
    )
    p.add_argument("--output", type=Path, default=None, help="also write a markdown report here")
    p.set_defaults(run=_run_gpu)


def _run_gpu(args: argparse.Namespace) -> int:
    from lit_alexnet.bench.gpu import GpuBenchSettings, format_gpu_report, run_gpu_benchmark
    from lit_alexnet.console import quiet_console

    quiet_console(wandb_offline=True)
    try:
        settings = GpuBenchSettings(
            batch_size=args.batch_size,
            images=args.images,
            model_steps=args.steps,
            fit_steps=args.fit_steps,
            run_tests=not args.no_tests,
            cache_dir=None if args.cache_dir is None else args.cache_dir.expanduser(),
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = run_gpu_benchmark(settings, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(format_gpu_report(report))
    if args.output is not None:
        command = shlex.join(["python", "-m", "lit_alexnet.bench", *args.argv])
        args.output.parent.mkdir(parents=True, exist_ok=True)
        text = format_gpu_report(report, markdown=True, command=command)
        args.output.write_text(text, encoding="utf-8")
    return report.exit_status


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen benchmark; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m lit_alexnet.bench", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_model_parser(subparsers)
    _add_data_parser(subparsers)
    _add_gpu_parser(subparsers)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for reports: how it was run
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
