"""Naming the file that stopped a DALI pipeline.

A decode error inside a DALI pipeline leaves the pipeline unusable. DALI's decoder names the
file when it fails to decode one (``Failed to decode sample #i : PATH``), which
:func:`named_in_error` reads; when it cannot even tell the format (``nvImageCodec failure``),
it names none, and :func:`find_undecodable` finds the file by decoding the split again with
DALI's own CPU decoder, a batch at a time, then one file at a time within the batch that
fails. That runs only after such a failure (``verify`` finds what it can beforehand), so its
cost, up to one decode of the split, is paid by a run that has stopped anyway.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from lit_alexnet.checks import Invalid
from lit_alexnet.data.parallel import progress_bar, usable_cpus

__all__ = ["UndecodableImage", "find_undecodable", "named_in_error"]

_BATCH = 256


class UndecodableImage(Invalid):
    """A file DALI's decoder could not read, found after it stopped a pipeline."""


def _decodes(files: Sequence[Path]) -> str | None:
    """None if DALI's CPU decoder reads every file of ``files``, else its error's last line."""
    from nvidia.dali import fn, pipeline_def, types
    from nvidia.dali.pipeline import DataNode

    def decode() -> DataNode:
        encoded, _ = fn.readers.file(files=[str(f) for f in files], labels=[0] * len(files))
        return fn.decoders.image(encoded, device="cpu", output_type=types.DALIImageType.RGB)

    pipe = pipeline_def(decode)(batch_size=len(files), num_threads=usable_cpus(), device_id=None)
    try:
        pipe.build()
        pipe.run()
    except RuntimeError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        causes = [line for line in lines if "pipeline" not in line.lower()]
        return (causes or lines or ["decode error"])[-1]
    finally:
        del pipe
    return None


_NAMED = re.compile(r"^(Failed to decode sample #\d+) : (.+?)\s*$", re.M)


def named_in_error(message: str, files: Sequence[Path]) -> tuple[Path, str] | None:
    """The file of ``files`` that DALI's error ``message`` names as undecodable, with its
    words, or None where it names none of them."""
    for match in _NAMED.finditer(message):
        named = Path(match.group(2))
        if named in set(files):
            return named, match.group(1)
    return None


def find_undecodable(files: Sequence[Path]) -> tuple[Path, str] | None:
    """The first file of ``files`` that DALI's CPU decoder cannot read, with its error, or
    None if it reads them all (the failure was elsewhere: the GPU, memory)."""
    with progress_bar() as bar:
        task = bar.add_task("Finding the file DALI could not decode", total=len(files))
        for start in range(0, len(files), _BATCH):
            batch = files[start : start + _BATCH]
            if _decodes(batch) is not None:
                for path in batch:
                    error = _decodes([path])
                    if error is not None:
                        return path, error
            bar.advance(task, len(batch))
    return None
