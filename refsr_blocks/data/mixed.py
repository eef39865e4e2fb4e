"""Several datasets as one: synthetic pairs with ground-truth flow next to real pairs without.

Items of parts that carry no ``flow`` get a zero ``flow`` and an all-zero ``valid`` map, so
one batch can mix both kinds and a flow loss simply ignores the real pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import ConcatDataset, Dataset

from .errors import DataError

__all__ = ["MixedDataset"]


class MixedDataset(ConcatDataset):  # type: ignore[type-arg]
    """The concatenation of ``parts``, each repeated ``repeats[i]`` times.

    Args:
        parts: RefSR datasets whose items have equal ``hr`` sizes (use the same crop).
        repeats: how many times each part is listed per epoch (weights a small part up).

    Items are those of the parts, plus ``"flow"`` (2×H×W zeros) and ``"valid"`` (1×H×W
    zeros) where a part has no ground-truth flow.
    """

    def __init__(self, parts: Sequence[Dataset], repeats: Sequence[int] | None = None) -> None:  # type: ignore[type-arg]
        if not parts:
            raise DataError("a mixed dataset needs at least one part")
        repeats = list(repeats) if repeats is not None else [1] * len(parts)
        if len(repeats) != len(parts) or not all(isinstance(r, int) and r >= 1 for r in repeats):
            raise DataError(f"repeats must list one int >= 1 per part ({len(parts)}), got {repeats!r}")
        self.parts = list(parts)
        super().__init__([part for part, r in zip(self.parts, repeats) for _ in range(r)])

    def set_epoch(self, epoch: int) -> None:
        for part in self.parts:
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(super().__getitem__(index))
        if "flow" not in item:
            h, w = item["hr"].shape[-2:]
            item["flow"] = torch.zeros(2, h, w)
            item["valid"] = torch.zeros(1, h, w)
        return item
