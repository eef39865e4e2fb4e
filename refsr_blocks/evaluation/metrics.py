"""PSNR and SSIM per image, on RGB (as CrossNet reports) or on the luma channel Y.

These are the library's only PSNR and SSIM: evaluation, training logs, picture labels
(:mod:`refsr_blocks.tools.viz`) and precision checks (:mod:`refsr_blocks.tools.precision`) all call them.

Conventions:

- images are B×3×H×W floats in [0, 1]; the prediction is clamped to [0, 1] first (what
  saving it as an image would do) and both are computed in float64. :func:`psnr` also
  measures tensors that are not images (``clamp=False``, any ``peak``), e.g. a model's raw
  output under autocast against float32;
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
    import kornia  # imported on first use: a heavy import

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


def prepare_pair(
    pred: Tensor, target: Tensor, *, border: int = 0, y_channel: bool = False, clamp: float | None = 1.0
) -> tuple[Tensor, Tensor]:
    """Clamp, convert to float64, optionally take Y, crop the border: what both metrics measure.

    Args:
        pred, target: B×C×H×W.
        border: pixels cropped from each side.
        y_channel: take the luma Y (needs C = 3).
        clamp: ``pred`` is clamped to [0, clamp]; ``None`` leaves it as it is.

    Returns:
        ``(pred, target)``, float64, B×C'×(H-2·border)×(W-2·border) with C' = 1 on Y.
    """
    _check(pred, target)
    pred = pred.detach().to(torch.float64)
    if clamp is not None:
        pred = pred.clamp(0.0, clamp)
    target = target.detach().to(torch.float64)
    if y_channel:
        pred, target = to_y(pred), to_y(target)
    return crop_border(pred, border), crop_border(target, border)


def psnr(
    pred: Tensor,
    target: Tensor,
    *,
    border: int = 0,
    y_channel: bool = False,
    peak: float = 1.0,
    clamp: bool = True,
) -> Tensor:
    """Peak signal-to-noise ratio per image, ``10·log10(peak² / MSE)`` in dB.

    Args:
        pred, target: B×C×H×W in [0, ``peak``].
        border: pixels cropped from each side first.
        y_channel: measure on Y instead of RGB (needs C = 3).
        peak: the largest possible value (1 for images in [0, 1]).
        clamp: clamp ``pred`` to [0, ``peak``] first (what saving an image does); ``False``
            compares raw values, e.g. two runs of a model with random weights.

    Returns:
        A float64 tensor of B values (``inf`` for identical images).

    Example:
        >>> import torch
        >>> a, b = torch.full((1, 3, 4, 4), 2.0), torch.full((1, 3, 4, 4), 2.5)  # not images
        >>> psnr(a, b, peak=5.0, clamp=False).item()  # 10·log10(25 / 0.25)
        20.0
    """
    if isinstance(peak, bool) or not isinstance(peak, (int, float)) or not 0 < peak < float("inf"):
        raise ValueError(f"peak must be a finite number > 0, got {peak!r}")
    p, t = prepare_pair(pred, target, border=border, y_channel=y_channel, clamp=float(peak) if clamp else None)
    import kornia  # imported on first use: a heavy import

    return torch.stack([kornia.metrics.psnr(p[i], t[i], float(peak)) for i in range(p.shape[0])])


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
    import kornia  # imported on first use: a heavy import

    return kornia.metrics.ssim(p, t, window_size, max_val=1.0, padding="valid").mean(dim=(1, 2, 3))
