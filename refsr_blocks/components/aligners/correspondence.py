"""Global correspondence for reference alignment: scale-space patch matching and a robust dense field.

The steps of :class:`~refsr_blocks.components.aligners.match_flow.MatchFlowAligner`'s coarse
stage, as functions:

1. :func:`match_inputs`: the target reduced to the match grid (``1/step`` of its size) and
   each reference blurred to the LR's bandwidth (``Ref↓↑``, TTSR's trick: both sides then
   look alike across the resolution gap) and resized by several scale factors (a scale
   pyramid: a zoomed-in or zoomed-out reference still finds patches of the right size);
2. :func:`contrast_embedding`: a parameter-free matching embedding (local contrast
   normalisation: the cosine of two 3×3 patches becomes their normalised cross-correlation,
   insensitive to exposure and colour gain), so an untrained model already matches;
3. :func:`match_field`: ``match_patches`` (chunked, joint over the scale pyramid) turned into
   a displacement into the reference's own pixel grid;
4. :func:`clean_field`: outliers replaced by a local consensus (median, then a
   normalised convolution of the inliers, filled from farther out where they are few);
5. :func:`refine_field`: a local search on a grid twice as fine, around the field, with the
   reference patches sampled *along* the field (so rotated and rescaled to the target's);
6. :func:`field_at`: the field read at the pixels of any pyramid level.

Geometry: pixel centres at integers. A grid of spacing ``step`` (a match grid, or pyramid
level k with ``step = 2^k``) has its pixel ``i`` at ``(i + 0.5)·step − 0.5`` of the level-0
target (the target is padded to a multiple of ``step`` and reduced by exactly that); a
reference map of size h resampled from H_r has its pixel ``j`` at ``(j + 0.5)·H_r/h − 0.5``
of the reference (``align_corners=False``). Flows are in pixels of the map they read
(``target[p] ≈ ref[p + flow[p]]``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ...ops.flow import pad_to_multiple
from ...ops.warp import pixel_grid, sample
from .matching import Matches, match_patches

__all__ = [
    "clean_field",
    "contrast_embedding",
    "field_at",
    "key_image",
    "map_at",
    "match_field",
    "match_inputs",
    "query_image",
    "refine_field",
    "resize_to",
]


def resize_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``x`` (B×C×H×W) resized to ``size`` (bilinear; antialiased when it shrinks)."""
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def _scaled(size: Sequence[int], factor: float) -> tuple[int, int]:
    return max(1, round(size[0] * factor)), max(1, round(size[1] * factor))


def query_image(target: Tensor, step: int) -> Tensor:
    """The target on the grid of spacing ``step``: B×C×ceil(H/step)×ceil(W/step)."""
    padded, _ = pad_to_multiple(target, step)
    return resize_to(padded, (padded.shape[-2] // step, padded.shape[-1] // step))


def key_image(ref: Tensor, upscale: int, factor: float) -> Tensor:
    """The reference at the LR's bandwidth (``Ref↓``, reduced by ``upscale``), resized by ``factor``."""
    low = resize_to(ref, _scaled(ref.shape[-2:], 1.0 / upscale))
    return resize_to(low, _scaled(ref.shape[-2:], factor))


def match_inputs(
    target: Tensor, ref: Tensor, *, step: int, upscale: int, ref_scales: Sequence[float]
) -> tuple[Tensor, list[Tensor]]:
    """The target on the match grid and the reference's scale pyramid at the LR's bandwidth.

    Args:
        target: B×C×H×W, the upsampled LR image.
        ref: B×C×H_r×W_r, any size.
        step: the match grid's spacing in target pixels.
        upscale: the LR's reduction (the reference is reduced by it first: ``Ref↓``).
        ref_scales: how much larger the reference's content should be drawn than in the
            reference itself, per key map (1.0: as is; 0.7 matches a reference zoomed in 1/0.7×).

    Returns:
        (B×C×ceil(H/step)×ceil(W/step) query image, one key image per scale,
        B×C×round(H_r·s/step)×round(W_r·s/step)).
    """
    return query_image(target, step), [key_image(ref, upscale, s / step) for s in ref_scales]


def contrast_embedding(x: Tensor, sigma: float = 1.5, eps: float = 0.02) -> Tensor:
    """Local contrast normalisation: ``(x − μ) / sqrt(σ² + eps²)`` with Gaussian local statistics.

    The cosine of two 3×3 patches of it is close to their normalised cross-correlation, so a
    reference with another exposure or white balance still matches; ``eps`` keeps flat
    regions (no texture to match) from being blown up to noise.

    Args:
        x: B×C×H×W image in [0, 1].

    Returns:
        B×C×H×W (the channels share one normaliser, so colour ratios survive).
    """
    kernel = (2 * round(2 * sigma) + 1,) * 2
    from kornia.filters import gaussian_blur2d  # imported on first use: a heavy import

    centred = x - gaussian_blur2d(x, kernel, (sigma, sigma), border_type="replicate")
    var = gaussian_blur2d(centred.square().mean(1, keepdim=True), kernel, (sigma, sigma), border_type="replicate")
    return centred / (var + eps * eps).sqrt()


def _coord_dtype(x: Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _grid_positions(size: tuple[int, int], step: float, like: Tensor) -> Tensor:
    """1×2×h×w level-0 target positions of a grid of spacing ``step``."""
    return (pixel_grid(*size, like.device, _coord_dtype(like)) + 0.5) * step - 0.5


def match_field(
    query: Tensor, keys: Sequence[Tensor], step: int, ref_size: tuple[int, int], chunk_size: int
) -> tuple[Tensor, Matches]:
    """The best key patch of the scale pyramid for every query, as a displacement.

    Args:
        query: B×C×h×w embedding of the target on the match grid (spacing ``step``).
        keys: embeddings of the reference's scale pyramid (B×C×h_i×w_i each).
        step: the match grid's spacing in level-0 target pixels.
        ref_size: (H_r, W_r) of the reference, level 0.
        chunk_size: see :func:`~refsr_blocks.components.aligners.matching.match_patches`.

    Returns:
        (B×2×h×w displacement, in level-0 reference pixels, from each match-grid pixel's
        level-0 target position to its match's reference position; the matches).
    """
    matches = match_patches(query, keys, chunk_size=chunk_size)
    scale, y, x = matches.decode()
    dtype = _coord_dtype(query)
    ratio_y = torch.tensor([ref_size[0] / k.shape[-2] for k in keys], device=y.device, dtype=dtype)[scale]
    ratio_x = torch.tensor([ref_size[1] / k.shape[-1] for k in keys], device=y.device, dtype=dtype)[scale]
    ref_pos = torch.stack(((x + 0.5) * ratio_x, (y + 0.5) * ratio_y), dim=1) - 0.5
    return ref_pos - _grid_positions(tuple(query.shape[-2:]), step, query), matches


def _patch_sum(x: Tensor) -> Tensor:
    """Sum over each pixel's 3×3 neighbourhood (zero outside), B×1×h×w from B×1×h×w."""
    return 9 * F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True)


def refine_field(
    query: Tensor, key: Tensor, field: Tensor, step: int, ref_size: tuple[int, int], radius: int = 2
) -> tuple[Tensor, Tensor]:
    """The field moved to the best 3×3 patch within ``radius`` key pixels (local search).

    The key patch of each candidate is *sampled along the field* (each of its 9 pixels at
    its own target neighbour's field position), so under rotation, zoom or perspective it is
    already turned and rescaled to the query's, which a whole-pixel patch of the scale
    pyramid only approximates. Cost: (2·radius + 1)² samples of the key, no relevance matrix.

    Args:
        query: B×C×h×w embedding of the target on a grid of spacing ``step``.
        key: B×C×h'×w' embedding of the reference at about the same spacing (any size).
        field: B×2×h×w displacement (level-0 reference pixels) at the query's pixels.
        step: the query grid's spacing in level-0 target pixels.
        ref_size: (H_r, W_r) of the reference.
        radius: search radius in key pixels.

    Returns:
        (the B×2×h×w refined field, the B×1×h×w cosine of the chosen patches).
    """
    h, w = query.shape[-2:]
    ratio = field.new_tensor([ref_size[1] / key.shape[-1], ref_size[0] / key.shape[-2]]).view(1, 2, 1, 1)
    base = ((_grid_positions((h, w), step, field) + field + 0.5) / ratio - 0.5).flatten(2)  # key pixels
    q_norm = _patch_sum(query.square().sum(1, keepdim=True))
    best = field.new_full((field.shape[0], 1, h, w), -2.0)
    shift = torch.zeros_like(field)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            offset = base.new_tensor([dx, dy]).view(1, 2, 1)
            k = sample(key, base + offset).unflatten(2, (h, w))
            dot = _patch_sum((query * k).sum(1, keepdim=True))
            score = dot / (q_norm * _patch_sum(k.square().sum(1, keepdim=True))).sqrt().clamp_min(1e-12)
            better = score > best
            best = torch.where(better, score, best)
            shift = torch.where(better, offset.view(1, 2, 1, 1).expand_as(shift), shift)
    return field + shift * ratio, best


def _normalised_blur(field: Tensor, weight: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """Weighted Gaussian average of ``field`` (normalised convolution) and the blurred weight."""
    size = (2 * round(2 * sigma) + 1,) * 2
    from kornia.filters import gaussian_blur2d  # imported on first use: a heavy import

    num = gaussian_blur2d(field * weight, size, (sigma, sigma), border_type="replicate")
    den = gaussian_blur2d(weight, size, (sigma, sigma), border_type="replicate")
    return num / den.clamp_min(1e-6), den


def _fill(field: Tensor, trust: Tensor, sigma: float) -> Tensor:
    """``field`` where ``trust`` is 1, filled elsewhere from trusted values ever farther away.

    Normalised convolutions of the trusted values at σ, and at σ on grids 4 and 16 times
    coarser (a pyramid: a wide reach without wide kernels), then their weighted mean over the
    whole map: an uncovered region (a partial overlap) continues the displacement of its
    covered neighbours, so its field leaves the reference instead of pointing at random.
    """
    size = tuple(field.shape[-2:])
    for factor in (1, 4, 16):
        num, den = field * trust, trust
        if factor > 1:  # (on a map smaller than the factor, one cell: the whole map)
            cells = (-(-size[0] // factor), -(-size[1] // factor))
            num = F.adaptive_avg_pool2d(num, cells)
            den = F.adaptive_avg_pool2d(den, cells)
        spread, den = _normalised_blur(num / den.clamp_min(1e-6), den, sigma)
        if factor > 1:
            spread = F.interpolate(spread, size=size, mode="bilinear", align_corners=False)
            den = F.interpolate(den, size=size, mode="bilinear", align_corners=False)
        field = trust * field + (1 - trust) * spread
        trust = torch.maximum(trust, (4 * den).clamp(max=1))
    total = (field * trust).sum(dim=(-2, -1), keepdim=True) / trust.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-6)
    return trust * field + (1 - trust) * total


def clean_field(
    field: Tensor, weight: Tensor, *, kernel: int = 9, tolerance: float = 8.0, iterations: int = 3
) -> tuple[Tensor, Tensor]:
    """Outlier matches replaced by the consensus of their neighbours; the inlier density.

    A match is an inlier when it lies within ``tolerance`` pixels of the consensus, at first
    the ``kernel``×``kernel`` median of the field (a wrong match is isolated or in a small
    group; the scene's displacement varies smoothly, even under rotation, scale and
    perspective). The inliers, weighted by ``weight``, are spread by a normalised Gaussian
    convolution (σ = (kernel − 1)/4), which averages the quantised (whole match-grid pixel)
    displacements into sub-pixel ones. Where the local density of inliers is low (under 20%
    to 50%: no texture, or a region the reference does not show, whose matches are random),
    the field is filled from the trusted neighbourhood farther out. The result is the next
    consensus (``iterations`` rounds: each admits the inliers the previous one came near).

    On the viewpoint cases of ``benchmarks/match_flow_alignment.py`` (1/4 grid), a 9×9 window
    and three rounds halve the mean error of a single 5×5 round (e.g. rotation 5.8 → 2.7 px).

    Args:
        field: B×2×h×w displacement (level-0 reference pixels).
        weight: B×1×h×w match weight in [0, 1].
        kernel: odd size of the median window (match-grid pixels).
        tolerance: inlier distance to the consensus, in the field's pixels.
        iterations: rounds of inlier selection and spreading.

    Returns:
        (the cleaned B×2×h×w field, the B×1×h×w inlier density of the last round in [0, 1]).
    """
    kernel = min(kernel, 2 * min(field.shape[-2:]) - 1)  # the median pads by reflection
    from kornia.filters import median_blur  # imported on first use: a heavy import

    consensus = median_blur(field, kernel)
    weight = weight.clamp(0, 1)
    sigma = max(0.5, (kernel - 1) / 4)
    density = torch.zeros_like(weight)
    for _ in range(iterations):
        inlier = ((field - consensus).norm(dim=1, keepdim=True) <= tolerance).to(field.dtype)
        spread, density = _normalised_blur(field, weight * inlier, sigma)
        consensus = _fill(spread, ((density - 0.2) / 0.3).clamp(0, 1), sigma)
    return consensus, density.clamp(0, 1)


def map_at(x: Tensor, step: int, size: tuple[int, int], level: int) -> Tensor:
    """A map on a grid of spacing ``step`` read at the pixels of pyramid level ``level``.

    Args:
        x: B×C×h×w, pixel ``i`` at ``(i + 0.5)·step − 0.5`` of the level-0 target.
        step: its spacing in level-0 pixels.
        size: (H_k, W_k) of level ``level`` (pixel ``i`` at ``(i + 0.5)·2^k − 0.5``).
        level: k.

    Returns:
        B×C×H_k×W_k (bilinear, the border replicated).
    """
    points = (_grid_positions(size, 2.0**level, x) + 0.5) / step - 0.5  # on x's grid
    return sample(x, points.flatten(2).expand(x.shape[0], -1, -1)).unflatten(2, size)


def field_at(field: Tensor, step: int, size: tuple[int, int], level: int) -> Tensor:
    """A field (level-0 pixels, grid of spacing ``step``) at the pixels of level ``level``, in its units.

    A displacement of ``d`` level-0 pixels is ``d / 2^k`` level-k pixels of the target and of
    the reference alike (both pyramids halve their pixel grid per level). Arguments as
    :func:`map_at`; returns B×2×H_k×W_k.
    """
    return map_at(field, step, size, level) / 2.0**level
