"""Read the records of an offline W&B run file (``run-*.wandb``) without W&B's own reader.

The file is W&B's 7-byte header followed by LevelDB's log format (32 KiB blocks of
checksummed chunks), each record a ``wandb_internal_pb2.Record`` protobuf.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7
CHUNK_HEADER = 7  # crc32, length, type
FULL, LAST = 1, 4


def records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    raw = path.read_bytes()
    if not raw.startswith(b":W&B"):
        raise ValueError(f"{path} is not a W&B run file")
    pos, parts = HEADER, b""
    while pos + CHUNK_HEADER <= len(raw):
        if BLOCK - pos % BLOCK < CHUNK_HEADER:  # block trailer too short for a chunk
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + CHUNK_HEADER])
        pos += CHUNK_HEADER
        parts += raw[pos : pos + length]
        pos += length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            yield record
            parts = b""


def config_and_history(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run's config (key -> value) and its history rows."""
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "config":
            config.update({u.key: json.loads(u.value_json) for u in record.config.update})
        elif kind == "history":
            history.append(
                {
                    "/".join(i.nested_key) or i.key: json.loads(i.value_json)
                    for i in record.history.item
                }
            )
    return config, history


def metric_summaries(path: Path) -> dict[str, set[str]]:
    """For each metric the run defined (``define_metric``), the summaries it asked for."""
    found: dict[str, set[str]] = {}
    for record in records(path):
        if record.WhichOneof("record_type") == "metric" and record.metric.name:
            summary = record.metric.summary
            wanted = {f.name for f in summary.DESCRIPTOR.fields if getattr(summary, f.name)}
            found.setdefault(record.metric.name, set()).update(wanted)
    return found


def run_info(path: Path) -> dict[str, Any]:
    """The run's identity as W&B recorded it: project, group, job type, name and id, and the
    config given to ``wandb.init``."""
    for record in records(path):
        if record.WhichOneof("record_type") == "run":
            run = record.run
            return {
                "project": run.project,
                "group": run.run_group,
                "job_type": run.job_type,
                "name": run.display_name,
                "id": run.run_id,
                "config": {u.key: json.loads(u.value_json) for u in run.config.update},
            }
    raise ValueError(f"{path} holds no run record")


def logged_images(path: Path) -> dict[str, Path]:
    """Each image key the run logged, and the file W&B keeps it in (its ``files/`` folder)."""
    _, history = config_and_history(path)
    # W&B flattens an image's record into KEY/_type, KEY/path, ... items.
    return {
        key.removesuffix("/_type"): path.parent
        / "files"
        / row[f"{key.removesuffix('/_type')}/path"]
        for row in history
        for key, value in row.items()
        if key.endswith("/_type") and value == "image-file"
    }
