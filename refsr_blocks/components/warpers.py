"""Warper components: ``warper(x, flow)`` backward-warps ``x`` so that ``out[p] = x[p + flow[p]]``.

All of them place samples in float32 pixel coordinates (whatever the autocast state),
replicate the border outside the image and return the dtype of ``x``. A zero flow returns
``x`` exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.registry import register_component
from ..core.support import Support
from ..ops.warp import backward_warp, check_warp_inputs, pixel_grid

__all__ = ["BilinearWarper", "KorniaWarper", "NearestWarper", "backward_warp"]


@register_component("warper", "bilinear")
class BilinearWarper(nn.Module):
    """Bilinear backward warp in pixel coordinates (exact for zero and integer flows).

    Shapes: ``x`` B×C×H×W, ``flow`` B×2×H×W → B×C×H×W.
    """

    SUPPORT = Support(
        dtypes=("fp32", "bf16", "fp16"), onnx=True, torch_export=True, notes="fp16 beyond 512 px: GPU check pending"
    )

    def forward(self, x: Tensor, flow: Tensor) -> Tensor:
        return backward_warp(x, flow, mode="bilinear")


@register_component("warper", "nearest")
class NearestWarper(nn.Module):
    """Nearest-neighbour backward warp: reads the pixel closest to ``p + flow[p]``.

    Its gradient with respect to the flow is zero: use it for inspection or as a baseline.
    Shapes as :class:`BilinearWarper`.
    """

    SUPPORT = Support(dtypes=("fp32", "bf16", "fp16"), onnx=True, torch_export=True)

    def forward(self, x: Tensor, flow: Tensor) -> Tensor:
        return backward_warp(x, flow, mode="nearest")


@register_component("warper", "kornia")
class KorniaWarper(nn.Module):
    """Bilinear backward warp through ``kornia.geometry.transform.remap``.

    Pixel coordinates with ``align_corners=True``, computed in float64: kornia normalises
    coordinates to [-1, 1] internally, and in float32 that round trip shifts samples by up
    to ~1e-4 px on large images (a zero flow would not return the input). In float64 the
    result rounds back to the exact float32 input. Slower than ``bilinear``; it serves as
    an independent reference implementation. Shapes as :class:`BilinearWarper`.
    """

    SUPPORT = Support(
        dtypes=("fp32",), onnx=False, torch_export=True, notes="onnxruntime 1.32 has no GridSample kernel for its graph"
    )

    def forward(self, x: Tensor, flow: Tensor) -> Tensor:
        import kornia.geometry.transform  # imported on first use: kornia is slow to import

        check_warp_inputs(x, flow)
        _, _, h, w = x.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            coords = pixel_grid(h, w, x.device).double() + flow.double()
            out = kornia.geometry.transform.remap(
                x.double(),
                coords[:, 0],
                coords[:, 1],
                mode="bilinear",
                padding_mode="border",
                align_corners=True,
                normalized_coordinates=False,
            )
        return out.to(x.dtype)
