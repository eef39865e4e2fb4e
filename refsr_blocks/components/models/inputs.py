"""Validation of the (lr, ref) pair every RefSR model receives.

Shape, channel and dtype checks read only tensor metadata, so models run them on every
forward at no cost, and ``torch.compile(model, fullgraph=True)`` traces through them. The
finiteness check reads every value (a device sync on GPU, a graph break under compile), so
it runs at the boundaries where user data enters (the CLI, :mod:`refsr_blocks.inference.tiling`, the
data loaders) through :func:`check_finite`, and inside ``forward`` only when debug checks
are on: ``REFSR_BLOCKS_DEBUG=1`` in the environment, or :func:`set_debug_checks`.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from ...core.errors import InputError

__all__ = ["check_finite", "check_image", "check_pair", "debug_checks", "set_debug_checks"]

_debug = os.environ.get("REFSR_BLOCKS_DEBUG", "") not in ("", "0")


def set_debug_checks(enabled: bool) -> None:
    """Turn the value checks inside every model's ``forward`` on or off (off by default)."""
    global _debug
    _debug = bool(enabled)


def debug_checks() -> bool:
    """Whether models check their inputs' values on every forward."""
    return _debug


def check_finite(x: Tensor, name: str) -> Tensor:
    """Raise :class:`InputError` if ``x`` holds NaN or infinite values (reads every value)."""
    if not torch.isfinite(x).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return x


def check_image(x: object, name: str, channels: int) -> Tensor:
    """``x`` if it is a B×channels×H×W floating-point tensor; :class:`InputError` otherwise."""
    if not isinstance(x, Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        hint = " (add a batch dimension with .unsqueeze(0))" if x.ndim == 3 else ""
        raise InputError(f"{name} must be B×{channels}×H×W, got shape {tuple(x.shape)}{hint}")
    if x.shape[1] != channels:
        raise InputError(f"{name} must have {channels} channels, got {x.shape[1]} (shape {tuple(x.shape)})")
    if not x.is_floating_point():
        raise InputError(
            f"{name} must be a floating-point image in [0, 1], got dtype {x.dtype}; "
            "convert uint8 images with x.float() / 255"
        )
    return x


def check_pair(lr: Tensor, ref: Tensor, upscale: int, channels: int = 3) -> None:
    """Raise :class:`InputError` unless ``lr`` is B×C×h×w and ``ref`` B×C×(s·h)×(s·w) floats.

    Values are checked too (finite) when :func:`debug_checks` is on.
    """
    check_image(lr, "lr", channels)
    check_image(ref, "ref", channels)
    b, _, h, w = lr.shape
    expected = (b, channels, h * upscale, w * upscale)
    if tuple(ref.shape) != expected:
        raise InputError(
            f"ref must be {upscale}× the size of lr: lr is {tuple(lr.shape)}, so ref must be "
            f"{expected}, got {tuple(ref.shape)}"
        )
    if _debug:
        check_finite(lr, "lr")
        check_finite(ref, "ref")
