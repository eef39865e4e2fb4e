"""Deformable alignment (as in C2-Matching's and DATSR's aggregation) with torchvision's ``deform_conv2d``."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ...core.registry import register_component
from ...core.support import Support
from ..conventions import usual_bounds
from .base import Aligner, AlignerInputs

__all__ = ["DeformableAligner"]


class _DeformLevel(nn.Module):
    """Offsets and modulation from (target, reference) features, then a modulated deformable conv.

    At initialisation the offsets are zero, the modulation one and the kernel the identity,
    so the level returns the reference features unchanged.
    """

    def __init__(self, target_channels: int, ref_channels: int, hidden: int, groups: int, kernel: int) -> None:
        super().__init__()
        if ref_channels % groups:
            raise ValueError(f"ref channels {ref_channels} must be divisible by offset groups {groups}")
        self.kernel, self.groups = kernel, groups
        taps = kernel * kernel
        self.offsets = nn.Sequential(
            nn.Conv2d(target_channels + ref_channels, hidden, 3, padding=1),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(hidden, 3 * groups * taps, 3, padding=1),
        )
        nn.init.zeros_(self.offsets[-1].weight)
        nn.init.zeros_(self.offsets[-1].bias)
        weight = torch.zeros(ref_channels, ref_channels, kernel, kernel)
        weight[torch.arange(ref_channels), torch.arange(ref_channels), kernel // 2, kernel // 2] = 1.0
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(ref_channels))

    def forward(self, target: Tensor, ref: Tensor) -> tuple[Tensor, Tensor]:
        out = self.offsets(torch.cat([target, ref], dim=1))
        n = self.groups * self.kernel * self.kernel
        offset, mask = out[:, : 2 * n], 2.0 * torch.sigmoid(out[:, 2 * n :])
        from torchvision.ops import deform_conv2d  # imported on first use: a heavy import

        aligned = deform_conv2d(ref, offset, self.weight, self.bias, padding=self.kernel // 2, mask=mask)
        return aligned, offset


@register_component("aligner", "deformable")
class DeformableAligner(Aligner):
    """Per level, a modulated deformable convolution samples the reference where it fits the target.

    Offsets (``offset_groups`` sets of 2·k² per pixel) and modulation masks are predicted from
    the concatenated target and reference features of that level; no compiled extension is
    needed (``torchvision.ops.deform_conv2d``). Like the flow aligner it is grid-bound: the
    model brings one reference onto the target grid first (its reference policy).

    Args:
        lr_channels: channels per level of the target pyramid (the architecture injects them).
        ref_channels: channels per level of the reference pyramid (injected).
        hidden: channels of the offset predictor.
        offset_groups: deformable groups.
        kernel_size: deformable kernel size (odd).

    Shapes: see :mod:`~refsr_blocks.components.aligners.base`; extra output ``offsets`` (per
    level, B×2·groups·k²×H_k×W_k).
    """

    SUPPORT = Support(
        dtypes=("fp32",),
        onnx=False,
        torch_export=True,
        notes="ONNX opset 17 has no DeformConv; deform_conv2d has no CPU bf16 kernel",
    )

    PARAM_BOUNDS = usual_bounds("lr_channels ref_channels offset_groups kernel_size", hidden=(1, 1024))

    grid_bound = True

    def __init__(
        self,
        lr_channels: list[int],
        ref_channels: list[int],
        hidden: int = 32,
        offset_groups: int = 1,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        if len(lr_channels) != len(ref_channels):
            raise ValueError(f"lr_channels {lr_channels} and ref_channels {ref_channels} must have one entry per level")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.levels = nn.ModuleList(
            _DeformLevel(t, r, hidden, offset_groups, kernel_size) for t, r in zip(lr_channels, ref_channels)
        )

    def align(self, x: AlignerInputs) -> dict[str, Any]:
        if len(x.target_feats) != len(self.levels):
            raise ValueError(f"built for {len(self.levels)} levels, got {len(x.target_feats)}")
        aligned, offsets = [], []
        for level, t, r in zip(self.levels, x.target_feats, x.ref_feats[0]):
            a, o = level(t, r)
            aligned.append(a)
            offsets.append(o)
        return {"aligned": aligned, "confidence": [None] * len(aligned), "offsets": offsets}
