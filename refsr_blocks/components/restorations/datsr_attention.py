"""DATSR's reference-based deformable attention and its Swin residual group (Cao et al., ECCV 2022).

The deformable attention (RDA) samples reference features where the correspondence points,
refined by learned offsets: for every output pixel p and kernel tap t = (i, j) of a 3×3
modulated deformable convolution, the sampling position is

    p + (j − 1, i − 1) + f·flow(⌊p/f⌋ − (i, j)) + residual_t(p)

in the reference's pixels of that level (``flow``: the match grid's displacement to the
top-left of the matched 3×3 patch, ``f``: match-grid pixels per level pixel, the
``⌊p/f⌋ − (i, j)`` shift: the tap reads the match of its neighbour, as the authors' shifted
pre-offsets do), with ``residual = max_residue·tanh(·)`` and a modulation
``sigmoid(logit · similarity)`` from convolutions of [decoder features, warped reference
features, reference features on the target grid].

Any size, K references: the level's reference maps are stacked into one zero-separated
canvas and every tap carries its absolute position in it
(:func:`~refsr_blocks.ops.deform_from.deform_conv_at`), so nothing is padded to the LR
image's size (the authors' test code zero-pads the LR image and the reference to one size,
because ``deform_conv2d`` samples an input of the output's size). A position more than
``max_residue + 2`` pixels outside its reference is held at that distance: no residual can
bring it back, so it reads zero as before, and it cannot reach the next reference of the canvas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...ops.correspondence import Correspondence
from ...ops.deform_from import deform_conv_at
from ...ops.warp import pixel_grid, sample

__all__ = ["DeformableAttention", "LevelSource", "SwinGroup", "level_sources"]

#: Most output pixels × channels × taps in one deformable block (elements: 64 MiB in float32; the
#: sampler's indices and weights for those samples take about three times as much).
_BLOCK = 1 << 24
#: Most tokens × channels in one band of Swin windows (elements: 16 MiB in float32; its qkv
#: values are three times as many, its attention weights heads·64/channels times as many).
_SWIN_BAND = 1 << 22


@dataclass(frozen=True)
class LevelSource:
    """What the deformable attention reads at one pyramid level (target grid H×W).

    Attributes:
        canvas: B×C×H_c×W_c: the K reference maps of this level stacked (rows), zero between.
        tops: row of each reference in the canvas.
        sizes: (H_r, W_r) of each reference map.
        flow: B×2×h×w displacement (x, y) of the match grid to the top-left of the matched
            patch, in match-grid pixels; B×1×h×w ``reference`` says in which reference.
        reference: B×1×h×w int64.
        factor: level pixels per match-grid pixel (1, 2, 4).
        warped: B×C×H×W reference features at ``p + f·flow(⌊p/f⌋)`` (the texture transferred).
        unaligned: B×C×H×W the chosen reference's features at p itself.
        similarity: B×1×H×W matching score (modulates the attention).
        margin: how far outside its reference a position may be held (pixels).
    """

    canvas: Tensor
    tops: tuple[int, ...]
    sizes: tuple[tuple[int, int], ...]
    flow: Tensor
    reference: Tensor
    factor: int
    warped: Tensor
    unaligned: Tensor
    similarity: Tensor
    margin: float

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.warped.shape[-2]), int(self.warped.shape[-1]))

    def level_flow(self) -> Tensor:
        """B×2×H×W displacement (level pixels) from each pixel to where its texture is read."""
        return _upsample(self.flow, self.factor, self.size) * self.factor

    def level_reference(self) -> Tensor:
        """B×1×H×W: the reference each pixel's texture is read from."""
        return _upsample(self.reference, self.factor, self.size)

    def tap_positions(self, i: int, j: int, rows: slice) -> Tensor:
        """B×2×N canvas positions (x, y) of tap (i, j) for the pixels of ``rows``, before the residual."""
        f = self.factor
        first, last = rows.start // f, (rows.stop - 1) // f + 1  # the match-grid rows they lie in
        flow = _shift(self.flow, i, j)[..., first:last, :]
        ref = _shift(self.reference, i, j, fill=self.reference)[..., first:last, :]
        n, w = rows.stop - rows.start, self.size[1]
        cut = slice(rows.start - first * f, rows.stop - first * f)
        flow = (_upsample(flow, f, (last * f, w)) * f)[..., cut, :]
        ref = _upsample(ref, f, (last * f, w))[..., cut, :]
        grid = pixel_grid(n, w, flow.device, flow.dtype)
        grid[:, 1] += rows.start
        taps = flow.new_tensor([j - 1.0, i - 1.0]).view(1, 2, 1, 1)
        return _on_canvas(grid + taps + flow, ref, self.sizes, self.tops, self.margin).flatten(2)


def _on_canvas(
    pos: Tensor, ref: Tensor, sizes: Sequence[tuple[int, int]], tops: Sequence[int], margin: float
) -> Tensor:
    """Positions (B×2×…) in the pixels of reference ``ref`` (B×1×…) → canvas pixels, held within ``margin`` of it."""
    heights = pos.new_tensor([s[0] for s in sizes])[ref[:, 0]]
    widths = pos.new_tensor([s[1] for s in sizes])[ref[:, 0]]
    x = torch.minimum(pos[:, 0].clamp_min(-margin), widths - 1 + margin)
    y = torch.minimum(pos[:, 1].clamp_min(-margin), heights - 1 + margin)
    return torch.stack((x, y + pos.new_tensor(list(tops))[ref[:, 0]]), dim=1)


def _shift(x: Tensor, i: int, j: int, fill: Tensor | None = None) -> Tensor:
    """``out[..., y, x] = x[..., y − i, x − j]``; ``fill`` (else zero) where that is outside."""
    out = torch.zeros_like(x) if fill is None else fill.clone()
    h, w = x.shape[-2:]
    out[..., i:, j:] = x[..., : h - i, : w - j]
    return out


def _upsample(x: Tensor, factor: int, size: tuple[int, int]) -> Tensor:
    """Nearest upsampling by an integer ``factor`` (each pixel repeated), cropped to ``size``."""
    if factor > 1:
        x = x.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
    return x[..., : size[0], : size[1]]


def _fit(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``x`` cropped or zero-padded (bottom, right) to ``size``."""
    x = x[..., : size[0], : size[1]]
    return F.pad(x, (0, size[1] - x.shape[-1], 0, size[0] - x.shape[-2]))


def _stack(maps: Sequence[Tensor], gap: int) -> tuple[Tensor, tuple[int, ...]]:
    """The maps (B×C×H_r×W_r) one under another with ``gap`` zero rows between: the canvas and each top row."""
    tops = [0]
    for m in maps[:-1]:
        tops.append(tops[-1] + m.shape[-2] + gap)
    width = max(m.shape[-1] for m in maps)
    canvas = maps[0].new_zeros(*maps[0].shape[:2], tops[-1] + maps[-1].shape[-2], width)
    for m, top in zip(maps, tops):
        canvas[..., top : top + m.shape[-2], : m.shape[-1]] = m
    return canvas, tuple(tops)


def level_sources(
    values: Sequence[Sequence[Tensor]],
    correspondence: Correspondence,
    sizes: Sequence[tuple[int, int]],
    max_residue: float,
) -> list[LevelSource]:
    """One :class:`LevelSource` per level of the target pyramid.

    Args:
        values: ``values[r][k]``: reference r's features at level k (B×C_k×H_{r,k}×W_{r,k};
            level k has 2^k image pixels per pixel).
        correspondence: on the LR grid (the coarsest level).
        sizes: (H_k, W_k) of the target's levels, finest first; level k is 2^(L−1−k) times
            finer than the LR grid.
        max_residue: the attention's largest learned offset (sets the canvas gaps).
    """
    corr = correspondence
    if tuple(corr.flow.shape[-2:]) != tuple(sizes[-1]):
        raise ValueError(
            f"the correspondence grid {tuple(corr.flow.shape[-2:])} must be the LR grid {tuple(sizes[-1])}"
        )
    # The authors' flow is kept at the top-left of each matched patch (theirs is padded by
    # two at the bottom and right, with zero displacement), the score at its centre.
    flow = F.pad(corr.flow[..., 1:, 1:], (0, 1, 0, 1))
    reference = F.pad(corr.reference[..., 1:, 1:].float(), (0, 1, 0, 1), mode="replicate").long()
    margin = math.ceil(max_residue) + 2.0
    out = []
    for k, size in enumerate(sizes):
        factor = 2 ** (len(sizes) - 1 - k)
        maps = [v[k] for v in values]
        ref_sizes = tuple((int(m.shape[-2]), int(m.shape[-1])) for m in maps)
        canvas, tops = _stack(maps, gap=int(2 * margin) + 2)
        # Positions in float32 (float64 with float64 maps): bf16 cannot hold pixel positions past 256.
        coords = torch.float64 if canvas.dtype == torch.float64 else torch.float32
        level_flow = _upsample(flow.to(coords), factor, size) * factor
        ref = _upsample(reference, factor, size)
        points = _on_canvas(pixel_grid(*size, canvas.device, coords) + level_flow, ref, ref_sizes, tops, margin)
        warped = sample(F.pad(canvas, (1, 1, 1, 1)), (points + 1).flatten(2)).unflatten(2, size)
        unaligned = _fit(maps[0], size)
        for r, m in enumerate(maps[1:], start=1):
            unaligned = torch.where(ref == r, _fit(m, size), unaligned)
        similarity = _upsample(corr.score, factor, size).to(canvas.dtype)
        out.append(
            LevelSource(
                canvas, tops, ref_sizes, flow.to(coords), reference, factor, warped, unaligned, similarity, margin
            )
        )
    return out


class DeformableAttention(nn.Module):
    """Reference-based deformable attention at one level (the authors' offset convs + DynAgg).

    Args:
        channels: C, channels of the reference features at this level.
        feature_channels: channels of the decoder features that steer the offsets.
        groups: deformable groups (C must be divisible by it).
        max_residue: bound of the learned offsets (pixels).

    Shapes: ``x`` B×feature_channels×H×W and a :class:`LevelSource` on that grid → B×C×H×W.
    """

    def __init__(self, channels: int, feature_channels: int, groups: int = 8, max_residue: float = 10.0) -> None:
        super().__init__()
        if channels % groups:
            raise ValueError(f"reference channels {channels} must be divisible by the deformable groups {groups}")
        if max_residue <= 0:
            raise ValueError(f"max_residue must be positive, got {max_residue}")
        self.groups, self.max_residue = groups, float(max_residue)
        self.offset_conv1 = nn.Conv2d(feature_channels + 2 * channels, channels, 3, padding=1)
        self.offset_conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv_offset_mask = nn.Conv2d(channels, 3 * groups * 9, 3, padding=1)
        # Zero offsets and a flat modulation at the start: the attention reads the matches.
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)
        bound = 1.0 / math.sqrt(channels * 9)
        self.weight = nn.Parameter(torch.empty(channels, channels, 3, 3).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, source: LevelSource) -> Tensor:
        b, _, h, w = x.shape
        rows = max(1, _BLOCK // (w * self.weight.shape[1] * 9))
        chunks = []
        for r0 in range(0, h, rows):
            band = slice(r0, min(h, r0 + rows))
            offset, mask = self._offsets(x, source, band)
            base = torch.stack([source.tap_positions(i, j, band) for i in range(3) for j in range(3)], dim=1)
            positions = base.unsqueeze(1) + offset.flatten(-2)
            chunks.append(deform_conv_at(source.canvas, positions, mask.flatten(-2), self.weight, self.bias))
        return F.leaky_relu(torch.cat(chunks, dim=-1).view(b, -1, h, w), 0.1)

    def _offsets(self, x: Tensor, source: LevelSource, band: slice) -> tuple[Tensor, Tensor]:
        """Learned offsets (B×G×9×2×n×W, x then y) and modulation (B×G×9×n×W) of the rows ``band``.

        The three 3×3 convs read three rows beyond the band on either side (where the image has
        them), so the band's values are those of the whole level.
        """
        h = x.shape[-2]
        top, bottom = max(0, band.start - 3), min(h, band.stop + 3)
        rows = slice(top, bottom)
        steer = torch.cat([x[..., rows, :], source.warped[..., rows, :], source.unaligned[..., rows, :]], dim=1)
        steer = F.leaky_relu(self.offset_conv1(steer), 0.1)
        steer = F.leaky_relu(self.offset_conv2(steer), 0.1)
        out = self.conv_offset_mask(steer)[..., band.start - top : band.stop - top, :]
        b, _, n, w = out.shape
        g = self.groups
        # (y, x) per tap and group, as torchvision's and DCNv2's offsets are laid out
        offset = (self.max_residue * torch.tanh(out[:, : 18 * g])).view(b, g, 9, 2, n, w).flip(3)
        mask = torch.sigmoid(out[:, 18 * g :] * source.similarity[..., band, :]).view(b, g, 9, n, w)
        return offset, mask


def _shift_regions(
    height: int, width: int, window: tuple[int, int], shift: tuple[int, int], device: torch.device
) -> Tensor:
    """Labels of the regions the cyclic shift brings together (Swin's mask: different labels do not attend)."""
    labels = []
    for size, win, sh in ((height, window[0], shift[0]), (width, window[1], shift[1])):
        label = torch.zeros(size, dtype=torch.long, device=device)
        label[size - win :] = 1
        label[size - sh :] = 2
        labels.append(label)
    return labels[0][:, None] * 3 + labels[1][None, :]


def _banded_swin_block(block: nn.Module, x: Tensor) -> Tensor:
    """timm's ``SwinTransformerBlock`` on B×H×W×C, its windows and its MLP taken in bands of rows.

    The same operations as ``block(x)`` (roll, pad, window attention with the shift mask, MLP),
    but no more than :data:`_SWIN_BAND` values of a band at a time: the attention weights of all
    windows (64×64 per window and head) are never held at once.
    """
    from timm.models.swin_transformer import window_partition, window_reverse

    b, h, w, c = x.shape
    win, shift = block.window_size, block.shift_size
    shifted = any(shift)
    y = block.norm1(x)
    if shifted:
        y = torch.roll(y, (-shift[0], -shift[1]), (1, 2))
    y = F.pad(y, (0, 0, 0, (-w) % win[1], 0, (-h) % win[0]))
    hp, wp = y.shape[1:3]
    regions = _shift_regions(hp, wp, win, shift, y.device) if shifted else None
    rows = max(1, _SWIN_BAND // (b * wp * c * win[0])) * win[0]
    bands = []
    for r0 in range(0, hp, rows):
        part = y[:, r0 : r0 + rows]
        mask = None
        if regions is not None:
            label = window_partition(regions[r0 : r0 + part.shape[1], :, None][None].float(), win).flatten(1)
            mask = (label[:, None, :] != label[:, :, None]).to(y.dtype) * -100.0
        attended = block.attn(window_partition(part, win).flatten(1, 2), mask=mask)
        bands.append(window_reverse(attended.view(-1, *win, c), win, part.shape[1], wp))
    y = torch.cat(bands, dim=1)[:, :h, :w]
    if shifted:
        y = torch.roll(y, shift, (1, 2))
    x = x + block.drop_path1(y)
    hidden = torch.cat([block.mlp(block.norm2(part)) for part in x.split(rows, dim=1)], dim=1)
    return x + block.drop_path2(hidden)


class _ResidualSwin(nn.Module):
    """Swin blocks, then a 3×3 conv, plus the input (the authors' RSTB)."""

    def __init__(self, channels: int, depth: int, heads: int, window: int, mlp_ratio: float, drops: list[float]):
        super().__init__()
        from timm.models.swin_transformer import SwinTransformerBlock  # imported on first use: a heavy import

        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                channels,
                (window, window),
                num_heads=heads,
                window_size=window,
                shift_size=0 if i % 2 == 0 else window // 2,
                always_partition=True,  # any input size: windows padded, shift masks made per call
                dynamic_mask=True,
                mlp_ratio=mlp_ratio,
                drop_path=drops[i],
            )
            for i in range(depth)
        )
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """B×H×W×C → B×H×W×C."""
        y = x
        for block in self.blocks:
            y = _banded_swin_block(block, y)
        return x + self.conv(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class SwinGroup(nn.Module):
    """DATSR's residual feature aggregation body: norm, residual Swin groups, norm (B×C×H×W → same).

    Args:
        channels: C.
        depths: Swin blocks per residual group (the authors: 4, 4).
        num_heads: attention heads per group.
        window: window size (any H, W: windows are padded).
        mlp_ratio: hidden channels of the blocks' MLP over C.
        drop_path: stochastic depth rising linearly to this over the blocks (training only).
    """

    def __init__(
        self,
        channels: int,
        depths: Sequence[int] = (4, 4),
        num_heads: Sequence[int] = (4, 4),
        window: int = 8,
        mlp_ratio: float = 2.0,
        drop_path: float = 0.1,
    ) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {list(depths)} and num_heads {list(num_heads)} need one entry per group")
        rates = torch.linspace(0, drop_path, sum(depths)).tolist()
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.embed_norm = nn.LayerNorm(channels)
        self.groups = nn.ModuleList(
            _ResidualSwin(channels, d, h, window, mlp_ratio, rates[s : s + d])
            for d, h, s in zip(depths, num_heads, starts)
        )
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        y = self.embed_norm(x.permute(0, 2, 3, 1))
        for group in self.groups:
            y = group(y)
        return self.norm(y).permute(0, 3, 1, 2)
