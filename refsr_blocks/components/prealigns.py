"""Pre-alignment components: a coarse global shift of the reference before flow estimation.

``prealign(target, ref)`` takes the upsampled LR image and the reference (both B×C×H×W) and
returns one displacement per item, B×2 (x, y) in whole pixels, such that
``target[p] ≈ ref[p + shift]`` for most of the scene. The model shifts the reference by it,
lets the flow estimator find the (small) residual, and adds the shift back to every flow
level. Real stereo and light-field baselines put most of the disparity in one global offset
(tens of pixels), far beyond what a small flow network learns to reach; after the shift it
only has to resolve the depth-dependent part.

Pre-alignment is not differentiable (its output is a constant for the optimiser).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.registry import register_component
from ..core.support import Support

__all__ = ["NoPrealign", "PhaseCorrelation", "phase_correlation_shift", "shift_image"]


def _grey(x: Tensor) -> Tensor:
    """B×C×H×W → B×H×W, the channel mean in float32."""
    return x.float().mean(dim=1)


def phase_correlation_shift(target: Tensor, ref: Tensor, *, max_shift: float, downscale: int = 1) -> Tensor:
    """The integer shift that best aligns ``ref`` to ``target`` by phase correlation.

    Args:
        target: B×C×H×W.
        ref: B×C×H×W (same shape).
        max_shift: largest |shift| searched per axis, in pixels of the inputs.
        downscale: correlate at 1/downscale resolution (faster; the result is a multiple of it).

    Returns:
        B×2 float tensor (x, y) of whole pixels with ``target[p] ≈ ref[p + shift]``.

    Example:
        >>> img = torch.rand(1, 3, 64, 96)
        >>> ref = torch.roll(img, shifts=(3, -7), dims=(2, 3))   # ref[p] = img[p - (-7, 3)]
        >>> phase_correlation_shift(img, ref, max_shift=20).tolist()
        [[-7.0, 3.0]]
    """
    if target.shape != ref.shape or target.ndim != 4:
        raise ValueError(
            f"target and ref must be B×C×H×W of one shape, got {tuple(target.shape)} and {tuple(ref.shape)}"
        )
    t, r = _grey(target), _grey(ref)
    if downscale > 1:
        t = F.avg_pool2d(t.unsqueeze(1), downscale, ceil_mode=True).squeeze(1)
        r = F.avg_pool2d(r.unsqueeze(1), downscale, ceil_mode=True).squeeze(1)
    h, w = t.shape[-2:]
    # A Hann window keeps the image borders from dominating the spectrum.
    window = torch.hann_window(h, periodic=False, device=t.device)[:, None] * torch.hann_window(
        w, periodic=False, device=t.device
    )
    t = (t - t.mean(dim=(-2, -1), keepdim=True)) * window
    r = (r - r.mean(dim=(-2, -1), keepdim=True)) * window
    cross = torch.fft.rfft2(r) * torch.fft.rfft2(t).conj()
    surface = torch.fft.irfft2(cross / cross.abs().clamp_min(1e-12), s=(h, w))  # B×h×w, peak at the shift
    # Signed displacement of each cell (FFT wrap-around), masked to the search range.
    dy = torch.fft.fftfreq(h, 1.0 / h, device=t.device)
    dx = torch.fft.fftfreq(w, 1.0 / w, device=t.device)
    reach = max_shift / downscale
    allowed = (dy.abs()[:, None] <= reach) & (dx.abs()[None, :] <= reach)
    surface = surface.masked_fill(~allowed, float("-inf"))
    peak = surface.flatten(1).argmax(dim=1)
    shift = torch.stack((dx[peak % w], dy[peak // w]), dim=1)
    return (shift * downscale).to(target.dtype if target.is_floating_point() else torch.float32)


def shift_image(x: Tensor, shift: Tensor) -> Tensor:
    """Shift each item by whole pixels: ``out[p] = x[p + shift]``, the border replicated.

    Args:
        x: B×C×H×W.
        shift: B×2 (x, y), whole pixels.

    Returns:
        B×C×H×W, an exact copy of shifted pixels (no interpolation).
    """
    b, _, h, w = x.shape
    s = shift.round().long()
    ys = (torch.arange(h, device=x.device)[None, :] + s[:, 1:2]).clamp(0, h - 1)  # B×H
    xs = (torch.arange(w, device=x.device)[None, :] + s[:, 0:1]).clamp(0, w - 1)  # B×W
    rows = torch.gather(x, 2, ys[:, None, :, None].expand(b, x.shape[1], h, w))
    return torch.gather(rows, 3, xs[:, None, None, :].expand(b, x.shape[1], h, w))


@register_component("prealign", "none")
class NoPrealign(nn.Module):
    """No pre-alignment: a zero shift (the flow estimator sees the raw reference).

    Shapes: ``target``, ``ref`` B×C×H×W → B×2 zeros.
    """

    SUPPORT = Support(dtypes=("fp32", "bf16", "fp16"), onnx=True, torch_export=True)

    def forward(self, target: Tensor, ref: Tensor) -> Tensor:
        return target.new_zeros(target.shape[0], 2)


@register_component("prealign", "phase_correlation")
class PhaseCorrelation(nn.Module):
    """Global shift by phase correlation of the grey images (:func:`phase_correlation_shift`).

    Args:
        max_shift: largest |shift| searched per axis, in pixels of the HR grid.
        downscale: correlate at 1/downscale resolution (the shift is then a multiple of it).

    Shapes: ``target``, ``ref`` B×C×H×W → B×2 (x, y) whole pixels, no gradient.
    """

    SUPPORT = Support(dtypes=("fp32", "bf16"), onnx=False, torch_export=True, notes="ONNX opset 17 export has no rfft2")

    PARAM_BOUNDS = dict(max_shift=(0.0, 4096.0), downscale=(1, 16))  # noqa: RUF012

    def __init__(self, max_shift: float = 96.0, downscale: int = 2) -> None:
        super().__init__()
        if not max_shift >= 0:
            raise ValueError(f"max_shift must be >= 0 pixels, got {max_shift!r}")
        if not (isinstance(downscale, int) and 1 <= downscale <= 16):
            raise ValueError(f"downscale must be an int from 1 to 16, got {downscale!r}")
        self.max_shift = float(max_shift)
        self.downscale = downscale

    def forward(self, target: Tensor, ref: Tensor) -> Tensor:
        with torch.no_grad(), torch.autocast(target.device.type, enabled=False):
            shift = phase_correlation_shift(
                target.detach(), ref.detach(), max_shift=self.max_shift, downscale=self.downscale
            )
        return shift.to(target.dtype)
