"""MASA-SR's coarse-to-fine matching and its texture transfer (Lu et al., CVPR 2021).

The LR feature map (B×C×H×W, sides multiples of the block size k) is cut into k×k blocks.

1. **Coarse**: each block is described by the 3×3 patches around its centre at several
   dilations; every position of every reference grid (the references reduced by the
   upscale factor, zero beyond their border) is scored by the sum over dilations of the
   cosine similarities, and the block keeps its best position. The references are scored
   in bands of rows (:func:`coarse_match`), so the scores of all positions are never held.
2. **Fine**: around that position a window whose size follows the reference's size and the
   number of blocks (1.5 times a block's share of the reference, plus a border) is cut out,
   shifted to lie inside the reference; each LR pixel's 3×3 patch is matched against every
   3×3 patch of its block's window (:func:`fine_match`), a few blocks at a time.
3. **Transfer**: at a level s times finer than the match grid, output pixel u takes the mean,
   over the LR pixels p of its own block whose 3×3 neighbourhood covers it, of the reference
   level at ``u + s·(match(p) − p)``, scaled by the block's similarity map bilinearly
   upsampled within the block (:func:`transfer`). This is the authors' fold of 3s×3s
   patches with stride s, written as a gather so no patch is copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

__all__ = ["BlockMatches", "coarse_match", "fine_match", "transfer", "window_diameters"]

#: Values of unfolded reference patches held at a time when scoring positions or windows.
DEFAULT_BUDGET = 1 << 22


@dataclass(frozen=True)
class BlockMatches:
    """The coarse match of every block: B×py×px tensors.

    Attributes:
        reference: which reference (int64).
        y, x: the best position in that reference's grid (int64).
        score: the summed cosine similarity there.
    """

    reference: Tensor
    y: Tensor
    x: Tensor
    score: Tensor


def _block_descriptors(lr: Tensor, block: int, dilations: Sequence[int]) -> list[Tensor]:
    """Per dilation, the normalised 3×3 patch around each block's centre: B×(py·px)×(C·9)."""
    pad = max(dilations)
    padded = F.pad(lr, (pad, pad, pad, pad), mode="replicate")
    # The authors take pixel (k + 2)//2 of the block padded by one pixel: block row (k + 2)//2 − 1.
    centre = (block + 2) // 2 - 1 + pad
    descriptors = []
    for d in dilations:
        taps = torch.arange(-d, d + 1, d, device=lr.device)
        rows = (torch.arange(0, lr.shape[-2], block, device=lr.device) + centre)[:, None] + taps
        cols = (torch.arange(0, lr.shape[-1], block, device=lr.device) + centre)[:, None] + taps
        patches = padded[:, :, rows][..., cols]  # B×C×py×3×px×3
        patches = rearrange(patches, "b c py i px j -> b (py px) (c i j)")
        descriptors.append(F.normalize(patches, dim=-1))
    return descriptors


def coarse_match(
    lr: Tensor, refs: Sequence[Tensor], block: int, dilations: Sequence[int], budget: int = DEFAULT_BUDGET
) -> BlockMatches:
    """Each block's best position over all references (ties: the first reference, first position).

    Args:
        lr: B×C×H×W features on the match grid, H and W multiples of ``block``.
        refs: K reference feature maps B×C×H_r×W_r on their match grids.
        block: the block side k.
        dilations: the dilations of the block's 3×3 descriptors.
        budget: at most this many unfolded reference values per dilation at a time.
    """
    b, c, h, w = lr.shape
    py, px = h // block, w // block
    descriptors = _block_descriptors(lr, block, dilations)
    best = lr.new_full((b, py * px), -float("inf"))
    best_ref = torch.zeros(b, py * px, dtype=torch.long, device=lr.device)
    best_pos = torch.zeros_like(best_ref)
    for r, ref in enumerate(refs):
        hr, wr = ref.shape[-2:]
        band = max(1, budget // max(1, c * 9 * wr))
        padded = {d: F.pad(ref, (d, d, d, d)) for d in dilations}
        for top in range(0, hr, band):
            rows = min(band, hr - top)
            score = 0
            for d, desc in zip(dilations, descriptors, strict=True):
                strip = padded[d][:, :, top : top + rows + 2 * d]
                patches = F.normalize(F.unfold(strip, 3, dilation=d), dim=1)  # B×C9×(rows·W_r)
                score = score + torch.bmm(desc, patches)
            value, index = score.max(dim=-1)
            better = value > best
            best = torch.where(better, value, best)
            best_ref = torch.where(better, torch.full_like(best_ref, r), best_ref)
            best_pos = torch.where(better, index + top * wr, best_pos)
    widths = torch.tensor([ref.shape[-1] for ref in refs], device=lr.device)[best_ref]
    shape = (b, py, px)
    return BlockMatches(
        (best_ref).view(shape), (best_pos // widths).view(shape), (best_pos % widths).view(shape), best.view(shape)
    )


def window_diameters(ref_size: tuple[int, int], blocks: tuple[int, int], spread: float = 1.5) -> tuple[int, int]:
    """The odd (height, width) of the positions searched around a block's coarse match.

    ``2·int(⌊side / (2·blocks)⌋·spread) + 1`` per side (the authors' rule), at most the
    reference grid's side less two, so that the window with its one-pixel border fits.
    """
    out = []
    for side, count in zip(ref_size, blocks, strict=True):
        diameter = 2 * int(side // (2 * count) * spread) + 1
        out.append(max(1, min(diameter, side - 2)))
    return out[0], out[1]


def _window_starts(centre: Tensor, diameter: int, side: int) -> Tensor:
    """First row (or column) of the (diameter + 2)-wide window around ``centre``, kept inside the grid."""
    return (centre - diameter // 2 - 1).clamp(min=0).clamp(max=side - diameter - 2)


def fine_match(
    lr: Tensor,
    refs: Sequence[Tensor],
    coarse: BlockMatches,
    block: int,
    spread: float = 1.5,
    budget: int = DEFAULT_BUDGET,
) -> tuple[Tensor, Tensor, Tensor]:
    """Each LR pixel's best 3×3 patch inside its block's window.

    Args:
        lr: B×C×H×W features on the match grid (H, W multiples of ``block``).
        refs: K reference feature maps B×C×H_r×W_r (each side at least 3).
        coarse: the blocks' coarse matches (:func:`coarse_match`).
        block: the block side k.
        spread: the window's size relative to a block's share of the reference.
        budget: at most this many unfolded window values at a time.

    Returns:
        (B×2×H×W the matched patch centre (x, y) in its reference's grid, int64;
        B×1×H×W which reference, int64; B×1×H×W the cosine similarity).
    """
    b, c, h, w = lr.shape
    py, px = h // block, w // block
    patches = F.normalize(F.unfold(F.pad(lr, (1, 1, 1, 1), mode="replicate"), 3), dim=1)  # B×C9×HW
    patches = rearrange(patches, "b f (py i px j) -> (b py px) (i j) f", py=py, i=block, px=px, j=block)
    centres = torch.zeros(b * py * px, 2, block * block, dtype=torch.long, device=lr.device)
    scores = lr.new_zeros(b * py * px, block * block)
    batch = torch.arange(b, device=lr.device).repeat_interleave(py * px)
    which = coarse.reference.reshape(-1)
    cy, cx = coarse.y.reshape(-1), coarse.x.reshape(-1)
    for r, ref in enumerate(refs):
        hr, wr = ref.shape[-2:]
        dy, dx = window_diameters((hr, wr), (py, px), spread)
        y0 = _window_starts(cy, dy, hr)
        x0 = _window_starts(cx, dx, wr)
        # One reference: every block, a size known before running (what torch.export needs).
        chosen = torch.arange(which.numel(), device=lr.device) if len(refs) == 1 else (which == r).nonzero().squeeze(1)
        step = max(1, budget // (c * 9 * dy * dx))
        for start in range(0, chosen.numel(), step):
            idx = chosen[start : start + step]
            rows = y0[idx, None] + torch.arange(dy + 2, device=lr.device)
            cols = x0[idx, None] + torch.arange(dx + 2, device=lr.device)
            window = ref[batch[idx, None, None], :, rows[:, :, None], cols[:, None, :]]  # n×(dy+2)×(dx+2)×C
            window = F.normalize(F.unfold(window.permute(0, 3, 1, 2), 3), dim=1)  # n×C9×(dy·dx)
            value, index = torch.bmm(patches[idx], window).max(dim=-1)
            scores[idx] = value
            centres[idx, 0] = x0[idx, None] + index % dx + 1
            centres[idx, 1] = y0[idx, None] + index // dx + 1
    centres = rearrange(centres, "(b py px) two (i j) -> b two (py i) (px j)", b=b, py=py, px=px, i=block)
    scores = rearrange(scores, "(b py px) (i j) -> b 1 (py i) (px j)", b=b, py=py, px=px, i=block)
    reference = coarse.reference.repeat_interleave(block, -2).repeat_interleave(block, -1).unsqueeze(1)
    return centres, reference, scores


def _neighbours(size: int, scale: int, block: int, device: torch.device) -> list[tuple[Tensor, Tensor]]:
    """For output rows 0 … scale·size − 1: per offset −1, 0, 1, the LR row and whether it is in the row's block."""
    out_rows = torch.arange(size * scale, device=device)
    lr_rows = torch.div(out_rows, scale, rounding_mode="floor")
    first = torch.div(lr_rows, block, rounding_mode="floor") * block
    result = []
    for t in (-1, 0, 1):
        rows = lr_rows + t
        result.append((rows.clamp(0, size - 1), (rows >= first) & (rows < first + block)))
    return result


def transfer(
    levels: Sequence[Tensor], centres: Tensor, reference: Tensor, score: Tensor, scale: int, block: int
) -> Tensor:
    """Reference features moved onto the LR grid at ``scale`` times its resolution.

    Args:
        levels: per reference, B×C×(s·H_r)×(s·W_r): its features at this level.
        centres: B×2×H×W matched centres (x, y) in the references' match grids (int64).
        reference: B×1×H×W which reference.
        score: B×1×H×W similarity; upsampled bilinearly within each block, it scales the result.
        scale: s.
        block: the block side k (H and W are multiples of it).

    Returns:
        B×C×(s·H)×(s·W).
    """
    b, _, h, w = centres.shape
    c = levels[0].shape[1]
    rows, cols = (_neighbours(n, scale, block, centres.device) for n in (h, w))
    total = levels[0].new_zeros(b, c, h * scale, w * scale)
    out_y = torch.arange(h * scale, device=centres.device).view(-1, 1)
    out_x = torch.arange(w * scale, device=centres.device).view(1, -1)
    flat = [level.flatten(2) for level in levels]
    for row, row_ok in rows:
        for col, col_ok in cols:
            match = centres[:, :, row][:, :, :, col]  # B×2×sH×sW
            which = reference[:, :, row][:, :, :, col]
            ok = (row_ok.view(-1, 1) & col_ok.view(1, -1)).to(total.dtype)
            for r, level in enumerate(flat):
                hs, ws = levels[r].shape[-2:]
                y = (out_y + scale * (match[:, 1] - row.view(-1, 1))).clamp(0, hs - 1)
                x = (out_x + scale * (match[:, 0] - col.view(1, -1))).clamp(0, ws - 1)
                index = (y * ws + x).flatten(1).unsqueeze(1).expand(-1, c, -1)
                sampled = torch.gather(level, 2, index).view_as(total)
                mask = ok if len(levels) == 1 else ok * (which == r).to(total.dtype)
                total = total + sampled * mask
    count_y = sum(ok for _, ok in rows).to(total.dtype)
    count_x = sum(ok for _, ok in cols).to(total.dtype)
    blocks = rearrange(score, "b one (py i) (px j) -> (b py px) one i j", i=block, j=block)
    attention = F.interpolate(blocks, scale_factor=scale, mode="bilinear", align_corners=False)
    attention = rearrange(attention, "(b py px) one i j -> b one (py i) (px j)", b=b, py=h // block)
    return total / (count_y.view(-1, 1) * count_x.view(1, -1)) * attention
