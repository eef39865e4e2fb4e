"""Backward warping from a map of another size: ``out[p] = x[p + flow[p]]`` with ``x`` any H'×W'.

:func:`refsr_blocks.ops.warp.backward_warp` needs ``x`` on the flow's grid (a reference
already brought onto the target grid). A correspondence into a reference of its own size
(another aspect, a wider field of view, a zoomed-in view) is the same displacement
convention with the positions read in the *reference's* pixel grid; :func:`warp_from` does
that through :func:`refsr_blocks.ops.warp.sample`, so the interpolation (exact integer
positions, float32 coordinates under autocast, border replication) is the library's one.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .warp import pixel_grid, sample

__all__ = ["inside_of", "warp_from"]


def _coord_dtype(flow: Tensor) -> torch.dtype:
    """Positions in float32 (float64 for float64 flows): half precision cannot place pixels."""
    return torch.float64 if flow.dtype == torch.float64 else torch.float32


def warp_from(x: Tensor, flow: Tensor, mode: str = "bilinear") -> Tensor:
    """``out[p] = x[p + flow[p]]`` where ``x`` may have another size than ``flow``.

    Args:
        x: B×C×H'×W' (any size), any float dtype.
        flow: B×2×H×W displacement (x then y) in pixels of ``x``, from the output pixel ``p``.
        mode: ``"bilinear"``, ``"bicubic"`` or ``"nearest"``.

    Returns:
        B×C×H×W with the dtype of ``x``; positions outside ``x`` read its border (mask them with
        :func:`inside_of`). Equals ``backward_warp(x, flow)`` when the sizes agree.

    Example:
        >>> x = torch.arange(12.).view(1, 1, 3, 4)
        >>> flow = torch.zeros(1, 2, 2, 2); flow[:, 0] = 2.0  # read two columns to the right
        >>> warp_from(x, flow)[0, 0].tolist()
        [[2.0, 3.0], [6.0, 7.0]]
    """
    if flow.ndim != 4 or flow.shape[1] != 2 or x.ndim != 4 or flow.shape[0] != x.shape[0]:
        raise ValueError(f"x must be B×C×H'×W' and flow B×2×H×W, got {tuple(x.shape)} and {tuple(flow.shape)}")
    h, w = flow.shape[-2:]
    points = pixel_grid(h, w, flow.device, _coord_dtype(flow)) + flow.to(_coord_dtype(flow))
    return sample(x, points.flatten(2), mode).unflatten(2, (h, w))


def inside_of(flow: Tensor, size: tuple[int, int], margin: float = 0.0) -> Tensor:
    """Where ``p + flow[p]`` lies inside a frame of ``size`` (H', W'), ``margin`` pixels in.

    Args:
        flow: B×2×H×W displacement in pixels of the frame.
        size: (H', W') of the frame read from.
        margin: pixels to keep away from the frame's edge (a negative one reaches past it).

    Returns:
        B×1×H×W boolean.
    """
    h, w = flow.shape[-2:]
    pos = pixel_grid(h, w, flow.device, _coord_dtype(flow)) + flow.to(_coord_dtype(flow))
    x, y = pos[:, 0:1], pos[:, 1:2]
    return (x >= margin) & (x <= size[1] - 1 - margin) & (y >= margin) & (y <= size[0] - 1 - margin)
