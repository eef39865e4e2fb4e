"""Attention transfer (TTSR's hard and soft attention) as an aligner."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F

from ...core.errors import InputError
from ...core.registry import register_component
from ...core.support import Support
from ..conventions import usual_bounds
from .base import Aligner, AlignerInputs
from .matching import Matches, match_patches, relevance, transfer

__all__ = ["AttentionAligner"]


def _coarser(matches: Matches, step: int, sizes: Sequence[tuple[int, int]]) -> Matches:
    """The matches of every ``step``-th query, moved to a level ``step`` times coarser."""
    ref, y, x = matches.decode(matches.index[:, ::step, ::step])
    heights = ref.new_tensor([h for h, _ in sizes])[ref]
    widths = ref.new_tensor([w for _, w in sizes])[ref]
    starts, offsets = [], 0
    for h, w in sizes:
        starts.append(offsets)
        offsets += h * w
    start = ref.new_tensor(starts)[ref]
    y = (y // step).minimum(heights - 1)
    x = (x // step).minimum(widths - 1)
    return Matches(start + y * widths + x, tuple(sizes), tuple(starts))


@register_component("aligner", "attention")
class AttentionAligner(Aligner):
    """Hard attention transfers the most relevant reference patch; soft attention weighs it.

    Relevance is the cosine similarity of 3×3 feature patches at ``match_level`` (TTSR's
    relevance embedding), matched jointly over all references, in blocks of at most
    ``chunk_size`` positions (see :mod:`~refsr_blocks.components.aligners.matching`). The
    matched patch is copied at every finer level (patch and stride scaled by 2 per level);
    coarser levels take every 2^j-th match, moved down. References may have any size and
    number; matching never forms the full relevance matrix.

    Args:
        match_level: the pyramid level to match at; negative counts from the coarsest (-1,
            the default: the coarsest given, the LR grid in TTSR's three-level pyramid at ×4;
            CrossNet's four-level pyramid at ×4 matches at 2, a quarter of the target grid).
        chunk_size: most query, and reference, positions per relevance block; the block,
            the largest temporary, holds at most ``chunk_size × max(chunk_size, width of
            the reference key map)`` values.
        weight_by_confidence: multiply each aligned level by its soft attention (TTSR
            applies it in the fusion network instead, so its aligner leaves this off).
        divide_by_nine: average the overlapping transferred windows by 9 everywhere, as the
            TTSR authors' ``fold(...) / 9`` (border pixels, covered by fewer windows, come out
            dimmer; their released weights were trained so), rather than by the windows there.

    Shapes: see :mod:`~refsr_blocks.components.aligners.base`; ``confidence`` per level is the
    relevance S ∈ [-1, 1] (bicubically resized to finer levels, averaged to coarser ones);
    ``index`` is the B×h×w matched position in the joint pool.
    """

    SUPPORT = Support(
        dtypes=("fp32", "bf16"),
        onnx=True,
        torch_export=True,
        notes="bf16: near-tied matches may differ; fp16: patch norms overflow (NaN)",
    )

    # match_level: any level of a pyramid of up to 8 (the encoders' scales), from either end.
    # chunk_size only caps the relevance block (never more than the positions there are);
    # 10**9 is "one block" (TTSR's unchunked matching, benchmarks/attention_memory.py --unchunked).
    PARAM_BOUNDS = usual_bounds("chunk_size", match_level=(-8, 7))

    def __init__(
        self,
        match_level: int = -1,
        chunk_size: int = 4096,
        weight_by_confidence: bool = False,
        divide_by_nine: bool = False,
    ) -> None:
        super().__init__()
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.match_level = match_level
        self.chunk_size = chunk_size
        self.weight_by_confidence = weight_by_confidence
        self.divide_by_nine = divide_by_nine

    def align(self, x: AlignerInputs) -> dict[str, Any]:
        target_feats, ref_feats = x.target_feats, x.ref_feats
        levels = len(target_feats)
        m = self.match_level if self.match_level >= 0 else levels + self.match_level
        if not 0 <= m < levels:
            raise InputError(f"match_level {self.match_level} is outside the {levels} levels given")
        keys = [pyr[m] for pyr in (x.key_feats if x.key_feats is not None else ref_feats)]
        query = target_feats[m]
        if any(k.shape[1] != query.shape[1] for k in keys):
            raise InputError(
                f"attention matches at level {m} in one embedding: the target has {query.shape[1]} channels "
                f"there, the reference keys {[k.shape[1] for k in keys]}"
            )
        matches = match_patches(query, keys, chunk_size=self.chunk_size)
        soft = relevance(query, keys, matches)  # B×1×h×w
        aligned, confidence = [], []
        for k, t in enumerate(target_feats):
            size = tuple(t.shape[-2:])
            values = [pyr[k] for pyr in ref_feats]
            if k <= m:
                out = transfer(values, matches, 2 ** (m - k), size, divide_by_nine=self.divide_by_nine)  # type: ignore[arg-type]
                conf = soft if k == m else F.interpolate(soft, size=size, mode="bicubic", align_corners=False)
            else:
                step = 2 ** (k - m)
                coarse = _coarser(matches, step, [tuple(v.shape[-2:]) for v in values])
                out = transfer(values, coarse, 1, size, divide_by_nine=self.divide_by_nine)  # type: ignore[arg-type]
                conf = F.adaptive_avg_pool2d(soft, size)
            if self.weight_by_confidence:
                out = out * conf
            aligned.append(out)
            confidence.append(conf)
        return {"aligned": aligned, "confidence": confidence, "index": matches.index}
