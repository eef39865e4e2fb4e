"""Validation of the (lr, ref) pair every RefSR model receives."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_pair"]


def _check_image(x: object, name: str, channels: int) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        hint = " (add a batch dimension with .unsqueeze(0))" if x.ndim == 3 else ""
        raise ValueError(f"{name} must be B×{channels}×H×W, got shape {tuple(x.shape)}{hint}")
    if x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels, got {x.shape[1]} (shape {tuple(x.shape)})")
    if not x.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point image in [0, 1], got dtype {x.dtype}; "
            "convert uint8 images with x.float() / 255"
        )
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_pair(lr: Tensor, ref: Tensor, upscale: int, channels: int = 3) -> None:
    """Raise ``ValueError`` unless ``lr`` is B×C×h×w and ``ref`` B×C×(s·h)×(s·w), finite floats."""
    _check_image(lr, "lr", channels)
    _check_image(ref, "ref", channels)
    b, _, h, w = lr.shape
    expected = (b, channels, h * upscale, w * upscale)
    if tuple(ref.shape) != expected:
        raise ValueError(
            f"ref must be {upscale}× the size of lr: lr is {tuple(lr.shape)}, so ref must be "
            f"{expected}, got {tuple(ref.shape)}"
        )
