"""Behaviour shared by the RefSR datasets (private): seeding, cropping, user transforms."""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch.utils.data import Dataset

from ._checks import check_crop, check_fits, check_scale
from ._random import item_generator
from .augment import Sample, center_crop, random_crop
from .errors import DataError

CropMode = Literal["random", "center"]


class RefSRDataset(Dataset):  # type: ignore[type-arg]
    """Base class: holds ``scale``, ``crop``, ``seed``, ``epoch`` and ``transform``.

    Items are dicts of tensors (plus ``int``/``str`` metadata), so the default
    ``torch.utils.data.default_collate`` batches them.

    Randomness: with ``seed=None`` every random choice uses torch's global RNG (the usual
    DataLoader set-up, where each worker is seeded differently). With an int ``seed`` item
    ``i`` is a pure function of (seed, epoch, i): fixed validation sets, reproducible training.
    Call :meth:`set_epoch` to draw new items each epoch while staying reproducible.
    """

    def __init__(
        self,
        scale: int,
        crop: int | tuple[int, int] | None,
        seed: int | None,
        transform: Callable[..., Sample] | None,
        crop_mode: CropMode,
    ) -> None:
        self.scale = check_scale(scale)
        self.crop = check_crop(crop, self.scale)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise DataError(f"seed must be an int or None, got {seed!r}")
        if crop_mode not in ("random", "center"):
            raise DataError(f"crop_mode must be 'random' or 'center', got {crop_mode!r}")
        if transform is not None and not callable(transform):
            raise DataError(f"transform must be callable or None, got {type(transform).__name__}")
        self.seed = seed
        self.crop_mode: CropMode = crop_mode
        self.transform = transform
        self._transform_takes_generator = transform is not None and _accepts_generator(transform)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Mix ``epoch`` into the per-item seeds (no effect when ``seed`` is ``None``)."""
        self.epoch = int(epoch)

    def _generator(self, index: int) -> torch.Generator | None:
        return item_generator(self.seed, self.epoch, index)

    def _crop(self, sample: Sample, generator: torch.Generator | None, what: str) -> Sample:
        """Crop the sample's images per ``crop``/``crop_mode``; ``what`` names the source in errors."""
        if self.crop is None:
            return sample
        check_fits(tuple(sample["hr"].shape[-2:]), self.crop, what)
        if self.crop_mode == "center":
            return center_crop(sample, self.crop, self.scale)
        return random_crop(sample, self.crop, self.scale, generator)

    def _apply_transform(self, sample: Sample, generator: torch.Generator | None) -> Sample:
        if self.transform is None:
            return sample
        if self._transform_takes_generator:
            return self.transform(sample, generator=generator)
        return self.transform(sample)

    def _check_index(self, index: int) -> int:
        n = len(self)
        try:
            index = operator.index(index)
        except TypeError:
            raise DataError(f"index must be an int, got {index!r}") from None
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index out of range for a dataset of {n} items")
        return index

    def __len__(self) -> int:  # pragma: no cover - subclasses define it
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError


def _accepts_generator(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "generator" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
