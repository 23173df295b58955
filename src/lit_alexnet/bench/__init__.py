"""Benchmarks for lit_alexnet: run them with ``python -m lit_alexnet.bench SUBCOMMAND``.

Subcommands:
    model   time a training step of the paper's AlexNet against torchvision's alexnet,
            and against the same net with ``torch.nn.LocalResponseNorm`` swapped in.
    data    images per second of the DALI pipeline against torchvision's DataLoader, on
            raw photos and on their prepared 256x256 copies.
    gpu     every GPU path run and measured in one go (each part skipped without a GPU).
    check   the GPU check for a lent machine: carried wheels installed, then the gpu tests,
            ``gpu --quick``, a DALI smoke run and the quickstart, each under its time cap.

These are measurements, not tests: they print figures for the machine they run on.
"""
