"""A training order that survives interruption: the position of the loader is part of the
checkpoint, so a run resumed mid-epoch trains on exactly the batches the uninterrupted run would.

- :class:`EpochSampler` draws each epoch's permutation from ``(seed, epoch)`` alone (no generator
  state carried between epochs) and hands every item its own augmentation seed
  ``(seed, epoch, index)``, so a batch's content never depends on the global or worker RNG.
- :class:`ResumableDataLoader` counts the batches it has handed out and implements the
  ``state_dict`` / ``load_state_dict`` protocol, which Lightning's fit loop stores in checkpoints
  (``loops.fit_loop.state_dict.combined_loader``) and restores on resume; the batches already
  trained on are then skipped without being loaded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

UINT64_MASK = 2**64 - 1


def replicas_and_rank(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """``(num_replicas, rank)`` of a sampler: the given values, else those of the initialised
    ``torch.distributed`` process group, else one process (1, 0); the rank must be in range."""
    distributed = dist.is_available() and dist.is_initialized()
    replicas = num_replicas or (dist.get_world_size() if distributed else 1)
    rank = rank if rank is not None else (dist.get_rank() if distributed else 0)
    if not 0 <= rank < replicas:
        raise ValueError(f"rank {rank} is outside 0..{replicas - 1}")
    return replicas, rank


def derived_seed(*entropy: int) -> int:
    """A 64-bit seed mixed from integers (negative seeds allowed) by numpy's ``SeedSequence``."""
    words = [int(e) & UINT64_MASK for e in entropy]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0])


class EpochSampler(DistributedSampler):
    """Shuffled key indices, one permutation per epoch from ``(seed, epoch)``, sharded over ranks.

    Yields ``(index, item_seed)``; :class:`~qdtrack_pl.data.loading.pairs.PairDataset` draws the
    reference frame and the augmentation from ``item_seed``. Under ``torch.distributed`` each rank
    takes every ``num_replicas``-th item of the permutation (wrapped to equal length, as
    ``DistributedSampler`` does). It subclasses ``DistributedSampler`` only so Lightning keeps it
    instead of wrapping it in a second sharding sampler.
    """

    def __init__(
        self,
        size: int,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        self.num_replicas, self.rank = replicas_and_rank(num_replicas, rank)
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        self.size = size
        self.seed = seed
        self.epoch = 0
        self.shuffle, self.drop_last = True, False
        self.num_samples = math.ceil(size / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.start = 0  # items of ``epoch`` the next iteration skips (set when resuming)

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this before every epoch; a new epoch starts from its first item."""
        if epoch != self.epoch:
            self.epoch, self.start = epoch, 0

    def order(self, epoch: int) -> list[int]:
        """This rank's indices for ``epoch``."""
        if self.size == 0:
            return []
        generator = torch.Generator().manual_seed(derived_seed(self.seed, epoch) >> 1)
        perm = torch.randperm(self.size, generator=generator).tolist()
        perm = (perm * math.ceil(self.total_size / self.size))[: self.total_size]
        return perm[self.rank : self.total_size : self.num_replicas]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        start, self.start = self.start, 0
        epoch = self.epoch
        for index in self.order(epoch)[start:]:
            yield index, derived_seed(self.seed, epoch, index)

    def __len__(self) -> int:
        return self.num_samples


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` over an :class:`EpochSampler` whose position is saved in checkpoints.

    ``state_dict()`` is ``{"epoch", "batches"}``: the epoch being iterated and how many batches
    of it were handed out. ``load_state_dict`` makes the next iteration start after them. With any
    other sampler (Lightning swaps in a sequential one for ``overfit_batches``) it is a plain
    ``DataLoader`` and its state is empty.
    """

    _position: list[int] | None = None  # [epoch, batches handed out] while iterating

    def _epoch_sampler(self) -> EpochSampler | None:
        return self.sampler if isinstance(self.sampler, EpochSampler) else None

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # A generator: the sampler is read at the first ``next``, after Lightning's ``set_epoch``.
        sampler = self._epoch_sampler()
        if sampler is None:
            yield from super().__iter__()
            return
        batch_size = self.batch_size or 1
        self._position = [sampler.epoch, sampler.start // batch_size]
        for batch in super().__iter__():
            self._position[1] += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        sampler = self._epoch_sampler()
        if sampler is None:
            return {}
        position = self._position
        if position is None:  # not iterated yet in this process: the pending position
            return {"epoch": sampler.epoch, "batches": sampler.start // (self.batch_size or 1)}
        return {"epoch": int(position[0]), "batches": int(position[1])}

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler = self._epoch_sampler()
        if sampler is None or not state:
            return
        epoch, batches = int(state["epoch"]), int(state["batches"])
        if batches >= len(self):  # the saved epoch was complete: the next one starts fresh
            epoch, batches = epoch + 1, 0
        sampler.epoch, sampler.start = epoch, batches * (self.batch_size or 1)
        self._position = None
