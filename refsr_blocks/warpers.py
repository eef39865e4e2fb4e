"""Warper components: ``warper(x, flow)`` backward-warps ``x`` so that ``out[p] = x[p + flow[p]]``.

All three sample in float32 (whatever the autocast state) and return the dtype of ``x``;
outside the image the border is replicated.
"""

from __future__ import annotations

import kornia.geometry.transform as KT
import torch
from torch import Tensor, nn

from .ops.warp import backward_warp, check_warp_inputs, pixel_grid
from .registry import register_component

__all__ = ["BilinearWarper", "KorniaWarper", "NearestWarper", "backward_warp"]


@register_component("warper", "bilinear")
class BilinearWarper(nn.Module):
    """Bilinear backward warp through ``grid_sample`` (border padding, fp32 grid).

    Shapes: ``x`` B×C×H×W, ``flow`` B×2×H×W → B×C×H×W.
    """

    def forward(self, x: Tensor, flow: Tensor) -> Tensor:
        return backward_warp(x, flow, mode="bilinear")


@register_component("warper", "nearest")
class NearestWarper(nn.Module):
    """Nearest-neighbour backward warp: reads the pixel closest to ``p + flow[p]``.

    Not differentiable with respect to the flow (its gradient is zero); use it for
    inspection or as a baseline. Shapes as :class:`BilinearWarper`.
    """

    def forward(self, x: Tensor, flow: Tensor) -> Tensor:
        return backward_warp(x, flow, mode="nearest")


@register_component("warper", "kornia")
class KorniaWarper(nn.Module):
    """Bilinear backward warp through ``kornia.geometry.transform.remap``.

    Uses pixel coordinates with ``align_corners=True`` (the only setting under which a zero
    flow is the identity). Shapes as :class:`BilinearWarper`.
    """

    def forward(self, x: Tensor, flow: Tensor) -> Tensor:
        check_warp_inputs(x, flow)
        b, _, h, w = x.shape
        coords = pixel_grid(h, w, x.device) + flow.float()
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = KT.remap(
                x.float(),
                coords[:, 0],
                coords[:, 1],
                mode="bilinear",
                padding_mode="border",
                align_corners=True,
                normalized_coordinates=False,
            )
        return out.to(x.dtype)
