"""Global matching, then local flow: an aligner that finds the reference wherever it is.

Flow estimation (``flow_warp``) is precise but local: it loses a reference seen from another
viewpoint (rotation, scale, perspective, large 2-D shifts). Attention (``attention``) finds
such a reference but copies whole patches. ``match_flow`` chains the two: a global
correspondence over the whole reference (scale-space patch matching, cleaned of outliers,
see :mod:`~refsr_blocks.components.aligners.correspondence`) pre-warps the reference onto
the target, and the flow estimator only resolves the small residual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...core.registry import register_component
from ...ops.flow import resize_flow
from ...ops.sample import inside_of, warp_from
from ...ops.warp import backward_warp
from ..conventions import SAMPLING_SUPPORT, usual_bounds
from .base import Aligner, AlignerInputs
from .correspondence import (
    clean_field,
    contrast_embedding,
    field_at,
    key_image,
    map_at,
    match_field,
    match_inputs,
    query_image,
    refine_field,
)
from .flow_warp import _part
from .matching import relevance

__all__ = ["MatchFlowAligner"]

#: Logit of a pixel whose reference position is outside the reference (confidence 0).
_OUTSIDE = -30.0


class _ConfidenceHead(nn.Module):
    """Confidence logits from [relevance, inlier density, photometric error, inside] at level 0.

    A linear prior (initialised by hand so that an untrained aligner already trusts good
    matches and distrusts bad ones) plus a small conv correction that starts at zero.
    """

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.prior = nn.Conv2d(4, 1, 1)
        with torch.no_grad():
            # Measured on the viewpoint cases (benchmarks/match_flow_alignment.py): true matches have
            # an inlier density 0.5-0.95 and an error ≈ 0.02; a region the reference does not show,
            # or another scene, 0.02-0.3 and 0.1-0.27. The relevance (0.92-0.98 either way: the
            # best of many patches) barely tells them apart untrained.
            self.prior.weight.copy_(torch.tensor([1.0, 6.0, -30.0, 0.0]).view(1, 4, 1, 1))
            self.prior.bias.fill_(-1.0)
        self.correction = nn.Sequential(
            nn.Conv2d(4, hidden, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(hidden, 1, 3, padding=1)
        )
        nn.init.zeros_(self.correction[-1].weight)
        nn.init.zeros_(self.correction[-1].bias)

    def forward(self, cues: Tensor) -> Tensor:
        return self.prior(cues) + self.correction(cues)


def _conv_of_pair(conv: nn.Conv2d, first: Tensor, second: Tensor) -> Tensor:
    """``conv(torch.cat([first, second], 1))`` for a 1×1 ``conv``, as two convolutions: the
    concatenation would copy two full-resolution feature maps, which costs more than the
    convolution itself. B×C₁×H×W and B×C₂×H×W → B×C_out×H×W."""
    split = first.shape[1]
    return F.conv2d(first, conv.weight[:, :split], conv.bias) + F.conv2d(second, conv.weight[:, split:])


@register_component("aligner", "match_flow")
class MatchFlowAligner(Aligner):
    """Scale-space patch matching over each whole reference, a robust dense field, then flow.

    Per reference: (1) the target (the upsampled LR image) on a match grid ``2^match_level``
    times coarser, and the reference at the LR's bandwidth (``Ref↓``) at the scales
    ``ref_scales``, are embedded (local contrast normalisation, plus a learned conv embedding
    with ``embed_channels``) and matched, 3×3 patches by cosine similarity, chunked and joint
    over the scales (:func:`~refsr_blocks.components.aligners.matching.match_patches`); (2) the
    matches become a displacement into the reference's own pixel grid, outliers replaced by a
    local consensus (median, inlier-weighted normalised convolution, regions without inliers
    filled from their surroundings); (3) on ``refine_levels`` grids, each twice as fine, a
    local search (±2 pixels, patches sampled along the field) and a new consensus refine it;
    (4) the reference image, pre-warped by the field, goes to the flow estimator with the
    target, and its residual is composed with the field (``f_k(p) = r_k(p) + c_k(p + r_k(p))``)
    so each level's flow points into the original reference, whose features are warped at
    their own size; (5) a confidence per pixel and level (sigmoid of a head over the match
    relevance, the inlier density, the photometric error of the warped ``Ref↓↑`` and a feature
    term), zero where the flow leaves the reference. K references are combined per pixel by a
    softmax over their confidence logits.

    Args:
        flow, warper, prealign: the flow estimator (a built module or a registered name, as in
            ``flow_warp``); ``warper`` and ``prealign`` are accepted for CrossNet's slots and
            unused (the warp reads a reference of any size, the match replaces the global shift).
        scales: pyramid levels (of a flow estimator named here).
        in_channels: image channels.
        lr_channels, ref_channels: the encoders' channels per level (the confidence head's
            feature term); ``None``: no feature term.
        match_level: the global match grid is ``1/2^match_level`` of the target (3: an eighth).
        refine_levels: finer grids (each twice as fine) on which the field is refined by a
            local search (1: the global match at 1/8, refined at 1/4).
        upscale: the LR's reduction factor (the reference is blurred to that bandwidth; set 8
            for a ×8 model).
        ref_scales: reference scale factors searched (how much larger the reference's content
            is drawn: 0.5-2 covers references zoomed by 0.6-1.6× with margin).
        embed_channels: channels of a learned embedding added to the parameter-free one (0: none).
        chunk_size: most query and key positions per relevance block (its few embedding
            channels make the match memory-bound: blocks that stay in the CPU's cache are
            faster, ``benchmarks/match_flow_alignment.py --timing``).
        consensus: median window (match-grid pixels) of the outlier rejection.
        weight_by_confidence: multiply the aligned features by the confidence.
        flow_params: parameters of a flow estimator named here.

    Memory: the largest temporary of the global match is a ``B × chunk × max(chunk, w_key)``
    float block, ``w_key = round(W_r · max(ref_scales) / 2^match_level)`` (the widest key
    map), beside the ``B × 9·C_e × H·W/4^match_level`` unfolded query (C_e = 3 +
    embed_channels); the local search holds a few ``B × C_e × H·W/4^(match_level − j)`` maps;
    the rest is O(B·C·H·W) per level (the warped features, the pre-warped image, the flow
    estimator's activations), never the ``H·W × H_r·W_r`` relevance matrix.

    Shapes: ``target`` B×C×H×W with ``target_feats[k]`` at ceil(H/2^k); each reference
    B×C×H_r×W_r of any size with ``ref_feats[r][k]`` at ceil(H_r/2^k). Outputs: ``aligned``
    and ``confidence`` (B×1×H_k×W_k in [0, 1]) per level; ``flows`` (per level, B×2×H_k×W_k,
    into the reference with the highest mean confidence, in its level-k pixels);
    ``correspondence`` (that reference's field before the flow, B×2×h×w in level-0 pixels on
    the finest match grid, spacing ``2^(match_level − refine_levels)``); ``reference`` (B, its
    index).
    """

    # Measured by benchmarks/match_flow_alignment.py --export: torch.export traces (fixed
    # sizes); bf16 autocast moves the flow by 0.46 px on average (EPE 1.31 → 1.44 px on a 10°
    # rotation), the matching itself runs in fp32. ONNX: not tried.
    SUPPORT = replace(
        SAMPLING_SUPPORT, notes="bf16: matching in fp32, flow within ~0.5 px of fp32; ONNX not tried; fp16 not checked"
    )

    PARAM_BOUNDS = usual_bounds(
        "scales in_channels chunk_size",
        match_level=(0, 5),
        refine_levels=(0, 5),
        upscale=(1, 16),
        embed_channels=(0, 256),
        consensus=(1, 15),
    )

    grid_bound = False
    needs_images = True

    def __init__(
        self,
        flow: Any = "flownets_plus",
        warper: Any = None,
        prealign: Any = None,
        scales: int = 4,
        in_channels: int = 3,
        lr_channels: Sequence[int] | None = None,
        ref_channels: Sequence[int] | None = None,
        match_level: int = 3,
        refine_levels: int = 1,
        upscale: int = 4,
        ref_scales: Sequence[float] = (0.5, 0.71, 1.0, 1.41, 2.0),
        embed_channels: int = 0,
        chunk_size: int = 1024,
        consensus: int = 9,
        weight_by_confidence: bool = True,
        flow_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if flow_params and isinstance(flow, nn.Module):
            raise ValueError("flow_params configure a flow estimator named here, not a built one")
        if not 0 <= refine_levels <= match_level:
            raise ValueError(f"refine_levels must be in [0, match_level = {match_level}], got {refine_levels}")
        if consensus % 2 == 0:
            raise ValueError(f"consensus must be odd, got {consensus}")
        if not ref_scales or any(s <= 0 for s in ref_scales):
            raise ValueError(f"ref_scales must be positive factors, got {ref_scales}")
        self.flow = _part("flow", flow, {"scales": scales, "in_channels": in_channels, **(flow_params or {})})
        self.match_level, self.refine_levels, self.upscale = match_level, refine_levels, upscale
        self.ref_scales = tuple(float(s) for s in ref_scales)
        self.chunk_size, self.consensus = chunk_size, consensus
        self.weight_by_confidence = weight_by_confidence
        self.embed = (
            nn.Sequential(
                nn.Conv2d(in_channels, embed_channels, 3, padding=1),
                nn.LeakyReLU(0.1),
                nn.Conv2d(embed_channels, embed_channels, 3, padding=1),
            )
            if embed_channels
            else None
        )
        self.head = _ConfidenceHead()
        self.feature_terms = (
            nn.ModuleList(nn.Conv2d(c + r, 1, 1) for c, r in zip(lr_channels, ref_channels))
            if lr_channels and ref_channels
            else None
        )
        for term in self.feature_terms or ():
            nn.init.zeros_(term.weight)  # starts at the image cues' confidence
            nn.init.zeros_(term.bias)

    # -- the coarse stage -----------------------------------------------------------------
    def embedding(self, x: Tensor) -> Tensor:
        """The matching embedding: local contrast (+ learned channels), B×(C + embed_channels)×h×w."""
        base = contrast_embedding(x)
        return base if self.embed is None else torch.cat([base, self.embed(base)], dim=1)

    def correspond(self, target: Tensor, ref: Tensor) -> tuple[Tensor, int, Tensor, Tensor]:
        """The field into ``ref``: global match, consensus, local refinement on finer grids.

        Returns:
            (B×2×h×w field in level-0 reference pixels on the finest match grid, that grid's
            spacing ``2^(match_level − refine_levels)``, the B×1×H×W relevance of the global
            match (differentiable in the learned embedding) and the B×1×H×W inlier density of
            the last consensus, both at level 0).
        """
        size0 = tuple(target.shape[-2:])
        ref_size = tuple(ref.shape[-2:])
        step = 2**self.match_level
        query_img, key_imgs = match_inputs(target, ref, step=step, upscale=self.upscale, ref_scales=self.ref_scales)
        query = self.embedding(query_img)
        keys = [self.embedding(k) for k in key_imgs]
        with torch.no_grad():  # a hard choice: no gradient, as in TTSR
            raw, matches = match_field(query.float(), [k.float() for k in keys], step, ref_size, self.chunk_size)
        rel = relevance(query, keys, matches)
        with torch.no_grad():
            field, density = clean_field(raw, rel.detach().float(), kernel=self.consensus, tolerance=2.0 * step)
            for level in range(self.match_level - 1, self.match_level - self.refine_levels - 1, -1):
                fine = 2**level
                q = self.embedding(query_image(target, fine)).float()
                k = self.embedding(key_image(ref, self.upscale, 1.0 / fine)).float()
                field = map_at(field, step, tuple(q.shape[-2:]), level)
                raw, score = refine_field(q, k, field, fine, ref_size)
                field, density = clean_field(raw, score.clamp(0, 1), kernel=self.consensus, tolerance=2.0 * fine)
                step = fine
        return field.to(target.dtype), step, map_at(rel, 2**self.match_level, size0, 0), map_at(density, step, size0, 0)

    # -- one reference --------------------------------------------------------------------
    def _align_one(
        self, target_feats: Sequence[Tensor], feats: Sequence[Tensor], target: Tensor, ref: Tensor
    ) -> dict[str, Any]:
        """Flows, aligned features and confidence logits of one reference, per level."""
        size0 = tuple(target.shape[-2:])
        sizes = [tuple(t.shape[-2:]) for t in target_feats]
        coarse, step, rel, density = self.correspond(target, ref)
        pre = field_at(coarse, step, size0, 0)
        residual = self.flow(target, warp_from(ref, pre))
        flows = []
        for k, size in enumerate(sizes):
            r = residual[k] if k < len(residual) else resize_flow(residual[-1], size)
            r = r if tuple(r.shape[-2:]) == size else resize_flow(r, size)
            c = field_at(coarse, step, size, k)
            flows.append(r + backward_warp(c, r))  # the coarse field where the residual lands
        aligned = [warp_from(f, flow) for f, flow in zip(feats, flows)]
        logits = self._logits(target, ref, target_feats, aligned, flows, feats, rel, density)
        return {"flows": flows, "aligned": aligned, "logits": logits, "correspondence": coarse}

    def _logits(
        self,
        target: Tensor,
        ref: Tensor,
        target_feats: Sequence[Tensor],
        aligned: Sequence[Tensor],
        flows: Sequence[Tensor],
        feats: Sequence[Tensor],
        rel: Tensor,
        density: Tensor,
    ) -> list[Tensor]:
        """Confidence logits per level; ``_OUTSIDE`` where the flow leaves the reference."""
        size0 = tuple(target.shape[-2:])
        low = key_image(ref, self.upscale, 1.0)  # Ref↓↑: the LR's bandwidth
        error = (target - warp_from(low, resize_flow(flows[0], size0))).abs().mean(1, keepdim=True)
        from kornia.filters import gaussian_blur2d  # imported on first use: a heavy import

        error = gaussian_blur2d(error, (5, 5), (1.5, 1.5), border_type="replicate")
        inside0 = inside_of(resize_flow(flows[0], size0), tuple(ref.shape[-2:])).to(target.dtype)
        cues = torch.cat([rel, density, error, inside0], dim=1)
        base = self.head(cues)
        logits = []
        for k, (t, a, flow, f) in enumerate(zip(target_feats, aligned, flows, feats)):
            size = tuple(t.shape[-2:])
            logit = base if k == 0 else F.adaptive_avg_pool2d(base, size)
            if self.feature_terms is not None and k < len(self.feature_terms):
                logit = logit + _conv_of_pair(self.feature_terms[k], t, a)
            inside = inside_of(flow, tuple(f.shape[-2:]))
            logits.append(logit.masked_fill(~inside, _OUTSIDE))
        return logits

    def align(self, x: AlignerInputs) -> dict[str, Any]:
        target, refs = x.images()
        levels = len(x.target_feats)
        per_ref = [self._align_one(x.target_feats, feats, target, ref) for feats, ref in zip(x.ref_feats, refs)]
        aligned, confidence = [], []
        for k in range(levels):
            logits = torch.stack([p["logits"][k] for p in per_ref])  # K×B×1×H×W
            weights = logits.softmax(dim=0)
            conf = (weights * logits.sigmoid()).sum(0)
            out = sum(w * p["aligned"][k] for w, p in zip(weights, per_ref))
            aligned.append(out * conf if self.weight_by_confidence else out)
            confidence.append(conf)
        best = torch.stack([p["logits"][0].sigmoid().mean(dim=(1, 2, 3)) for p in per_ref]).argmax(0)  # B
        pick = lambda key, k=None: torch.stack(  # noqa: E731
            [p[key] if k is None else p[key][k] for p in per_ref], 1
        )[torch.arange(best.shape[0], device=best.device), best]
        flows = [pick("flows", k) for k in range(levels)]
        return {
            "aligned": aligned,
            "confidence": confidence,
            "flows": flows,
            "correspondence": pick("correspondence"),
            "reference": best,
        }
