"""Benchmarks for lit_alexnet: run them with ``python -m lit_alexnet.bench SUBCOMMAND``.

Subcommands:
    model   time a training step of the paper's AlexNet against torchvision's alexnet,
            and against the same net with ``torch.nn.LocalResponseNorm`` swapped in.

These are measurements, not tests: they print figures for the machine they run on.
"""
