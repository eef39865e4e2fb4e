"""A DistributedSampler that can resume in the middle of an epoch.

The order of an epoch is ``DistributedSampler``'s (a permutation drawn from a generator
seeded with ``seed + epoch``, replica ``r`` taking every ``num_replicas``-th index from
``r``), so it is a pure function of (seed, epoch); the sampler's whole state is
``(epoch, start)``, where ``start`` counts the indices this replica already consumed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import Dataset, DistributedSampler

__all__ = ["ResumableDistributedSampler"]


class ResumableDistributedSampler(DistributedSampler):  # type: ignore[type-arg]
    """``DistributedSampler`` (shuffled, ``drop_last=True``) with a resumable position.

    Works without ``torch.distributed`` too: pass ``num_replicas=1, rank=0``.

    Example:
        >>> sampler = ResumableDistributedSampler(list(range(10)), num_replicas=2, rank=1, seed=0)
        >>> full = list(sampler)
        >>> sampler.load_state_dict({"epoch": 0, "start": 2})
        >>> list(sampler) == full[2:]
        True
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int = 0) -> None:  # type: ignore[type-arg]
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        if self.num_samples == 0:
            raise ValueError(
                f"the dataset has {len(dataset)} items, fewer than the {num_replicas} replicas: "  # type: ignore[arg-type]
                "every replica needs at least one"
            )
        self.start = 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start

    def set_epoch(self, epoch: int) -> None:
        """Begin epoch ``epoch`` from its first index."""
        super().set_epoch(epoch)
        self.start = 0

    def state_dict(self) -> dict[str, Any]:
        """``{"epoch", "start", "seed", "num_replicas"}``; ``start`` must be set by the caller
        to the number of indices consumed (a DataLoader prefetches ahead of the training step)."""
        return {"epoch": self.epoch, "start": self.start, "seed": self.seed, "num_replicas": self.num_replicas}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue at ``state["start"]`` of epoch ``state["epoch"]``."""
        start = int(state["start"])
        if not 0 <= start <= self.num_samples:
            raise ValueError(f"sampler position {start} is outside this replica's epoch of {self.num_samples} items")
        super().set_epoch(int(state["epoch"]))
        self.start = start
