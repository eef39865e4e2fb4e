"""The degradation model: how a low-resolution image is made from a high-resolution one.

``lr = downsample(crop_to_multiple(hr, s), s)``: the HR image is cropped at the bottom/right to
a multiple of the scale, then resized by 1/s with an antialiased bicubic filter.
:func:`matlab_downsample` is MATLAB's ``imresize`` instead (the ``matlab`` LR kernel of the
evaluation protocols and multi-reference datasets).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import SUPPORTED_SCALES, check_image, check_positive_int, check_scale
from .errors import DataError

__all__ = ["SUPPORTED_SCALES", "crop_to_multiple", "downsample", "matlab_downsample"]


def crop_to_multiple(img: Tensor, multiple: int) -> Tensor:
    """Crop the bottom rows and right columns so that H and W are multiples of ``multiple``.

    Cropping bottom/right keeps pixel (0, 0) in place, so coordinates (and flows) are unchanged.

    Args:
        img: C×H×W or B×C×H×W tensor.
        multiple: positive int, usually the upscale factor.

    Returns:
        A view of ``img``, shape (…, H - H % multiple, W - W % multiple).

    Example:
        >>> import torch
        >>> crop_to_multiple(torch.rand(3, 10, 13), 4).shape
        torch.Size([3, 8, 12])
    """
    if not hasattr(img, "ndim") or img.ndim not in (3, 4):
        shape = tuple(img.shape) if hasattr(img, "shape") else type(img).__name__
        raise DataError(f"img must be C×H×W or B×C×H×W, got {shape}")
    multiple = check_positive_int(multiple, "multiple")
    h, w = img.shape[-2:]
    hc, wc = h - h % multiple, w - w % multiple
    if hc == 0 or wc == 0:
        raise DataError(f"img is {h}×{w} (H×W), smaller than multiple={multiple}: nothing would be left")
    return img[..., :hc, :wc]


def downsample(hr: Tensor, scale: int, *, clamp: bool = True) -> Tensor:
    """Downsample ``hr`` by an integer ``scale`` with antialiased bicubic interpolation.

    This is ``torch.nn.functional.interpolate(mode="bicubic", antialias=True,
    align_corners=False)``. With ``antialias=True`` PyTorch uses PIL's resampling scheme: the
    Keys cubic kernel with a = -0.5 (not the a = -0.75 of PyTorch's non-antialiased bicubic),
    stretched by ``scale`` so it low-passes before decimation. The result matches PIL's
    ``Image.resize(..., Image.BICUBIC)`` (within one 8-bit level) and Matlab's ``imresize``
    (the usual SR benchmark degradation) away from the image border; at the border PyTorch
    and PIL renormalise the truncated kernel while Matlab mirrors the image.

    Args:
        hr: float tensor C×H×W or B×C×H×W, values in [0, 1]; H and W must be multiples of
            ``scale`` (use :func:`crop_to_multiple` first).
        scale: 2, 3, 4 or 8.
        clamp: clamp the result to [0, 1] (bicubic overshoots slightly at edges).

    Returns:
        Tensor of shape (…, H / scale, W / scale), same dtype as ``hr``.

    Example:
        >>> import torch
        >>> downsample(torch.rand(3, 32, 48), 4).shape
        torch.Size([3, 8, 12])
    """
    hr = check_image(hr, "hr")
    scale = check_scale(scale)
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise DataError(
            f"hr is {h}×{w} (H×W); both must be multiples of scale {scale}. "
            f"Crop it first with crop_to_multiple(hr, {scale})"
        )
    batch = hr if hr.ndim == 4 else hr.unsqueeze(0)
    lr = F.interpolate(batch, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False)
    if clamp:
        lr = lr.clamp(0.0, 1.0)
    return lr if hr.ndim == 4 else lr.squeeze(0)


def _symmetric_pad(x: Tensor, pad: int) -> Tensor:
    """Mirror padding that repeats the edge pixel (MATLAB's ``'symmetric'``)."""
    if pad == 0:
        return x
    x = torch.cat([x[..., :pad, :].flip(-2), x, x[..., -pad:, :].flip(-2)], dim=-2)
    return torch.cat([x[..., :pad].flip(-1), x, x[..., -pad:].flip(-1)], dim=-1)


def matlab_downsample(hr: Tensor, scale: int) -> Tensor:
    """MATLAB-style ``imresize(hr, 1/scale, 'bicubic')`` of B×C×H×W (H, W multiples of ``scale``).

    The antialiased Keys kernel (a = −0.5, stretched by ``scale``) as PIL and PyTorch's
    ``antialias=True`` use, with MATLAB's symmetric border instead of a renormalised kernel:
    the image is mirrored by ``2·scale`` pixels (the kernel's half-width), resized, and the
    extra LR pixels are cut off. Not rounded to 8 bits (MATLAB would round a uint8 input).
    """
    if hr.shape[-2] % scale or hr.shape[-1] % scale:
        raise ValueError(f"hr {tuple(hr.shape)} must be a multiple of scale {scale}")
    pad = 2 * scale
    padded = _symmetric_pad(hr, pad)
    h, w = padded.shape[-2] // scale, padded.shape[-1] // scale
    lr = F.interpolate(padded, size=(h, w), mode="bicubic", antialias=True, align_corners=False)
    return lr[..., 2:-2, 2:-2].clamp(0.0, 1.0)
