"""Random-number helpers shared by the data modules (private).

Every random function in the data layer takes ``generator: torch.Generator | None``; ``None``
means torch's global RNG, which ``torch.utils.data.DataLoader`` seeds differently in each
worker. A dataset built with a ``seed`` makes one generator per item from (seed, epoch, index),
so item ``i`` is the same whatever the worker count or access order.
"""

from __future__ import annotations

import numpy as np
import torch


def item_generator(seed: int | None, epoch: int, index: int) -> torch.Generator | None:
    """A generator seeded from (seed, epoch, index), or ``None`` when ``seed`` is ``None``."""
    if seed is None:
        return None
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(index)]).generate_state(2)
    value = (int(state[0]) << 32 | int(state[1])) & 0x7FFF_FFFF_FFFF_FFFF
    return torch.Generator().manual_seed(value)


def randint(low: int, high: int, generator: torch.Generator | None) -> int:
    """A uniform int in [low, high) (``high`` excluded)."""
    return int(torch.randint(low, high, (1,), generator=generator).item())


def uniform(low: float, high: float, generator: torch.Generator | None, size: tuple[int, ...] = ()) -> torch.Tensor:
    """Uniform float32 samples in [low, high)."""
    return torch.rand(size, generator=generator) * (high - low) + low


def uniform_float(low: float, high: float, generator: torch.Generator | None) -> float:
    """One uniform float in [low, high)."""
    return float(uniform(low, high, generator).item())
