"""Backward warping with a dense flow, numerically safe under autocast.

``backward_warp(x, flow)[p] = x[p + flow[p]]`` with bilinear interpolation and border
replication. The sampling grid is always built and sampled in float32: under CUDA autocast
``grid_sample`` would otherwise run in fp16, whose spacing is 0.5 px near 512 px, which
destroys sub-pixel alignment on large images. The output has the dtype of ``x``.

Determinism: the CUDA backward of ``grid_sample`` has no deterministic kernel, so with
``torch.use_deterministic_algorithms(True)`` training on CUDA raises; CPU runs are
deterministic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["backward_warp", "pixel_grid"]


def pixel_grid(height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """Pixel coordinates ``1×2×H×W`` in float32: channel 0 is x (column), 1 is y (row)."""
    ys = torch.arange(height, device=device, dtype=torch.float32)
    xs = torch.arange(width, device=device, dtype=torch.float32)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x, grid_y)).unsqueeze(0)


def check_warp_inputs(x: Tensor, flow: Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` is ``B×C×H×W`` and ``flow`` is ``B×2×H×W``."""
    if x.ndim != 4:
        raise ValueError(f"x must be B×C×H×W, got shape {tuple(x.shape)}")
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow must be B×2×H×W (x then y displacement), got {tuple(flow.shape)}")
    if flow.shape[0] != x.shape[0] or flow.shape[-2:] != x.shape[-2:]:
        raise ValueError(
            f"flow {tuple(flow.shape)} must match x {tuple(x.shape)} in batch size and H×W; "
            "resize it with refsr_blocks.ops.resize_flow"
        )


def normalized_grid(flow: Tensor) -> Tensor:
    """Sampling grid ``B×H×W×2`` in grid_sample's [-1, 1] coordinates (align_corners=True).

    Built in float32 whatever the dtype of ``flow``.
    """
    b, _, h, w = flow.shape
    coords = pixel_grid(h, w, flow.device) + flow.float()
    # align_corners=True maps pixel 0 to -1 and pixel (n-1) to +1; a size-1 axis maps to 0.
    scale = coords.new_tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)]).view(1, 2, 1, 1)
    grid = coords * scale - 1.0
    if w == 1:
        grid[:, 0] = 0.0
    if h == 1:
        grid[:, 1] = 0.0
    return grid.permute(0, 2, 3, 1)


def backward_warp(x: Tensor, flow: Tensor, mode: str = "bilinear") -> Tensor:
    """Backward-warp ``x`` by ``flow``: ``out[p] = x[p + flow[p]]``.

    Args:
        x: ``B×C×H×W`` features or image, any float dtype.
        flow: ``B×2×H×W`` displacement in pixels of ``x`` (x first, then y).
        mode: ``"bilinear"`` or ``"nearest"``.

    Returns:
        ``B×C×H×W`` with the dtype of ``x``; samples outside the image replicate the border.

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> flow = torch.zeros(1, 2, 4, 4); flow[:, 0] = 1.0  # read one pixel to the right
        >>> backward_warp(x, flow)[0, 0, 0].tolist()
        [1.0, 2.0, 3.0, 3.0]
    """
    check_warp_inputs(x, flow)
    grid = normalized_grid(flow)
    with torch.autocast(device_type=x.device.type, enabled=False):
        out = F.grid_sample(x.float(), grid, mode=mode, padding_mode="border", align_corners=True)
    return out.to(x.dtype)
