"""Validation of the (lr, ref) pair every RefSR model receives.

Shape, channel, dtype, layout (sparse), device (meta) and emptiness checks read only tensor
metadata, so models run them on every forward at no cost, and ``torch.compile(model,
fullgraph=True)`` traces through them. Checks of *values* (finite, in [0, 1] rather than
0–255) read every value (a device sync on GPU, a graph break under compile), so they run at
the boundaries where user data enters (the CLI, :mod:`refsr_blocks.inference.tiling`, the data
loaders) through :func:`check_finite`, :func:`check_range` or :func:`prepare_pair`, and
inside ``forward`` only when debug checks are on: ``REFSR_BLOCKS_DEBUG=1`` in the environment,
or :func:`set_debug_checks`.

Dtypes: a model computes in its weights' dtype. :func:`prepare_pair` (for boundaries) and
:func:`check_fuse_inputs` (``CrossNet.fuse``) cast float16, bfloat16 or float64 inputs to it
(reading the weights' dtype is metadata too); integer images are refused with a hint.
"""

from __future__ import annotations

import itertools
import os

import torch
from torch import Tensor

from ..core.errors import InputError

__all__ = [
    "check_finite",
    "check_fuse_inputs",
    "check_model_input",
    "check_pair",
    "check_range",
    "debug_checks",
    "model_dtype",
    "prepare_pair",
    "set_debug_checks",
]

#: Largest value :func:`check_range` accepts: images are in [0, 1]; augmentation and
#: interpolation overshoot a little, a 0–255 image overshoots by 250.
MAX_IMAGE_VALUE = 2.0

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


def check_range(x: Tensor, name: str) -> Tensor:
    """Raise :class:`InputError` if ``x`` looks like a 0–255 image (reads every value).

    Values up to :data:`MAX_IMAGE_VALUE` pass (interpolation overshoots [0, 1] a little).
    """
    if x.numel() and float(x.detach().amax()) > MAX_IMAGE_VALUE:
        raise InputError(
            f"{name} has values up to {float(x.detach().amax()):g}, but images must be in [0, 1]; "
            "divide a 0–255 image by 255"
        )
    return x


def check_model_input(x: object, name: str, channels: int) -> Tensor:
    """``x`` if it is a non-empty, dense B×channels×H×W floating-point tensor with data.

    Reads only metadata. Raises :class:`InputError` otherwise, saying what to do.
    """
    if not isinstance(x, Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.layout != torch.strided:
        raise InputError(f"{name} is a {x.layout} tensor; models take dense tensors (use {name}.to_dense())")
    if x.device.type == "meta":
        raise InputError(f"{name} is on the meta device and holds no data; move it to a real device first")
    if x.ndim != 4:
        hint = " (add a batch dimension with .unsqueeze(0))" if x.ndim == 3 else ""
        raise InputError(f"{name} must be B×{channels}×H×W, got shape {tuple(x.shape)}{hint}")
    if x.shape[1] != channels:
        raise InputError(f"{name} must have {channels} channels, got {x.shape[1]} (shape {tuple(x.shape)})")
    if x.numel() == 0:
        raise InputError(f"{name} is empty (shape {tuple(x.shape)}); every dimension must be at least 1")
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
    check_model_input(lr, "lr", channels)
    check_model_input(ref, "ref", channels)
    _check_same_kind(lr, ref, "lr", "ref")
    b, _, h, w = lr.shape
    expected = (b, channels, h * upscale, w * upscale)
    if tuple(ref.shape) != expected:
        raise InputError(
            f"ref must be {upscale}× the size of lr: lr is {tuple(lr.shape)}, so ref must be "
            f"{expected}, got {tuple(ref.shape)}"
        )
    if _debug:
        for x, name in ((lr, "lr"), (ref, "ref")):
            check_finite(x, name)
            check_range(x, name)


def _check_same_kind(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    """Both on one device (dtypes may differ: the model casts both to its own)."""
    if a.device != b.device:
        raise InputError(f"{name_a} is on {a.device} and {name_b} on {b.device}; put both on the same device")


def model_dtype(model: torch.nn.Module) -> torch.dtype | None:
    """The dtype of ``model``'s first floating-point parameter or buffer (``None`` if none)."""
    for t in itertools.chain(model.parameters(), model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return None


def _cast(x: Tensor, dtype: torch.dtype | None) -> Tensor:
    """``x`` in ``dtype``: float16, bfloat16, float32 and float64 convert into each other."""
    return x if dtype is None or x.dtype == dtype else x.to(dtype)


def check_fuse_inputs(
    upsampled: object, ref: object, model: torch.nn.Module, name: str = "upsampled"
) -> tuple[Tensor, Tensor]:
    """Validate the inputs of ``CrossNet.fuse`` and cast them to the model's dtype (metadata only).

    Values (finite, in [0, 1]) are checked too when :func:`debug_checks` is on.

    Args:
        upsampled, ref: the image to fuse and the reference, B×C×H×W each.
        model: whose image channels and weight dtype apply.
        name: what error messages call ``upsampled`` (``fuse`` also checks its ``flow_input``).

    Returns:
        ``(upsampled, ref)``, in the dtype of the model's weights.

    Raises:
        InputError: not B×C×H×W floating-point tensors of the same shape and device, empty,
            sparse or on the meta device.
    """
    channels = int(getattr(model, "image_channels", 3))
    up = check_model_input(upsampled, name, channels)
    rf = check_model_input(ref, "ref", channels)
    if up.shape != rf.shape:
        raise InputError(f"{name} {tuple(up.shape)} and ref {tuple(rf.shape)} must have the same shape")
    _check_same_kind(up, rf, name, "ref")
    if _debug:
        for x, label in ((up, name), (rf, "ref")):
            check_finite(x, label)
            check_range(x, label)
    dtype = model_dtype(model)
    return _cast(up, dtype), _cast(rf, dtype)


def prepare_pair(
    model: torch.nn.Module,
    lr: object,
    ref: object,
    upscale: int,
    channels: int = 3,
    *,
    any_reference_size: bool = False,
) -> tuple[Tensor, Tensor]:
    """Check an (lr, ref) pair where it enters the library, and cast it to the model's dtype.

    For boundaries (the CLI, ``super_resolve``, data loaders): everything :func:`check_pair`
    checks, plus the values, which costs a read of every value (a device sync): finite, and
    in [0, 1] (a 0–255 image is refused with a hint). float16, bfloat16 and float64 inputs are
    cast to the dtype of the model's weights. ``any_reference_size``: the reference need not be
    ``upscale``× the LR (a model whose aligner matches anywhere in it).

    Returns:
        ``(lr, ref)`` in the model's dtype.

    Raises:
        InputError: what is wrong and how to fix it.

    Example:
        >>> import torch
        >>> model = torch.nn.Conv2d(3, 3, 1)  # float32 weights
        >>> lr, ref = prepare_pair(model, torch.rand(1, 3, 4, 4).double(), torch.rand(1, 3, 8, 8).double(), 2)
        >>> lr.dtype, ref.dtype
        (torch.float32, torch.float32)
    """
    if any_reference_size:  # a model that matches anywhere in a reference of its own size
        check_model_input(lr, "lr", channels)
        check_model_input(ref, "ref", channels)
        _check_same_kind(lr, ref, "lr", "ref")  # type: ignore[arg-type]
    else:
        check_pair(lr, ref, upscale, channels)  # type: ignore[arg-type]
    assert isinstance(lr, Tensor) and isinstance(ref, Tensor)
    for x, name in ((lr, "lr"), (ref, "ref")):
        check_finite(x, name)
        check_range(x, name)
    dtype = model_dtype(model)
    return _cast(lr, dtype), _cast(ref, dtype)
