"""Bicubic interpolation as an upsampler (no parameters): the classic SISR baseline."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ...core.registry import register_component
from ...core.support import Support
from ..conventions import usual_bounds

__all__ = ["BicubicUpsampler"]


@register_component("upsampler", "bicubic")
class BicubicUpsampler(nn.Module):
    """Bicubic upsampling by ``scale`` (PyTorch's Keys kernel, a = -0.75).

    Args:
        scale: integer upscale factor.
        in_channels: accepted for the upsampler contract; any channel count works.
        clamp: clip the output to [0, 1] (bicubic overshoots at edges).

    Shapes: B×C×h×w → B×C×(scale·h)×(scale·w).
    """

    SUPPORT = Support(dtypes=("fp32", "bf16", "fp16"), onnx=True, torch_export=True)

    PARAM_BOUNDS = usual_bounds("in_channels", scale=(1, 16))

    def __init__(self, scale: int = 4, in_channels: int = 3, clamp: bool = True) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale}")
        self.scale = int(scale)
        self.clamp = clamp

    def forward(self, lr: Tensor) -> Tensor:
        out = F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return out.clamp(0.0, 1.0) if self.clamp else out
