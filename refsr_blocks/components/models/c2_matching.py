"""C2-Matching (Jiang et al., "Robust Reference-based Super-Resolution via C2-Matching", CVPR 2021)
assembled from registered parts.

Pipeline, for an LR image ``lr`` (B×C×h×w) and K ≥ 1 references of any size:

1. the upsampler (bicubic) gives ``LR↑`` (B×C×sh×sw), the image matched against the references;
2. the correspondence (``c2_contrastive``: contrastive VGG16-layout features, 3×3 cosine
   patch matching, chunked, joint over the references) finds every LR-grid pixel in the
   references; its features are a quarter of the image's resolution, so at ×2 and ×8 the
   images it sees are resized by 4/s first (at ×4, the authors' factor, they are not);
3. the texture extractor (``ttsr_lte``: VGG19's layers up to relu1_1, relu2_1, relu3_1,
   ImageNet weights in the authors' code) encodes each reference at its own size;
4. the restoration network (``c2_dynamic_aggregation``) aggregates the textures with
   modulated deformable convolutions placed by the correspondence, level by level, and
   returns the image (added to the bilinearly upsampled LR).

The authors' test code pads the LR's ground truth and the reference with zeros to one size
(their matching decodes reference positions with the LR's width, and their deformable
convolution needs both on one grid). Here nothing is padded: each reference is matched and
sampled at its own size, and several references are matched jointly. With a reference of
the ground truth's size the two agree (tests/interop/test_c2_matching.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ...core.build import instantiate
from ...core.spec import Architecture, GlobalParam, Slot, in_range, register_preset
from ...ops.flow import resize_flow
from ...ops.references import model_inputs
from ..conventions import register_architecture
from .ttsr import TTSR_ARCHITECTURE, texture_parts

__all__ = ["C2Matching"]


def _resized(image: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(image.shape[-2:]) == size:
        return image
    shrink = size[0] < image.shape[-2]
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=shrink).clamp(0, 1)


class C2Matching(nn.Module):
    """The C2-Matching network; build it with ``build_model("c2_matching")``.

    Args:
        upsampler: makes ``LR↑``.
        correspondence: a correspondence network (kind ``correspondence``).
        extractor: the reference texture extractor (an encoder with log2(s) + 1 levels).
        restoration: a restoration network (kind ``restoration``).
        upscale: s (2, 4 or 8).
        image_channels: channels of lr, references and output.
    """

    def __init__(
        self,
        upsampler: nn.Module,
        correspondence: nn.Module,
        extractor: nn.Module,
        restoration: nn.Module,
        *,
        upscale: int,
        image_channels: int = 3,
    ) -> None:
        super().__init__()
        self.upsampler, self.correspondence = upsampler, correspondence
        self.extractor, self.restoration = extractor, restoration
        self.upscale, self.image_channels = upscale, image_channels
        self.spec: dict[str, Any] = {}

    @property
    def aligner(self) -> nn.Module:
        """The part that finds the references (the inference tiler asks it whether any size is taken)."""
        return self.correspondence

    def forward(self, lr: Tensor, ref: Tensor | Sequence[Tensor]) -> Tensor:
        """The B×C×(s·h)×(s·w) result for ``lr`` (B×C×h×w in [0, 1]) and ``ref`` (one B×C×H×W
        reference or a list of K, any sizes, matched jointly)."""
        return self._run(lr, ref)["sr"]

    def forward_intermediates(self, lr: Tensor, ref: Tensor | Sequence[Tensor]) -> dict[str, Any]:
        """Everything the forward pass computes, by name.

        Returns:
            ``sr`` and ``upsampled`` (B×C×sh×sw); ``correspondence`` (B×2×h×w, the match of
            each LR-grid pixel in its reference's grid, a quarter of that reference's size at
            ×4) and ``reference`` (B×1×h×w, which reference); ``flows`` (per level, finest
            first, B×2×H_k×W_k: the correspondence as a flow into the matched reference's
            level-k pixels; level 0 into the reference image); ``confidence`` (per level,
            B×1×H_k×W_k: the cosine similarity of the matched patches, clipped to [0, 1]; the
            authors compute it and do not use it).
        """
        out = self._run(lr, ref)
        corr = out.pop("corr")
        sizes = out.pop("sizes")
        flows = [resize_flow(corr.flow, size) for size in sizes]
        score = corr.score.clamp(0, 1)
        confidence = [score if s == tuple(score.shape[-2:]) else F.interpolate(score, size=s) for s in sizes]
        return {
            **out,
            "correspondence": corr.flow,
            "reference": corr.reference,
            "flows": flows,
            "confidence": confidence,
        }

    def _run(self, lr: Tensor, ref: Tensor | Sequence[Tensor]) -> dict[str, Any]:
        lr, refs = model_inputs(self, lr, ref)
        up = self.upsampler(lr)
        h, w = lr.shape[-2:]
        stride = int(getattr(self.correspondence, "stride", self.upscale))
        if stride == self.upscale:
            query, keys = up, refs
        else:  # the correspondence's grid must be the LR grid
            ratio = stride / self.upscale
            query = _resized(up, (h * stride, w * stride))
            keys = [_resized(r, (max(1, round(r.shape[-2] * ratio)), max(1, round(r.shape[-1] * ratio)))) for r in refs]
        corr = self.correspondence(query, keys)
        textures = [self.extractor(r) for r in refs]
        sr = self.restoration(lr, textures, corr)
        sizes = [((h * self.upscale) >> k, (w * self.upscale) >> k) for k in range(len(textures[0]))]
        return {"sr": sr, "upsampled": up, "corr": corr, "sizes": sizes}


def build_c2_matching(spec: dict[str, Any]) -> C2Matching:
    """Assemble :class:`C2Matching` from a resolved spec."""
    parts, channels = texture_parts(spec)
    return C2Matching(
        **parts,
        correspondence=instantiate(spec, "correspondence"),
        restoration=instantiate(spec, "restoration", texture_channels=channels),
    )


C2_MATCHING_ARCHITECTURE = register_architecture(
    Architecture(
        name="c2_matching",
        doc="C2-Matching: contrastive correspondence over K references, VGG19 textures, dynamic aggregation.",
        params={  # the factor, the images and LR↑ as in TTSR
            "upscale": TTSR_ARCHITECTURE.params["upscale"],
            "channels": GlobalParam(64, in_range(2, 1024), "feature channels of the restoration network"),
            "image_channels": TTSR_ARCHITECTURE.params["image_channels"],
        },
        slots={
            "upsampler": TTSR_ARCHITECTURE.slots["upsampler"],
            "correspondence": Slot(
                "correspondence",
                "c2_contrastive",
                {"in_channels": "image_channels"},
                doc="where each LR-grid pixel is found in the references",
            ),
            "extractor": replace(  # built by texture_parts, as TTSR's
                TTSR_ARCHITECTURE.slots["extractor"], doc="reference textures (VGG19 relu1_1, relu2_1, relu3_1 at ×4)"
            ),
            "restoration": replace(  # wired as TTSR's fusion: textures per level, the factor, the channels
                TTSR_ARCHITECTURE.slots["fusion"],
                kind="restoration",
                default="c2_dynamic_aggregation",
                doc="dynamic aggregation and restoration, coarse to fine",
            ),
        },
        build=build_c2_matching,
    ),
)

register_preset(
    "c2_matching",
    {"model": "c2_matching"},
    "C2-Matching as released (×4): contrastive correspondence, VGG19 textures, 64 channels, 16 blocks per stage",
)
#: The ``c2_matching_small`` preset; ``datsr_small`` is it with another restoration.
C2_MATCHING_SMALL: dict[str, Any] = {
    "model": "c2_matching",
    "params": {"channels": 16},
    "components": {
        "correspondence": {"name": "c2_contrastive", "params": {"channels": 8}},
        "extractor": {"name": "ttsr_lte", "params": {"channels": 8}},
        "restoration": {"name": "c2_dynamic_aggregation", "params": {"blocks": 2, "offset_groups": 2}},
    },
}
register_preset(
    "c2_matching_small",
    C2_MATCHING_SMALL,
    "A small C2-Matching for CPU training and tests: 8-channel extractors, 16 channels, 2 blocks per stage",
)
