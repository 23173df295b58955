"""Data order and augmentation as functions of (seed, epoch, sample), for exact resumption.

A run resumed from a checkpoint must read what the uninterrupted run would have read next:
the rest of the epoch, in the same order, with the same random crops. Torch's DataLoader
draws its order and (in the main process or its workers) its augmentation from generators
whose state no checkpoint holds. Here the order is ``DistributedSampler``'s permutation of
``seed + epoch`` (the one Lightning would use under DDP), every sample's augmentation is
drawn from a generator seeded by ``(seed, epoch, index)`` alone, and the loader says where
in the epoch it stands, which the checkpoint keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

#: A sample's key: (epoch, index into the dataset).
SampleKey = tuple[int, int]


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one sample's augmentation in one epoch."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, np.uint64)[0])


class EpochSampler(DistributedSampler):
    """``DistributedSampler``'s shuffled shard of each epoch, as ``(epoch, index)`` keys.

    Lightning calls ``set_epoch`` before each epoch (and keeps a ``DistributedSampler`` as it
    is under DDP); read again without one, as in a plain loop, it moves on to the next epoch
    itself. ``resume = (epoch, samples)`` skips the first samples of that epoch: a run resumed
    mid-epoch reads only what it had not (each time that epoch is read, for Lightning may
    start an iterator and drop it).
    """

    def __init__(self, dataset: Dataset[Any], num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.resume: tuple[int, int] | None = None
        self._read: int | None = None  # the epoch last read, unless set_epoch came since

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self._read = None

    def __iter__(self) -> Iterator[SampleKey]:
        if self._read == self.epoch:
            self.epoch += 1
        self._read = self.epoch
        start = 0
        if self.resume is not None:
            epoch, start = self.resume
            if epoch != self.epoch:
                self.resume, start = None, 0
        epoch = self.epoch
        # Lazily: an ImageNet epoch is 1.28 million keys.
        return ((epoch, index) for index in islice(super().__iter__(), start, None))


class ResumableDataLoader(DataLoader[Any]):
    """A training DataLoader over an :class:`EpochSampler` whose ``state_dict`` is where a
    resumed run starts: ``resume_at()`` batches into the sampler's epoch, or, when it returns
    ``None`` (the epoch's batches are done), the next epoch's start."""

    def __init__(
        self,
        dataset: Dataset[Any],
        sampler: EpochSampler,
        resume_at: Callable[[], int | None],
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, sampler=sampler, **kwargs)
        self.resume_at = resume_at

    def state_dict(self) -> dict[str, int]:
        sampler = self.sampler
        assert isinstance(sampler, EpochSampler)
        done = self.resume_at()
        if done is None:
            return {"epoch": sampler.epoch + 1, "batches_done": 0}
        return {"epoch": sampler.epoch, "batches_done": done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler = self.sampler
        assert isinstance(sampler, EpochSampler) and self.batch_size is not None
        sampler.set_epoch(state["epoch"])
        sampler.resume = (state["epoch"], state["batches_done"] * self.batch_size)


def fixed_generator() -> torch.Generator:
    """A generator for a DataLoader's worker seeds, so that making its iterator draws
    nothing from torch's global generator (dropout's, saved with the checkpoint)."""
    return torch.Generator().manual_seed(0)
