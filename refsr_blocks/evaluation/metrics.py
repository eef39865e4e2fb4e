"""PSNR and SSIM per image, on RGB (as CrossNet reports) or on the luma channel Y.

Conventions:

- images are B×3×H×W floats in [0, 1]; the prediction is clamped to [0, 1] first (what
  saving it as an image would do) and both are computed in float64;
- ``y_channel=True`` uses Y of :func:`kornia.color.rgb_to_ycbcr` (full-range BT.601,
  Y = 0.299 R + 0.587 G + 0.114 B in [0, 1]). MATLAB's ``rgb2ycbcr``, used by much of the SR
  literature, maps Y to [16, 235]/255 instead: the same error is then 219/255 as large, so
  its PSNR is exactly 20·log10(255/219) ≈ 1.32 dB higher than ours;
- ``border`` pixels are cropped from every side before measuring (the literature crops
  ``scale`` pixels; 0 measures the whole image, as the CrossNet paper does);
- SSIM is :func:`kornia.metrics.ssim` (11×11 Gaussian window, σ = 1.5) over the valid
  region (no padding), averaged over channels and pixels.

Example:
    >>> import torch
    >>> x = torch.rand(2, 3, 16, 16)
    >>> psnr(x, x).tolist(), [round(v, 6) for v in ssim(x, x).tolist()]
    ([inf, inf], [1.0, 1.0])
    >>> round(psnr(torch.full((1, 3, 8, 8), 0.1), torch.zeros(1, 3, 8, 8)).item(), 6)  # MSE 0.01
    20.0
"""

from __future__ import annotations

import kornia
import torch
from torch import Tensor

__all__ = ["crop_border", "prepare_pair", "psnr", "ssim", "to_y"]


def _check(pred: Tensor, target: Tensor) -> None:
    for name, x in (("pred", pred), ("target", target)):
        if not isinstance(x, Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a B×C×H×W tensor, got {shape}")
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")


def to_y(img: Tensor) -> Tensor:
    """The luma of an RGB image: B×3×H×W → B×1×H×W (full-range BT.601, in [0, 1])."""
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f"to_y needs B×3×H×W RGB images, got {tuple(img.shape)}")
    return kornia.color.rgb_to_ycbcr(img)[:, :1]


def crop_border(img: Tensor, border: int) -> Tensor:
    """Remove ``border`` pixels from each side of a B×C×H×W tensor."""
    if isinstance(border, bool) or not isinstance(border, int) or border < 0:
        raise ValueError(f"border must be an int >= 0, got {border!r}")
    if border == 0:
        return img
    h, w = img.shape[-2:]
    if 2 * border >= min(h, w):
        raise ValueError(f"border {border} leaves nothing of a {h}×{w} image")
    return img[..., border : h - border, border : w - border]


def prepare_pair(pred: Tensor, target: Tensor, *, border: int = 0, y_channel: bool = False) -> tuple[Tensor, Tensor]:
    """Clamp, convert to float64, optionally take Y, crop the border: what both metrics measure."""
    _check(pred, target)
    pred = pred.detach().to(torch.float64).clamp(0.0, 1.0)
    target = target.detach().to(torch.float64)
    if y_channel:
        pred, target = to_y(pred), to_y(target)
    return crop_border(pred, border), crop_border(target, border)


def psnr(pred: Tensor, target: Tensor, *, border: int = 0, y_channel: bool = False) -> Tensor:
    """Peak signal-to-noise ratio per image, ``10·log10(1 / MSE)`` in dB.

    Args:
        pred, target: B×C×H×W in [0, 1].
        border: pixels cropped from each side first.
        y_channel: measure on Y instead of RGB (needs C = 3).

    Returns:
        A float64 tensor of B values (``inf`` for identical images).
    """
    p, t = prepare_pair(pred, target, border=border, y_channel=y_channel)
    return torch.stack([kornia.metrics.psnr(p[i], t[i], 1.0) for i in range(p.shape[0])])


def ssim(pred: Tensor, target: Tensor, *, border: int = 0, y_channel: bool = False, window_size: int = 11) -> Tensor:
    """Structural similarity per image (1 for identical images).

    Args:
        pred, target: B×C×H×W in [0, 1], at least ``window_size`` pixels per side after cropping.
        border: pixels cropped from each side first.
        y_channel: measure on Y instead of RGB (needs C = 3).
        window_size: side of the Gaussian window (odd).

    Returns:
        A float64 tensor of B values.
    """
    p, t = prepare_pair(pred, target, border=border, y_channel=y_channel)
    h, w = p.shape[-2:]
    if min(h, w) < window_size:
        raise ValueError(f"SSIM needs images of at least {window_size}×{window_size} pixels, got {h}×{w}")
    return kornia.metrics.ssim(p, t, window_size, max_val=1.0, padding="valid").mean(dim=(1, 2, 3))
