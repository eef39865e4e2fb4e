"""C2-Matching's restoration network: dynamic aggregation of reference textures, coarse to fine.

For an LR image (B×C×h×w), the reference texture pyramids (VGG19 ``relu1_1`` … at the
references' own sizes) and a :class:`~refsr_blocks.ops.correspondence.Correspondence`
on the LR grid:

1. a content extractor (conv + LeakyReLU, ``blocks`` residual blocks) encodes the LR image;
2. per level, coarsest (the LR grid) first, *dynamic aggregation*: a modulated deformable
   convolution samples the reference features where the correspondence says, corrected by
   offsets and modulation learned from the current features; its 3×3 taps are placed by the
   correspondence of nine patches (tap t of pixel p reads the neighbour t of where the
   patch centred at p − t puts p; at finer levels the LR-grid correspondence is scaled by
   2^j and each tap still reads one level pixel apart);
3. per level, the aggregated textures and the features go through a head conv, residual
   blocks (plus a skip) and a tail: a ×2 pixel shuffle, or at the finest level two convs to
   the image, added to the bilinearly upsampled LR.

The deformable convolution reads the references at their own sizes
(:func:`~refsr_blocks.ops.deform_from.deform_conv_at`, in blocks of at most
``column_budget`` values): each tap's reference is the one its patch matched. The offset
predictor sees the features beside the reference features at the same place, as in the
authors' code, where the two images have one size; a reference of another size is
resampled to the level's grid for it (co-located, bilinear), and with several the one
matched at that pixel is shown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...core.errors import InputError
from ...core.registry import register_component
from ...layers.blocks import ResBlock
from ...ops.correspondence import Correspondence, colocated
from ...ops.deform_from import deform_conv_at
from ...ops.warp import pixel_grid
from ..conventions import SAMPLING_SUPPORT, texture_levels, usual_bounds

__all__ = ["C2Restoration", "tap_displacements"]

#: The 3×3 taps (dx, dy), row-major, as the kernel's weights are laid out.
_TAPS = tuple((dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def _residual_blocks(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(ResBlock(channels) for _ in range(count)))


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _upsample_nearest(x: Tensor, factor: int) -> Tensor:
    return x if factor == 1 else x.repeat_interleave(factor, -2).repeat_interleave(factor, -1)


def tap_displacements(corr: Correspondence) -> tuple[Tensor, Tensor]:
    """The correspondence each tap of the 3×3 kernel reads, on the match grid.

    Tap t of pixel p takes the match of the patch centred at p − t (the authors' shifted
    offsets); outside the grid, the co-located displacement of the nearest pixel's reference.

    Returns:
        (B×9×2×h×w displacements in reference-grid pixels, x then y; B×9×h×w reference indices).
    """
    b, _, h, w = corr.flow.shape
    reference = F.pad(corr.reference.float(), (1, 1, 1, 1), mode="replicate").long()
    # The field beyond the grid continues the co-located displacement (zero for equal sizes).
    base = torch.zeros(b, 2, h + 2, w + 2, dtype=corr.flow.dtype, device=corr.flow.device)
    for r, size in enumerate(corr.ref_sizes):
        base = torch.where(reference == r, colocated((h, w), size, corr.flow, margin=1), base)
    flow = base.clone()
    flow[..., 1:-1, 1:-1] = corr.flow
    flows, refs = [], []
    for dx, dy in _TAPS:
        flows.append(flow[..., 1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w])
        refs.append(reference[:, 0, 1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w])
    return torch.stack(flows, 1), torch.stack(refs, 1)


class _Level(nn.Module):
    """One level: the dynamic aggregation of reference textures, then head, residual blocks and tail."""

    def __init__(self, channels: int, ref_channels: int, blocks: int, groups: int, tail: nn.Module) -> None:
        super().__init__()
        if ref_channels % groups:
            raise ValueError(f"reference channels {ref_channels} must be divisible by offset_groups {groups}")
        self.groups = groups
        self.offsets = nn.Sequential(
            nn.Conv2d(channels + ref_channels, ref_channels, 3, padding=1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(ref_channels, ref_channels, 3, padding=1),
            nn.LeakyReLU(0.1),
        )
        self.offset_mask = nn.Conv2d(ref_channels, 3 * groups * 9, 3, padding=1)
        nn.init.zeros_(self.offset_mask.weight)  # starts at the correspondence, modulation 0.5
        nn.init.zeros_(self.offset_mask.bias)
        self.weight = nn.Parameter(torch.empty(ref_channels, ref_channels, 3, 3))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.zeros(ref_channels))
        self.head = nn.Sequential(nn.Conv2d(channels + ref_channels, channels, 3, padding=1), nn.LeakyReLU(0.1))
        self.body = _residual_blocks(channels, blocks)
        self.tail = tail

    def aggregate(
        self,
        x: Tensor,
        textures: Sequence[Tensor],
        taps: tuple[Tensor, Tensor],
        factor: int,
        column_budget: int,
    ) -> Tensor:
        """The references' textures sampled for every pixel of ``x`` (B×C_ref×H×W)."""
        b, _, h, w = x.shape
        flows, refs = taps  # on the LR grid
        beside = _resize(textures[0], (h, w)).to(x.dtype)
        if len(textures) > 1:
            chosen = _upsample_nearest(refs[:, 4:5], factor)  # the centre tap: the pixel's own match
            for r, t in enumerate(textures[1:], start=1):
                beside = torch.where(chosen == r, _resize(t, (h, w)).to(x.dtype), beside)
        canvas, tops, sizes = _canvas(textures)
        rows = max(1, column_budget // max(1, textures[0].shape[1] * 9 * w))
        g, pieces = self.groups, []
        for y0 in range(0, h, rows):
            y1 = min(h, y0 + rows)
            # The offsets of these rows only (three 3×3 convs: three rows of context either side),
            # so the 27·groups-channel map is never held for the whole level.
            a0, a1 = max(0, y0 - 3), min(h, y1 + 3)
            out = self.offset_mask(self.offsets(torch.cat([x[..., a0:a1, :], beside[..., a0:a1, :]], 1)))
            out = out[..., y0 - a0 : y1 - a0, :]
            learned = torch.cat([out[:, : 9 * g], out[:, 9 * g : 18 * g]], 1).view(b, g, 9, 2, -1).flip(3)  # x, y
            pos, ref = _positions(flows, refs, factor, (y0, y1), w)
            pos = pos.unsqueeze(1) + learned  # B×G×9×2×N
            block_mask = torch.sigmoid(out[:, 18 * g :]).view(b, g, 9, -1)
            if len(textures) > 1:  # a tap reads its own reference only: zero outside it, as for one
                ref = ref.unsqueeze(1)
                heights = pos.new_tensor([s[0] for s in sizes])[ref]
                widths = pos.new_tensor([s[1] for s in sizes])[ref]
                px, py = pos[:, :, :, 0], pos[:, :, :, 1]
                inside = (px > -1) & (px < widths) & (py > -1) & (py < heights)
                block_mask = block_mask * inside.to(block_mask.dtype)
                pos = torch.stack((px, py + pos.new_tensor(tops)[ref]), 3)
            pieces.append(deform_conv_at(canvas, pos.to(x.dtype), block_mask, self.weight, self.bias))
        return F.leaky_relu(torch.cat(pieces, -1).view(b, -1, h, w), 0.1)

    def forward(self, x: Tensor, aggregated: Tensor) -> Tensor:
        return self.tail(self.body(self.head(torch.cat([x, aggregated], 1))) + x)


def _canvas(textures: Sequence[Tensor]) -> tuple[Tensor, list[int], list[tuple[int, int]]]:
    """The references' maps stacked vertically with a zero row between them (one map to sample)."""
    sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in textures]
    if len(textures) == 1:
        return textures[0], [0], sizes
    width = max(w for _, w in sizes)
    parts, tops, top = [], [], 0
    for t, (h, w) in zip(textures, sizes):
        tops.append(top)
        parts.append(F.pad(t, (0, width - w, 0, 1)))
        top += h + 1
    return torch.cat(parts, -2), tops, sizes


def _positions(flows: Tensor, refs: Tensor, factor: int, rows: tuple[int, int], width: int) -> tuple[Tensor, Tensor]:
    """Where the 9 taps of the level rows ``rows`` read, before the learned offsets.

    Returns:
        (B×9×2×N positions in the matched reference's pixels, x then y; B×9×N reference indices).
    """
    y0, y1 = rows
    lr_rows = slice(y0 // factor, (y1 - 1) // factor + 1)
    skip = y0 - lr_rows.start * factor
    flow = _upsample_nearest(flows[..., lr_rows, :], factor)[..., skip : skip + y1 - y0, :]
    ref = _upsample_nearest(refs[..., lr_rows, :], factor)[..., skip : skip + y1 - y0, :]
    grid = pixel_grid(y1 - y0, width, flows.device, flows.dtype)
    grid[:, 1] += y0
    taps = flows.new_tensor(_TAPS).view(1, 9, 2, 1, 1)
    return (grid.unsqueeze(1) + taps + factor * flow).flatten(-2), ref.flatten(-2)


@register_component("restoration", "c2_dynamic_aggregation")
class C2Restoration(nn.Module):
    """C2-Matching's restoration: content extractor, then per level dynamic aggregation and residual blocks.

    Args:
        texture_channels: channels of the reference textures per level, finest first
            (64, 128, 256 for VGG19's relu1_1, relu2_1, relu3_1; the architecture injects them).
        upscale: s = 2^(levels − 1).
        in_channels: LR image channels; out_channels: output channels.
        channels: feature channels (``ngf``, 64).
        blocks: residual blocks in the content extractor and at every level (16).
        offset_groups: deformable groups (8).
        column_budget: most values in one block of the deformable convolution's columns (its
            rows are aggregated one block at a time, offsets included).

    Shapes: ``lr`` B×C×h×w, ``textures`` K pyramids (list over references of lists over
    levels, finest first; reference r's level k B×C_k×H_{r,k}×W_{r,k}), ``correspondence``
    on the h×w grid → B×out_channels×(s·h)×(s·w).
    """

    # Measured by tests/components/test_c2_matching.py: fp32/fp64 (contracts); bf16 autocast
    # (sampling positions stay fp32) within 2e-2 of fp32 on the small preset; torch.export of the
    # c2_matching_small model equal to eager. ONNX: not tried.
    SUPPORT = replace(SAMPLING_SUPPORT, notes="bf16: positions in fp32; ONNX not tried")

    PARAM_BOUNDS = usual_bounds(
        "upscale in_channels out_channels blocks offset_groups", channels=(2, 1024), column_budget=(1024, 2**31)
    )

    def __init__(
        self,
        texture_channels: Sequence[int],
        upscale: int = 4,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: int = 64,
        blocks: int = 16,
        offset_groups: int = 8,
        column_budget: int = 2**24,
    ) -> None:
        super().__init__()
        levels = texture_levels(texture_channels, upscale)
        self.upscale, self.column_budget = upscale, column_budget
        self.content = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1), nn.LeakyReLU(0.1), _residual_blocks(channels, blocks)
        )
        stages = []
        for j, ref_channels in enumerate(reversed(list(texture_channels))):  # coarsest first
            if j < levels - 1:
                tail: nn.Module = nn.Sequential(
                    nn.Conv2d(channels, 4 * channels, 3, padding=1), nn.PixelShuffle(2), nn.LeakyReLU(0.1)
                )
            else:
                tail = nn.Sequential(
                    nn.Conv2d(channels, channels // 2, 3, padding=1),
                    nn.LeakyReLU(0.1),
                    nn.Conv2d(channels // 2, out_channels, 3, padding=1),
                )
            stages.append(_Level(channels, ref_channels, blocks, offset_groups, tail))
        self.levels = nn.ModuleList(stages)

    def forward(self, lr: Tensor, textures: Sequence[Sequence[Tensor]], correspondence: Correspondence) -> Tensor:
        if tuple(correspondence.flow.shape[-2:]) != tuple(lr.shape[-2:]):
            raise InputError(
                f"the correspondence is on a {tuple(correspondence.flow.shape[-2:])} grid, the LR image "
                f"{tuple(lr.shape[-2:])}: match the LR grid (an upsampled LR at 4× the LR grid)"
            )
        if len(textures) != len(correspondence.ref_sizes):
            raise InputError(f"{len(textures)} texture pyramids for {len(correspondence.ref_sizes)} matched references")
        taps = tap_displacements(correspondence)
        x = self.content(lr)
        count = len(self.levels)
        for j, level in enumerate(self.levels):
            k = count - 1 - j  # texture level, finest = 0
            maps = [pyramid[k] for pyramid in textures]
            x = level(x, level.aggregate(x, maps, taps, 2**j, self.column_budget))
        base = F.interpolate(lr, scale_factor=self.upscale, mode="bilinear", align_corners=False)
        return x + base
