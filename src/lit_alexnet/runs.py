"""A training run's output directory, as the commands that read it back see it.

A run (``outputs/<date>/<time>/`` or one job of a multirun) holds Hydra's record of how it was
composed (``.hydra/overrides.yaml``), its checkpoints and ``results.json``, which the job
writes through :class:`RunRecord` when it starts (status ``running``) and rewrites when it
ends (``done``, ``failed`` or ``interrupted``) with its figures.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lit_alexnet.checks import Invalid
from lit_alexnet.data.cache import pid_alive

RESULTS = "results.json"
_BEST = re.compile(r"top1err(\d+\.\d+)\.ckpt$")


class RunError(Invalid):
    """A path that is not a run, or a run without what a command needs."""


def run_dir_of(path: str | Path) -> Path:
    """The run directory of ``path``: the directory itself, or the run a checkpoint is in."""
    path = Path(path).expanduser()
    if path.is_file() and path.suffix == ".ckpt":
        return path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if not path.is_dir():
        raise RunError(f"{path} is neither a run's output directory nor a .ckpt file")
    return path


def best_checkpoint(path: str | Path) -> Path:
    """``path`` if it is a checkpoint, else the run's best (lowest validation top-1 error),
    else its ``last.ckpt``."""
    path = Path(path).expanduser()
    if path.is_file():
        return path
    folder = run_dir_of(path) / "checkpoints"
    scored = [(float(m.group(1)), p) for p in folder.glob("*.ckpt") if (m := _BEST.search(p.name))]
    if scored:
        return min(scored)[1]
    if (folder / "last.ckpt").exists():
        return folder / "last.ckpt"
    raise RunError(f"{path} has no checkpoint in {folder}: was the run stopped before one?")


def run_overrides(run: Path) -> list[str]:
    """The command-line overrides the run was composed with (Hydra's ``overrides.yaml``)."""
    saved = run / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        return []
    return [str(o) for o in OmegaConf.load(saved)]


def write_results(run: Path, results: dict[str, Any]) -> Path:
    """Write ``results`` (with the writing process's host and pid) as ``run/results.json``."""
    path = run / RESULTS
    tmp = path.with_suffix(".json.tmp")
    payload = {**results, "host": socket.gethostname(), "pid": os.getpid()}
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def read_results(run: Path) -> dict[str, Any]:
    """``run/results.json``; a ``running`` job whose process is gone on this host reads as
    ``killed``, and a run without the file as ``no results``."""
    path = run / RESULTS
    if not path.is_file():
        return {"status": "no results"}
    results: dict[str, Any] = json.loads(path.read_text())
    if (
        results.get("status") == "running"
        and results.get("host") == socket.gethostname()
        and not pid_alive(int(results.get("pid", 0)))
    ):
        results["status"] = "killed"
    return results


class RunRecord:
    """``results.json`` of a job as it runs: ``running`` from the start, then ``done``,
    ``failed`` (with the error) or ``interrupted``, with the figures added by :meth:`update`
    and the wall time. Only the process that ``writes`` (rank 0) touches the file."""

    def __init__(self, run: Path, writes: bool = True, **fields: Any) -> None:
        self.run = run
        self.writes = writes
        self.fields: dict[str, Any] = {
            "status": "running",
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **fields,
        }

    def update(self, **fields: Any) -> None:
        """Add ``fields`` to the record (written when the job ends)."""
        self.fields.update(fields)

    @contextmanager
    def kept(self, started: float) -> Iterator[RunRecord]:
        """Write the record now, and again when the block ends however it ends: an error
        still ``running`` is ``failed``; ``started`` (a ``time.monotonic()``) gives the wall
        time."""
        self._write()
        try:
            yield self
        except BaseException as e:
            if self.fields["status"] == "running":
                self.update(status="failed", error=f"{type(e).__name__}: {e}")
            raise
        finally:
            self.update(wall_s=round(time.monotonic() - started, 1))
            self._write()

    def _write(self) -> None:
        if self.writes:
            write_results(self.run, self.fields)
