"""Memory-bounded patch matching and texture transfer over K references of any size.

The relevance of a query patch ``q`` (an LR-side feature patch) and a key patch ``k`` (a
reference-side patch) is their cosine similarity (TTSR's relevance embedding). Matching is
*joint*: the K references' patches form one pool, and every query keeps the best patch of
the pool (hard attention, :func:`match_patches`) and its relevance (soft attention).

Memory: the relevance matrix is never formed. Queries and reference positions are walked in
blocks of at most ``chunk_size`` positions each (reference blocks are whole rows of one
reference, unfolded from the padded key map when needed), so the largest temporary is a
``chunk_size × max(chunk_size, reference width)`` block; a running maximum keeps the result.

Transfer (:func:`transfer`) copies, for every query position, its matched reference patch at
any pyramid level ``f`` times finer than the matching level (patch ``3f×3f``, stride ``f``),
and averages overlapping patches, as ``F.fold`` of TTSR's unfolded values would, but by nine
gathers whose size is that of the output: it never unfolds the references.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Matches", "match_patches", "relevance", "transfer"]

#: Offsets of a 3×3 patch around its centre, row-major (the order of ``F.unfold``).
_OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


@dataclass(frozen=True)
class Matches:
    """The hard attention of every query position over K references.

    Attributes:
        index: B×h×w int64: the matched position in the joint pool (reference r's position
            (y, x) is ``offsets[r] + y·sizes[r][1] + x``).
        sizes: (H_r, W_r) of each reference's key map (the matching level).
        offsets: start of each reference in the joint pool.
    """

    index: Tensor
    sizes: tuple[tuple[int, int], ...]
    offsets: tuple[int, ...]

    def decode(self, index: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(reference, y, x)`` of pool positions (default: of :attr:`index`), each like ``index``."""
        index = self.index if index is None else index
        starts = torch.tensor(self.offsets, device=index.device)
        widths = torch.tensor([w for _, w in self.sizes], device=index.device)
        ref = torch.bucketize(index.contiguous(), starts, right=True) - 1
        local = index - starts[ref]
        return ref, local // widths[ref], local % widths[ref]


def _normalised_patches(x: Tensor, patch: int) -> Tensor:
    """B×(C·patch²)×(H·W) unit-norm patches of a B×C×H×W map (zero padding)."""
    return F.normalize(F.unfold(x, patch, padding=patch // 2), dim=1)


@torch.no_grad()
def match_patches(query: Tensor, keys: Sequence[Tensor], *, patch: int = 3, chunk_size: int = 4096) -> Matches:
    """The best key patch of all references for every query patch (cosine similarity).

    Args:
        query: B×C×h×w query features.
        keys: K key maps, each B×C×H_r×W_r (any sizes).
        patch: odd patch size (3 in TTSR).
        chunk_size: most query positions, and most reference positions, in one block.

    Returns:
        :class:`Matches` (no gradient: the relevance is recomputed differentiably by
        :func:`relevance`).
    """
    if patch % 2 == 0 or patch < 1:
        raise ValueError(f"patch must be odd and positive, got {patch}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if not keys:
        raise ValueError("match_patches needs at least one key map")
    b, c, h, w = query.shape
    for k in keys:
        if k.ndim != 4 or k.shape[0] != b or k.shape[1] != c:
            raise ValueError(f"every key map must be {b}×{c}×H×W like the query, got {tuple(k.shape)}")
    q = _normalised_patches(query, patch).transpose(1, 2)  # B×hw×D
    n_q = h * w
    best = torch.full((b, n_q), -float("inf"), dtype=q.dtype, device=q.device)
    index = torch.zeros((b, n_q), dtype=torch.long, device=q.device)
    pad = patch // 2
    offsets, sizes, start = [], [], 0
    for key in keys:
        hr, wr = key.shape[-2:]
        offsets.append(start)
        sizes.append((hr, wr))
        padded = F.pad(key, (pad, pad, pad, pad))
        rows = max(1, chunk_size // wr)
        for r0 in range(0, hr, rows):
            r1 = min(hr, r0 + rows)
            block = F.normalize(F.unfold(padded[:, :, r0 : r1 + 2 * pad], patch), dim=1)  # B×D×n
            for q0 in range(0, n_q, chunk_size):
                q1 = min(n_q, q0 + chunk_size)
                value, arg = torch.bmm(q[:, q0:q1], block).max(dim=2)
                better = value > best[:, q0:q1]
                best[:, q0:q1] = torch.where(better, value, best[:, q0:q1])
                index[:, q0:q1] = torch.where(better, arg + start + r0 * wr, index[:, q0:q1])
        start += hr * wr
    return Matches(index.view(b, h, w), tuple(sizes), tuple(offsets))


def _shift(x: Tensor, dy: int, dx: int) -> Tensor:
    """``out[..., y, x] = x[..., y + dy, x + dx]``, zero outside."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    return padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


def _flat_pool(maps: Sequence[Tensor]) -> Tensor:
    """B×C×ΣH_rW_r: the references' maps flattened and concatenated."""
    return torch.cat([m.flatten(2) for m in maps], dim=2)


def relevance(query: Tensor, keys: Sequence[Tensor], matches: Matches) -> Tensor:
    """The soft attention: cosine similarity of each query patch and its matched key patch.

    Differentiable in ``query`` and ``keys`` (the gradient of TTSR's ``max`` over the
    relevance matrix, without forming it). 3×3 patches.

    Returns:
        B×1×h×w.
    """
    pool = _flat_pool(keys)
    ref, y, x = matches.decode()
    heights = torch.tensor([s[0] for s in matches.sizes], device=y.device)[ref]
    widths = torch.tensor([s[1] for s in matches.sizes], device=y.device)[ref]
    starts = torch.tensor(matches.offsets, device=y.device)[ref]
    b, c = query.shape[:2]
    dot = query.new_zeros(b, *query.shape[-2:])
    q_norm = torch.zeros_like(dot)
    k_norm = torch.zeros_like(dot)
    for dy, dx in _OFFSETS:
        qs = _shift(query, dy, dx)
        yy, xx = y + dy, x + dx
        inside = (yy >= 0) & (yy < heights) & (xx >= 0) & (xx < widths)
        src = (starts + yy.clamp_min(0) * widths + xx.clamp_min(0)).clamp(max=pool.shape[2] - 1)
        ks = pool.gather(2, src.flatten(1)[:, None].expand(b, c, -1)).view_as(qs) * inside[:, None]
        dot = dot + (qs * ks).sum(1)
        q_norm = q_norm + (qs * qs).sum(1)
        k_norm = k_norm + (ks * ks).sum(1)
    eps = 1e-12
    return (dot / (q_norm.sqrt().clamp_min(eps) * k_norm.sqrt().clamp_min(eps)))[:, None]


def transfer(
    values: Sequence[Tensor],
    matches: Matches,
    factor: int,
    out_size: tuple[int, int],
    *,
    divide_by_nine: bool = False,
) -> Tensor:
    """Copy each query's matched 3×3 patch from ``values`` (a level ``factor`` times finer).

    Query ``q`` of the matching grid owns the output window ``[(q-1)·f, (q+2)·f)`` and fills
    it from ``[(m-1)·f, (m+2)·f)`` around its match ``m``; overlapping windows are averaged
    (border pixels by the number of windows that exist there); reference pixels outside
    the reference read as zero, as with zero-padded unfolding.

    Args:
        values: K maps, reference r's B×C×H'_r×W'_r at this level (H'_r ≈ f·H_r).
        matches: from :func:`match_patches` (h×w query grid).
        factor: f, the level's resolution over the matching level (1, 2, 4, …).
        out_size: (H, W) of the output on the query side (≈ f·h × f·w).
        divide_by_nine: divide every pixel by 9 (the windows over an inner pixel), as
            TTSR's ``fold(...) / 9`` does, which dims the border where fewer windows exist.

    Returns:
        B×C×H×W, differentiable in ``values``.
    """
    pool = _flat_pool(values)
    b, c = pool.shape[:2]
    h, w = matches.index.shape[-2:]
    oh, ow = out_size
    device = pool.device
    heights = torch.tensor([v.shape[-2] for v in values], device=device)
    widths = torch.tensor([v.shape[-1] for v in values], device=device)
    starts = (heights * widths).cumsum(0) - heights * widths
    ref, my, mx = matches.decode()
    ys = torch.arange(oh, device=device)[:, None]
    xs = torch.arange(ow, device=device)[None, :]
    out = pool.new_zeros(b, c, oh * ow)
    count = torch.zeros(oh, ow, device=device, dtype=pool.dtype)
    for dy, dx in _OFFSETS:
        qy, qx = ys // factor + dy, xs // factor + dx
        q_inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)  # H×W
        q = (qy.clamp(0, h - 1) * w + qx.clamp(0, w - 1)).flatten()  # HW
        r = ref.flatten(1)[:, q]  # B×HW
        sy = my.flatten(1)[:, q] * factor + (ys - qy * factor).expand(oh, ow).flatten()
        sx = mx.flatten(1)[:, q] * factor + (xs - qx * factor).expand(oh, ow).flatten()
        hr, wr = heights[r], widths[r]
        inside = (sy >= 0) & (sy < hr) & (sx >= 0) & (sx < wr) & q_inside.flatten()
        src = (starts[r] + sy.clamp_min(0) * wr + sx.clamp_min(0)).clamp(max=pool.shape[2] - 1)
        out = out + pool.gather(2, src[:, None].expand(b, c, -1)) * inside[:, None].to(pool.dtype)
        count = count + q_inside.to(pool.dtype)
    if divide_by_nine:
        return (out.view(b, c, oh, ow) / 9.0).contiguous()
    return (out.view(b, c, oh, ow) / count.clamp_min(1.0)).contiguous()
