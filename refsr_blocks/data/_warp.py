"""Backward warping by a dense flow, for building and checking synthetic pairs (private).

The model-side warper components live elsewhere; this one exists so the data layer has no
dependency on them. Convention: ``out[p] = x[p + flow[p]]``, flow channel 0 = x, 1 = y, in
pixels. The sampling grid is built and sampled in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.geometry.conversions import normalize_pixel_coordinates
from torch import Tensor

try:  # kornia >= 0.8.3
    from kornia.geometry import create_meshgrid
except ImportError:  # pragma: no cover - older kornia
    from kornia.utils import create_meshgrid


def sample_positions(flow: Tensor) -> Tensor:
    """Absolute sampling positions ``p + flow[p]`` as B×H×W×2 (x, y) pixels, float32."""
    _, _, h, w = flow.shape
    base = create_meshgrid(h, w, normalized_coordinates=False, device=flow.device, dtype=torch.float32)
    return base + flow.float().permute(0, 2, 3, 1)


def backward_warp(x: Tensor, flow: Tensor, *, mode: str = "bilinear", padding_mode: str = "border") -> Tensor:
    """Return ``out[p] = x[p + flow[p]]``.

    Args:
        x: B×C×H×W (or C×H×W) tensor.
        flow: B×2×H×W (or 2×H×W) flow in pixels, channel 0 = x, channel 1 = y.
        mode: ``grid_sample`` interpolation ("bilinear", "bicubic", "nearest").
        padding_mode: ``grid_sample`` padding ("border", "reflection", "zeros").

    Returns:
        Tensor shaped like ``x``, dtype of ``x``.
    """
    squeeze = x.ndim == 3
    if squeeze:
        x, flow = x.unsqueeze(0), flow.unsqueeze(0)
    h, w = x.shape[-2:]
    grid = normalize_pixel_coordinates(sample_positions(flow), h, w)
    out = F.grid_sample(x.float(), grid, mode=mode, padding_mode=padding_mode, align_corners=True)
    out = out.to(x.dtype)
    return out.squeeze(0) if squeeze else out


def inside_frame(flow: Tensor) -> Tensor:
    """Boolean mask (…×1×H×W) of pixels whose sample position ``p + flow[p]`` lies in the frame."""
    squeeze = flow.ndim == 3
    f = flow.unsqueeze(0) if squeeze else flow
    h, w = f.shape[-2:]
    pos = sample_positions(f)
    ok = (pos[..., 0] >= 0) & (pos[..., 0] <= w - 1) & (pos[..., 1] >= 0) & (pos[..., 1] <= h - 1)
    ok = ok.unsqueeze(1)
    return ok.squeeze(0) if squeeze else ok
