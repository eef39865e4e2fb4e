"""Argument checks shared by the data modules (private).

Every check raises :class:`~refsr_blocks.data.errors.DataError` with a message that says
what was wrong and what is accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .errors import DataError

#: Upscale factors the degradation model supports.
SUPPORTED_SCALES: tuple[int, ...] = (2, 3, 4, 8)


def check_scale(scale: object) -> int:
    """Return ``scale`` as an int if it is one of :data:`SUPPORTED_SCALES`."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in SUPPORTED_SCALES:
        raise DataError(f"scale must be one of {list(SUPPORTED_SCALES)} (an int), got {scale!r}")
    return scale


def check_image(x: object, name: str = "image", *, batched: bool | None = None) -> Tensor:
    """Check ``x`` is a floating-point image tensor, C×H×W or B×C×H×W.

    ``batched=None`` accepts both layouts, ``False`` only C×H×W, ``True`` only B×C×H×W.
    """
    if not isinstance(x, Tensor):
        raise DataError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    allowed = {None: (3, 4), False: (3,), True: (4,)}[batched]
    if x.ndim not in allowed:
        layouts = " or ".join({3: "C×H×W", 4: "B×C×H×W"}[n] for n in allowed)
        raise DataError(f"{name} must be {layouts}, got a tensor of shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise DataError(
            f"{name} must be a floating-point tensor with values in [0, 1], got dtype "
            f"{x.dtype}; convert with x.float() / 255 for 8-bit images"
        )
    return x


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` if it is an int ≥ 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"{name} must be an int >= 1, got {value!r}")
    return value


def check_crop(crop: object, scale: int, name: str = "crop") -> tuple[int, int] | None:
    """Check an HR crop size: ``None`` or ``(H, W)``, both positive multiples of ``scale``."""
    if crop is None:
        return None
    if isinstance(crop, int) and not isinstance(crop, bool):
        crop = (crop, crop)
    if (
        not isinstance(crop, Sequence)
        or len(crop) != 2
        or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in crop)
    ):
        raise DataError(f"{name} must be None, an int or a pair (H, W) of positive ints, got {crop!r}")
    h, w = int(crop[0]), int(crop[1])
    if h % scale or w % scale:
        raise DataError(
            f"{name} (H, W) = ({h}, {w}) must be multiples of scale {scale} so the LR crop is "
            f"exact; try ({h // scale * scale or scale}, {w // scale * scale or scale})"
        )
    return h, w


def check_fits(size: tuple[int, int], crop: tuple[int, int], what: str) -> None:
    """Raise if an image of ``size`` (H, W) is smaller than ``crop`` (H, W)."""
    if size[0] < crop[0] or size[1] < crop[1]:
        raise DataError(
            f"{what} is {size[0]}×{size[1]} (H×W), smaller than the crop {crop[0]}×{crop[1]}; "
            "use a smaller crop or crop=None"
        )


def float_image(x: Tensor) -> Tensor:
    """Return ``x`` as float32 (no copy when it already is)."""
    return x if x.dtype == torch.float32 else x.float()
