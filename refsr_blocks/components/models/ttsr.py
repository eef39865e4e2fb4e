"""A TTSR-style RefSR network (Yang et al., "Learning Texture Transformer Network for Image
Super-Resolution", CVPR 2020) assembled from registered parts.

Pipeline, for an LR image ``lr`` (B×C×h×w) and K ≥ 1 references of any size:

1. the upsampler (bicubic in the paper) gives ``LR↑`` (B×C×sh×sw), the query image;
2. the texture extractor (``ttsr_lte``, VGG19's first layers, learned) encodes ``LR↑`` (Q),
   each reference (V, the textures) and, for matching, each reference degraded by ``↓s↑s``
   bicubic (K), so that both sides of the relevance embedding carry the same blur;
3. the aligner (``attention``: hard attention picks, for every 3×3 patch of Q on the LR
   grid, the most relevant patch of all K references jointly, soft attention is its
   relevance) transfers V's textures at every level (L = log2 s + 1 levels; three at ×4);
4. the texture fusion network (``ttsr_csfi``) fuses them at each scale, weighted by the
   soft attention, with cross-scale feature integration, and outputs the image
   (``residual=True`` adds it to ``LR↑``).

Any aligner fits the slot: ``flow_warp`` or ``deformable`` (one reference, brought onto the
output grid by ``ref_policy``) give TTSR's fusion with flow or deformable alignment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ...core.build import instantiate
from ...core.errors import InputError
from ...core.spec import BUILT, Architecture, GlobalParam, Slot, in_range, one_of, register_preset
from ...ops.references import REF_POLICIES, fit_reference, model_inputs
from ..conventions import pyramid_channels, register_architecture

__all__ = ["TTSR", "degrade_reference"]


def degrade_reference(ref: Tensor, scale: int) -> Tensor:
    """``Ref↓↑``: bicubic down by ``scale`` (antialiased) and back up to the reference's own size."""
    h, w = ref.shape[-2:]
    small = F.interpolate(
        ref,
        size=(max(1, round(h / scale)), max(1, round(w / scale))),
        mode="bicubic",
        align_corners=False,
        antialias=True,
    )
    return F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)


class TTSR(nn.Module):
    """The TTSR-style network; build it with ``build_model("ttsr")``.

    Args:
        upsampler: makes ``LR↑`` (the query image, and the residual base).
        extractor: the texture extractor (an encoder with L levels).
        aligner: any aligner (attention by default).
        fusion: a texture fusion network.
        upscale: s (a power of two).
        image_channels: channels of lr, references and output.
        residual: add the fusion output to ``LR↑``.
        ref_policy: how a grid-bound aligner's reference is brought to the output size.
        degrade_keys: match against ``Ref↓↑`` (TTSR) rather than the reference itself.
    """

    def __init__(
        self,
        upsampler: nn.Module,
        extractor: nn.Module,
        aligner: nn.Module,
        fusion: nn.Module,
        *,
        upscale: int,
        image_channels: int = 3,
        residual: bool = False,
        ref_policy: str = "resize",
        degrade_keys: bool = True,
    ) -> None:
        super().__init__()
        self.upsampler = upsampler
        self.extractor = extractor
        self.aligner = aligner
        self.fusion = fusion
        self.upscale = upscale
        self.levels = int(math.log2(upscale)) + 1
        self.image_channels = image_channels
        self.residual = residual
        self.ref_policy = ref_policy
        self.degrade_keys = degrade_keys
        self.spec: dict[str, Any] = {}

    def forward(self, lr: Tensor, ref: Tensor | Sequence[Tensor]) -> Tensor:
        """Super-resolve ``lr`` with one reference or a list of references.

        Args:
            lr: B×C×h×w in [0, 1].
            ref: B×C×H×W, or a list of K such tensors; any sizes.

        Returns:
            B×C×(s·h)×(s·w).
        """
        return self._run(lr, ref, sr_textures=False)["sr"]

    def forward_intermediates(self, lr: Tensor, ref: Tensor | Sequence[Tensor]) -> dict[str, Any]:
        """Everything the forward pass computes, by name, plus the texture features of the output.

        Returns:
            ``sr`` and ``upsampled`` (B×C×sh×sw), ``textures`` (aligned reference features
            per level, finest first), ``confidence`` (soft attention per level, B×1×…, or
            ``None``), plus the aligner's own outputs (``index`` for attention, ``flows``
            and ``shift`` for flow alignment), and ``sr_textures`` (the extractor applied to
            ``sr``, per level: what TTSR's transferal perceptual loss, the ``texture`` training
            term, compares with ``textures``).
        """
        return self._run(lr, ref, sr_textures=True)

    def _run(self, lr: Tensor, ref: Tensor | Sequence[Tensor], *, sr_textures: bool) -> dict[str, Any]:
        lr, refs = model_inputs(self, lr, ref)
        up = self.upsampler(lr)
        size = (lr.shape[-2] * self.upscale, lr.shape[-1] * self.upscale)
        if getattr(self.aligner, "grid_bound", False):
            if len(refs) != 1:
                raise InputError(
                    f"the {type(self.aligner).__name__} aligner takes one reference, got {len(refs)}; "
                    "use the attention aligner to match several"
                )
            refs = [fit_reference(refs[0], size, self.ref_policy)]
        query = self.extractor(up)
        values = [self.extractor(r) for r in refs]
        keys = None
        if self.degrade_keys and not getattr(self.aligner, "grid_bound", False):
            keys = [self.extractor(degrade_reference(r, self.upscale)) for r in refs]
        out = self.aligner(query, values, target=up, refs=refs, key_feats=keys)
        sr = self.fusion(lr, out["aligned"], out["confidence"])
        if self.residual:
            sr = sr + up
        extra = {k: v for k, v in out.items() if k not in ("aligned", "confidence")}
        if sr_textures:
            extra["sr_textures"] = self.extractor(sr)
        return {"sr": sr, "upsampled": up, "textures": out["aligned"], "confidence": out["confidence"], **extra}


def build_texture_extractor(spec: dict[str, Any]) -> tuple[nn.Module, list[int]]:
    """The spec's ``extractor`` built with one level per texture scale (log2(upscale) + 1: the
    output grid and each halving down to the LR grid) and its channels per level, finest first."""
    levels = int(math.log2(spec["params"]["upscale"])) + 1
    extractor = instantiate(spec, "extractor", scales=levels)
    return extractor, pyramid_channels(extractor, levels, "extractor")


def texture_parts(spec: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
    """What a texture-transfer model (TTSR, C2-Matching) is built from: its ``extractor`` (built
    first, see :func:`build_texture_extractor`), ``upsampler``, ``upscale`` and
    ``image_channels`` as keyword arguments, and the extractor's channels per level."""
    extractor, channels = build_texture_extractor(spec)
    p = spec["params"]
    parts = {
        "extractor": extractor,
        "upsampler": instantiate(spec, "upsampler"),
        "upscale": p["upscale"],
        "image_channels": p["image_channels"],
    }
    return parts, channels


def build_ttsr(spec: dict[str, Any]) -> TTSR:
    """Assemble :class:`TTSR` from a resolved spec."""
    p = spec["params"]
    parts, channels = texture_parts(spec)
    levels = len(channels)
    return TTSR(
        **parts,
        aligner=instantiate(spec, "aligner", scales=levels, lr_channels=channels, ref_channels=channels),
        fusion=instantiate(spec, "fusion", texture_channels=channels),
        residual=p["residual"],
        ref_policy=p["ref_policy"],
        degrade_keys=p["degrade_keys"],
    )


TTSR_ARCHITECTURE = register_architecture(
    Architecture(
        name="ttsr",
        doc="TTSR: learnable texture extractor, hard/soft attention over K references, CSFI fusion.",
        params={
            "upscale": GlobalParam(4, one_of((2, 4, 8)), "super-resolution factor s (the paper: 4)"),
            "channels": GlobalParam(64, in_range(1, 4096), "feature channels of the fusion network"),
            "image_channels": GlobalParam(3, in_range(1, 64), "channels of lr, references and output"),
            "residual": GlobalParam(False, doc="add the fusion output to the upsampled LR (the paper: no)"),
            "ref_policy": GlobalParam(
                "resize", one_of(REF_POLICIES), "reference to the output grid (grid-bound aligners)"
            ),
            "degrade_keys": GlobalParam(True, doc="match against the reference blurred by ↓s↑s bicubic (the paper)"),
        },
        slots={
            "upsampler": Slot(
                "upsampler", "bicubic", {"scale": "upscale", "in_channels": "image_channels"}, ("scale",), "LR↑"
            ),
            "extractor": Slot(
                "encoder",
                "ttsr_lte",
                {"scales": BUILT, "in_channels": "image_channels"},
                ("scales",),
                "texture extractor for queries, keys and values",
            ),
            "aligner": Slot(
                "aligner",
                "attention",
                {
                    "scales": BUILT,
                    "in_channels": "image_channels",
                    "lr_channels": BUILT,
                    "ref_channels": BUILT,
                },
                doc="texture transfer (hard/soft attention by default)",
            ),
            "fusion": Slot(
                "texture_fusion",
                "ttsr_csfi",
                {
                    "texture_channels": BUILT,
                    "upscale": "upscale",
                    "in_channels": "image_channels",
                    "out_channels": "image_channels",
                    "channels": "channels",
                },
                ("texture_channels",),
                "fusion with soft attention and cross-scale feature integration",
            ),
        },
        build=build_ttsr,
    ),
)

register_preset(
    "ttsr",
    {"model": "ttsr"},
    "TTSR as in the paper (×4): bicubic LR↑, VGG19-layout texture extractor, attention at three scales, CSFI",
)
register_preset(
    "ttsr_small",
    {
        "model": "ttsr",
        "params": {"channels": 32},
        "components": {
            "extractor": {"name": "ttsr_lte", "params": {"channels": 16}},
            "fusion": {"name": "ttsr_csfi", "params": {"blocks": [4, 4, 2, 1]}},
        },
    },
    "A small TTSR for CPU training and tests: 16-channel extractor, 32-channel fusion, 4/4/2/1 blocks",
)
register_preset(
    "ttsr_authors",
    {
        "model": "ttsr",
        "components": {
            "aligner": {"name": "attention", "params": {"divide_by_nine": True}},
            "fusion": {
                "name": "ttsr_csfi",
                "params": {
                    "exchange_relu": True,
                    "skip_around_csfi": True,
                    "tail_relu": False,
                    "signed_images": True,
                },
            },
        },
    },
    "TTSR with the layout and arithmetic of the authors' released TTSR.pt / TTSR-rec.pt "
    "(refsr-blocks convert ttsr): [-1, 1] images inside the fusion, ReLU after every cross-scale "
    "resize, stage skips around CSFI, no ReLU between the last two convs, transferred textures divided by 9",
)
