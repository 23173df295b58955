"""How a dataset's samples are split between ranks: DALI's readers' rule, which the
webdataset-shards loader follows too, so that both backends give each rank the same samples."""

from __future__ import annotations

import math


def shard_bounds(size: int, shard_id: int, num_shards: int) -> tuple[int, int]:
    """The ``[start, end)`` sample range DALI's readers give shard ``shard_id`` of a dataset."""
    return size * shard_id // num_shards, size * (shard_id + 1) // num_shards


def equal_steps(size: int, batch_size: int, num_shards: int) -> int:
    """The training batches every shard's rank takes per epoch: the smallest shard's count.
    With shard sizes n and n + 1 the ranks could differ by one batch, and DDP would hang on
    the extra step."""
    return min(
        math.ceil((end - start) / batch_size)
        for start, end in (shard_bounds(size, s, num_shards) for s in range(num_shards))
    )
