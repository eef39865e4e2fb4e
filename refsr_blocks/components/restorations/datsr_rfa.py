"""DATSR's restoration: reference-based deformable attention and residual feature aggregation.

For an LR image, the reference texture pyramids (VGG19 ``relu1_1`` … at the references' own
sizes) and a :class:`~refsr_blocks.ops.correspondence.Correspondence` on the LR grid,
a U-Net over the L = log2(s) + 1 levels (finest first: the output grid, …, the LR grid):

- head: a conv of the bilinear ``LR↑`` (the base the output is added to);
- down, at levels 0 … L−2: deformable attention over the references' features of that level
  (:class:`~.datsr_attention.DeformableAttention`, placed by the correspondence),
  ``fuse(cat(x, attended))``, a :class:`~.datsr_attention.SwinGroup` plus x, a stride-2 conv;
- up, at levels L−1 … 0: the same, fusing ``x + skip`` (the down path's input at that level),
  then conv + pixel shuffle ×2 (at level 0 a conv pair to the image).

``content_blocks`` keeps the authors' ``content_extractor`` (a conv and residual blocks on the
LR image): their forward computes it and never reads the result, so it is held frozen, for
the parameter count and the checkpoint layout, and not run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...core.registry import register_component
from ...layers.blocks import ResBlock, conv
from ...ops.correspondence import Correspondence
from ..conventions import SAMPLING_SUPPORT, texture_levels, usual_bounds
from .datsr_attention import DeformableAttention, LevelSource, SwinGroup, level_sources

__all__ = ["DatsrAggregation"]


class _Stage(nn.Module):
    """One level of the U-Net: attention, fusion conv, Swin body, and the tail to the next level."""

    def __init__(self, texture_channels: int, channels: int, tail: nn.Module, swin: dict, groups: int, residue: float):
        super().__init__()
        self.attention = DeformableAttention(texture_channels, channels, groups, residue)
        self.fuse = nn.Sequential(nn.Conv2d(channels + texture_channels, channels, 3, padding=1), nn.LeakyReLU(0.1))
        self.body = SwinGroup(channels, **swin)
        self.tail = tail

    def forward(self, x: Tensor, skip: Tensor | None, source: LevelSource) -> Tensor:
        attended = self.attention(x, source)
        h = self.fuse(torch.cat([x if skip is None else x + skip, attended], dim=1))
        return self.tail(self.body(h) + x)


@register_component("restoration", "datsr_rfa")
class DatsrAggregation(nn.Module):
    """DATSR's U-Net of deformable attention and residual Swin groups (the authors' restoration net).

    Args:
        texture_channels: channels of the reference features per level, finest first (injected).
        upscale: s, a power of two; L = log2(s) + 1 levels (3 at ×4).
        in_channels: image channels of ``lr``.
        out_channels: image channels of the output.
        channels: feature channels of the U-Net (the authors: 128).
        depths: Swin blocks per residual group of every body (the authors: 4, 4).
        num_heads: attention heads per group (the authors: 4, 4).
        window_size: Swin window (8); inputs of any size (windows are padded).
        mlp_ratio: MLP width over ``channels`` in the Swin blocks (2).
        groups: deformable groups of the attention (8; divides every texture channel count).
        max_residue: bound of the learned offsets, in pixels (10).
        drop_path: stochastic depth of the Swin blocks, rising to this (0.1; training only).
        content_blocks: residual blocks of the authors' unused content extractor (8; 0: none).

    Shapes: see :mod:`~refsr_blocks.components.restorations`.
    """

    # Measured on the CPU with datsr_small's restoration and a fixed correspondence: bf16 autocast
    # runs (max |Δ| against fp32: 0.016 at LR 16×16, 0.032 at LR 80×80, outputs of mean 0.46;
    # sampling positions stay float32), float64 in gives float64 out; torch.export.export
    # reproduces it exactly; the ONNX graph (opset 17) does not load in onnxruntime (an Unsqueeze
    # of the position blocks fails shape inference). fp16: not measured.
    SUPPORT = replace(SAMPLING_SUPPORT, notes="ONNX: the exported position sampling does not load in onnxruntime")

    PARAM_BOUNDS = usual_bounds(
        "texture_channels upscale in_channels out_channels",
        channels=(2, 4096),
        window_size=(1, 64),
        groups=(1, 256),
        content_blocks=(0, 256),
    )

    def __init__(
        self,
        texture_channels: Sequence[int],
        upscale: int = 4,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: int = 128,
        depths: Sequence[int] = (4, 4),
        num_heads: Sequence[int] = (4, 4),
        window_size: int = 8,
        mlp_ratio: float = 2.0,
        groups: int = 8,
        max_residue: float = 10.0,
        drop_path: float = 0.1,
        content_blocks: int = 8,
    ) -> None:
        super().__init__()
        levels = texture_levels(texture_channels, upscale)
        if channels % 2:
            raise ValueError(f"channels must be even (the last tail halves them), got {channels}")
        self.upscale, self.levels, self.max_residue = upscale, levels, float(max_residue)
        swin = dict(
            depths=tuple(depths),
            num_heads=tuple(num_heads),
            window=window_size,
            mlp_ratio=mlp_ratio,
            drop_path=drop_path,
        )
        self.head = nn.Conv2d(in_channels, channels, 3, padding=1)

        def stage(k: int, tail: nn.Module) -> _Stage:
            return _Stage(texture_channels[k], channels, tail, swin, groups, max_residue)

        def up_tail() -> nn.Module:
            return nn.Sequential(nn.Conv2d(channels, 4 * channels, 3, padding=1), nn.PixelShuffle(2), nn.LeakyReLU(0.1))

        last = nn.Sequential(
            nn.Conv2d(channels, channels // 2, 3, padding=1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(channels // 2, out_channels, 3, padding=1),
        )
        self.down = nn.ModuleList(stage(k, nn.Conv2d(channels, channels, 3, 2, 1)) for k in range(levels - 1))
        self.up = nn.ModuleList(stage(k, last if k == 0 else up_tail()) for k in range(levels))
        if content_blocks:
            self.content_extractor = nn.Sequential(
                conv(in_channels, channels, 3), *(ResBlock(channels) for _ in range(content_blocks))
            ).requires_grad_(False)

    def forward(self, lr: Tensor, textures: Sequence[Sequence[Tensor]], correspondence: Correspondence) -> Tensor:
        return self.restore(lr, self.sources(lr, textures, correspondence))

    def sources(
        self, lr: Tensor, textures: Sequence[Sequence[Tensor]], correspondence: Correspondence
    ) -> list[LevelSource]:
        """What the attention reads at each level (the textures at the matches among them)."""
        if not textures or any(len(t) != self.levels for t in textures):
            raise ValueError(f"expected one texture pyramid of {self.levels} levels per reference")
        h, w = lr.shape[-2:]
        sizes = [(h * self.upscale >> k, w * self.upscale >> k) for k in range(self.levels)]
        return level_sources(textures, correspondence, sizes, self.max_residue)

    def restore(self, lr: Tensor, sources: Sequence[LevelSource]) -> Tensor:
        """The image from the LR and one :class:`~.datsr_attention.LevelSource` per level."""
        base = F.interpolate(lr, scale_factor=self.upscale, mode="bilinear", align_corners=False)
        x = self.head(base)
        skips = []
        for k, stage in enumerate(self.down):
            skips.append(x)
            x = stage(x, None, sources[k])
        for k in reversed(range(self.levels)):
            x = self.up[k](x, skips[k] if k < len(skips) else None, sources[k])
        return x + base
