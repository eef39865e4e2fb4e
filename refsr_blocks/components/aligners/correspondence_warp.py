"""A correspondence network (kind ``correspondence``) as an aligner: each level warped along its matches.

The correspondence (C2-Matching's contrastive one by default) matches the target image
against K references of any size on a grid a quarter of the target's; every level of the
reference pyramids is then warped along it (bilinear, zero outside the reference), each
pixel from the reference its patch matched. It lets any architecture with an aligner slot
(CrossNet's fusion decoder, TTSR's texture fusion) use that correspondence.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ...core.registry import register_component
from ...core.support import Support
from ...ops.flow import resize_flow
from ...ops.sample import inside_of, warp_from
from ..conventions import usual_bounds
from .base import Aligner, AlignerInputs
from .flow_warp import _part

__all__ = ["CorrespondenceWarpAligner"]


@register_component("aligner", "correspondence_warp")
class CorrespondenceWarpAligner(Aligner):
    """Reference features warped along a correspondence network's matches, level by level.

    Args:
        correspondence: a registered correspondence's name (or a built module).
        correspondence_params: its parameters (when named here).
        in_channels: image channels.
        weight_by_confidence: multiply the aligned features by the match's confidence.

    Shapes: see :mod:`~refsr_blocks.components.aligners.base`. Outputs: ``aligned`` and
    ``confidence`` (the matched patches' cosine, clipped to [0, 1]) per level; ``flows`` per
    level (B×2×H_k×W_k, into the matched reference's level-k pixels); ``correspondence``
    (B×2×h×w on the match grid) and ``reference`` (B×1×h×w, which reference).
    """

    # Measured by the aligner contracts (fp32/fp64); bf16, ONNX and torch.export: not tried.
    SUPPORT = Support(dtypes=("fp32",), onnx=False, torch_export=False, notes="bf16, ONNX, torch.export not tried")

    PARAM_BOUNDS = usual_bounds("in_channels")

    needs_images = True

    def __init__(
        self,
        correspondence: Any = "c2_contrastive",
        correspondence_params: dict[str, Any] | None = None,
        in_channels: int = 3,
        weight_by_confidence: bool = False,
    ) -> None:
        super().__init__()
        if correspondence_params and not isinstance(correspondence, str):
            raise ValueError("correspondence_params configure a correspondence named here, not a built one")
        params = {"in_channels": in_channels, **(correspondence_params or {})}
        self.correspondence = _part("correspondence", correspondence, params)
        self.weight_by_confidence = weight_by_confidence

    def align(self, x: AlignerInputs) -> dict[str, Any]:
        target, refs = x.images()
        corr = self.correspondence(target, list(refs))
        score = corr.score.clamp(0, 1).to(x.target_feats[0].dtype)
        aligned, confidence, flows = [], [], []
        for k, t in enumerate(x.target_feats):
            size = tuple(t.shape[-2:])
            flow = resize_flow(corr.flow, size)
            chosen = F.interpolate(corr.reference.float(), size=size, mode="nearest")
            out = None
            for r, pyramid in enumerate(x.ref_feats):
                feats = pyramid[k]
                warped = warp_from(feats, flow) * inside_of(flow, tuple(feats.shape[-2:]), -1.0).to(feats.dtype)
                out = warped * (chosen == r) if out is None else torch.where(chosen == r, warped, out)
            conf = F.interpolate(score, size=size, mode="bilinear", align_corners=False)
            aligned.append(out * conf if self.weight_by_confidence else out)
            confidence.append(conf)
            flows.append(flow)
        return {
            "aligned": aligned,
            "confidence": confidence,
            "flows": flows,
            "correspondence": corr.flow,
            "reference": corr.reference,
        }
