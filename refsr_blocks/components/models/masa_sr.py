"""MASA-SR (Lu et al., "MASA-SR: Matching Acceleration and Spatial Adaptation for
Reference-Based Image Super-Resolution", CVPR 2021) assembled from registered parts.

Pipeline, for an LR image ``lr`` (B×C×h×w) and K ≥ 1 references of any size, at ×s (s = 2
or 4; the authors': 4):

1. the LR image is padded (edge pixels repeated, centred) to multiples of 8 and each
   reference (bottom and right) to multiples of 4·s, the sizes the authors' test loader
   makes; the reference is also reduced by s (bicubic, antialiased: :func:`reduced_reference`);
2. one encoder (``masa_encoder``: three levels of 64 channels) encodes the LR image, the
   references and the reduced references;
3. the Match & Extraction Module (:class:`MasaMatching`, :mod:`refsr_blocks.ops.masa_matching`)
   matches 8×8 blocks of LR features coarsely against the reduced references, each LR pixel
   finely inside its block's window, and moves the references' encoder levels onto the LR
   grid at 1, 2, … s times its resolution (the finest level to s times), weighted by the
   similarity;
4. the decoder (:class:`MasaDecoder`) decodes the LR features coarse to fine, then per
   output level adapts the moved reference features to the current features (the Spatial
   Adaptation Module: instance-normalised reference, rescaled by the features' statistics
   and learned corrections) and merges them by dual residual aggregation; the result is
   added to the bicubically upsampled LR and cropped back to s·h × s·w.

Differences from the authors' code (``dvlab-research/MASA-SR``); for the same padded LR
image and reference the outputs agree (``tests/interop/test_masa_sr.py``):

- **RGB.** Their network runs on BGR images (their loaders keep ``cv2.imread``'s order);
  the converter reverses the channels of the first and the last conv.
- **The LR image.** Their test loader pads the ground truth (edge repeated, centred) to
  multiples of 32 and reduces it with PIL, then crops the output; here the LR image itself
  is padded (edge repeated, centred) to multiples of lcm(8, block). Output pixels near the
  LR border can differ.
- **The reference** is padded (edge repeated, bottom and right) to multiples of 4·s as
  their one-reference loader does (16 at ×4) and reduced inside the model by torch's
  antialiased bicubic (theirs: PIL's bicubic of the 8-bit image; the results differ by
  rounding and at the border).
- **Several references.** Their several-reference test (``TestSet_multi``, their
  ``test.sh`` default) pads each of CUFED5's five references centred to 512×512 and stacks
  them into one 2560×512 reference, so a block's window may straddle two references and the
  padding is matched too; here each reference keeps its size, each block takes its best
  position over all of them, and its window lies inside that reference.
- **Memory.** The coarse search holds the similarities of a band of reference rows at a
  time, the fine search a few blocks' windows at a time (theirs: every position at once).
- A window larger than the reduced reference is shrunk to fit (theirs would start at a negative position).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...core.build import instantiate
from ...core.spec import BUILT, Architecture, GlobalParam, Slot, bounds_error, in_range, one_of, register_preset
from ...layers.blocks import ResBlock, conv
from ...ops.correspondence import Correspondence
from ...ops.flow import resize_flow
from ...ops.masa_matching import coarse_match, fine_match, transfer
from ...ops.references import model_inputs
from ...ops.warp import pixel_grid
from ..conventions import SAMPLING_SUPPORT, register_architecture
from ..encoders import masa_encoder  # noqa: F401 - registers the masa_encoder encoder

__all__ = ["MasaDecoder", "MasaMatching", "MasaSR", "reduced_reference"]

#: LR sides are padded to multiples of this (the authors pad the ground truth to 32 at ×4).
_LR_MULTIPLE = 8


def _blocks(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(ResBlock(channels) for _ in range(count)))


def _pad_to(x: Tensor, multiple: int, centred: bool) -> tuple[Tensor, tuple[int, int, int, int]]:
    """``x`` with its edge pixels repeated up to multiples of ``multiple``; returns (left, right, top, bottom)."""
    h, w = x.shape[-2:]
    extra_h, extra_w = -h % multiple, -w % multiple
    if centred:
        pads = (extra_w // 2, extra_w - extra_w // 2, extra_h // 2, extra_h - extra_h // 2)
    else:
        pads = (0, extra_w, 0, extra_h)
    return (F.pad(x, pads, mode="replicate") if extra_h or extra_w else x), pads


def reduced_reference(ref: Tensor, scale: int) -> Tensor:
    """The reference reduced by ``scale`` (sides multiples of it): bicubic, antialiased, clipped to [0, 1]."""
    size = (ref.shape[-2] // scale, ref.shape[-1] // scale)
    return F.interpolate(ref, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


class SpatialAdaptation(nn.Module):
    """MASA-SR's Spatial Adaptation Module: the reference's statistics made the features'.

    The reference features are instance-normalised, then scaled by the features' per-channel
    standard deviation plus a learned γ and shifted by their mean plus a learned β, γ and β
    predicted from both (convs initialised to zero, so it starts as plain statistics transfer).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.shared = nn.Sequential(conv(2 * channels, channels, 3), nn.ReLU(inplace=True))
        self.gamma = conv(channels, channels, 3)
        self.beta = conv(channels, channels, 3)
        for layer in (self.gamma, self.beta):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, features: Tensor, ref: Tensor) -> Tensor:
        """``ref`` (B×C×H×W) restyled to ``features`` (B×C×H×W)."""
        style = self.shared(torch.cat([features, ref], 1))
        flat = features.flatten(2)
        std = flat.std(-1, keepdim=True).unsqueeze(-1)
        mean = flat.mean(-1, keepdim=True).unsqueeze(-1)
        return F.instance_norm(ref) * (self.gamma(style) + std) + self.beta(style) + mean


class DualResidualAggregation(nn.Module):
    """MASA-SR's dual residual aggregation of features (B×C×H×W) and reference features (B×C×2H×2W).

    Two branches: the reference minus what the features say (brought down, compared, brought
    back up and added to the reference), and the features minus the reference brought down
    (added to the features and brought up); their concatenation is fused at 2H×2W.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.down_ref = conv(channels, channels, 3, stride=2)
        self.up_ref = nn.ConvTranspose2d(channels, channels, 3, 2, 1, 1)
        self.down_features = conv(channels, channels, 3, stride=2)
        self.up_features = nn.ConvTranspose2d(channels, channels, 3, 2, 1, 1)
        self.fuse = conv(2 * channels, channels, 3)
        self.act = nn.ReLU(inplace=True)

    def forward(self, features: Tensor, ref: Tensor) -> Tensor:
        """B×C×2H×2W."""
        ref_branch = self.act(self.up_ref(self.act(self.down_ref(ref)) - features)) + ref
        feature_branch = self.act(self.up_features(features - self.act(self.down_features(ref)) + features))
        return self.act(self.fuse(torch.cat([ref_branch, feature_branch], 1)))


class MasaDecoder(nn.Module):
    """MASA-SR's decoder.

    The LR features (three levels, finest first, halving) are decoded coarse to fine (conv of
    the upsampled coarser result beside the level, residual blocks); then, at the LR grid,
    the adapted reference features are merged by a conv, and at each finer output level
    (×2, ×4) by dual residual aggregation with the upsampled features; a conv gives the image.

    Args:
        channels: feature channels.
        out_channels: image channels.
        levels: output levels (1 + log2 s).
        lr_blocks: residual blocks per LR level, coarsest first.
        stage_blocks: residual blocks per output level, coarsest (the LR grid) first.
    """

    def __init__(
        self,
        channels: int,
        out_channels: int,
        levels: int,
        lr_blocks: Sequence[int] = (2, 2, 2),
        stage_blocks: Sequence[int] = (12, 8, 4),
    ) -> None:
        super().__init__()
        if len(stage_blocks) < levels:
            raise ValueError(f"MasaDecoder: stage_blocks needs {levels} counts, got {list(stage_blocks)}")
        self.lr_convs = nn.ModuleList(
            [conv(channels, channels, 3)] + [conv(2 * channels, channels, 3) for _ in lr_blocks[1:]]
        )
        self.lr_blocks = nn.ModuleList(_blocks(channels, n) for n in lr_blocks)
        self.merge = conv(2 * channels, channels, 3)
        self.aggregations = nn.ModuleList(DualResidualAggregation(channels) for _ in range(levels - 1))
        self.stage_blocks = nn.ModuleList(_blocks(channels, n) for n in stage_blocks[:levels])
        self.adaptation = SpatialAdaptation(channels)
        self.out = conv(channels, out_channels, 3)
        self.act = nn.ReLU(inplace=True)

    def forward(self, lr_features: Sequence[Tensor], ref_features: Sequence[Tensor]) -> Tensor:
        """``lr_features`` finest first (B×C×H×W, H/2, H/4); ``ref_features`` per output level,
        coarsest (B×C×H×W) first, each twice the previous. Returns B×out_channels×(2^L·H)×(2^L·W)."""
        x = None
        for level, head, body in zip(reversed(lr_features), self.lr_convs, self.lr_blocks, strict=True):
            inputs = level if x is None else torch.cat([_upsample(x), level], 1)
            x = body(self.act(head(inputs)))
        assert x is not None
        adapted = self.adaptation(x, ref_features[0])
        x = self.stage_blocks[0](self.act(self.merge(torch.cat([adapted, x], 1))))
        for ref, aggregate, body in zip(ref_features[1:], self.aggregations, self.stage_blocks[1:], strict=True):
            adapted = self.adaptation(_upsample(x), ref)
            x = body(aggregate(x, adapted))
        return self.out(x)


def _upsample(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class MasaMatching(nn.Module):
    """MASA-SR's Match & Extraction Module (no parameters): coarse block matching, fine matching
    inside each block's window, and the transfer of the reference's features onto the LR grid.

    It matches anywhere in references of any size and number (``grid_bound = False``: the
    :class:`~refsr_blocks.inference.predictor.Predictor` hands it whole references).

    Args:
        block: side of the LR blocks matched coarsely.
        dilations: dilations of the blocks' coarse descriptors.
        spread: window size relative to a block's share of the reference.
        budget: at most this many unfolded reference values at a time.
    """

    # Measured on the CPU with masa_sr_small (tests/components/test_masa_sr.py): fp32 and fp64
    # (and the replica tests); bf16 autocast through the Predictor (the matching and the
    # transfer in fp32, the output within 1.5e-3 of fp32); torch.export with one reference,
    # equal to eager (several: the grouping of blocks by reference, nonzero(), has a
    # data-dependent size and fails). ONNX (opset 17): the model's export stops before the
    # matching, at the antialiased bicubic that reduces the reference
    # (aten::_upsample_bicubic2d_aa). fp16: not measured.
    SUPPORT = replace(
        SAMPLING_SUPPORT,
        notes="bf16: matching in fp32; torch.export with one reference; ONNX export stops at the reduction",
    )

    grid_bound = False

    def __init__(
        self, block: int = 8, dilations: Sequence[int] = (1, 2, 3), spread: float = 1.5, budget: int = 1 << 22
    ) -> None:
        super().__init__()
        self.block, self.dilations, self.spread, self.budget = block, tuple(dilations), spread, budget

    def forward(
        self, lr: Tensor, reduced: Sequence[Tensor], ref_levels: Sequence[Sequence[Tensor]], steps: int
    ) -> tuple[list[Tensor], Tensor, Tensor, Tensor]:
        """Match ``lr`` (B×C×H×W, sides multiples of ``block``) in the reduced references' features
        (K maps B×C×H_r×W_r) and move each reference's levels (finest first, level j at
        2^(steps−j)·H_r) onto the LR grid at 1, 2, … 2^steps times its resolution.

        Returns:
            (the moved features per output level, coarsest first, B×C×(2^j·H)×(2^j·W); the
            matched centres B×2×H×W (x, y) in the reduced grids, int64; which reference,
            B×1×H×W int64; the cosine similarity B×1×H×W).
        """
        # In float32 at least, autocast or not: bf16 cosines tie and pick other patches.
        dtype, out_dtype = torch.promote_types(lr.dtype, torch.float32), ref_levels[0][0].dtype
        with torch.autocast(lr.device.type, enabled=False):
            lr, reduced = lr.to(dtype), [r.to(dtype) for r in reduced]
            coarse = coarse_match(lr, reduced, self.block, self.dilations, self.budget)
            centres, which, score = fine_match(lr, reduced, coarse, self.block, self.spread, self.budget)
            moved = [
                transfer(
                    [levels[steps - j].to(dtype) for levels in ref_levels], centres, which, score, 2**j, self.block
                )
                for j in range(steps + 1)
            ]
        return [m.to(out_dtype) for m in moved], centres, which, score


class MasaSR(nn.Module):
    """The MASA-SR network; build it with ``build_model("masa_sr")``.

    Args:
        upsampler: makes ``LR↑`` (bicubic, not clipped, in the authors' code).
        encoder: the shared encoder (three levels, one channel count).
        decoder: a :class:`MasaDecoder`.
        upscale: s (2 or 4).
        block: side of the LR blocks matched coarsely.
        dilations: dilations of the blocks' coarse descriptors.
        spread: window size relative to a block's share of the reference.
        image_channels: channels of lr, references and output.
        budget: at most this many unfolded reference values at a time while matching.
    """

    def __init__(
        self,
        upsampler: nn.Module,
        encoder: nn.Module,
        decoder: MasaDecoder,
        *,
        upscale: int,
        block: int = 8,
        dilations: Sequence[int] = (1, 2, 3),
        spread: float = 1.5,
        image_channels: int = 3,
        budget: int = 1 << 22,
    ) -> None:
        super().__init__()
        self.upsampler, self.encoder, self.decoder = upsampler, encoder, decoder
        self.aligner = MasaMatching(block, dilations, spread, budget)
        self.upscale, self.block = upscale, block
        self.image_channels = image_channels
        self.spec: dict[str, Any] = {}

    def forward(self, lr: Tensor, ref: Tensor | Sequence[Tensor]) -> Tensor:
        """The B×C×(s·h)×(s·w) result for ``lr`` (B×C×h×w in [0, 1]) and ``ref`` (one B×C×H×W
        reference or a list of K, any sizes, matched jointly)."""
        return self._run(lr, ref)["sr"]

    def forward_intermediates(self, lr: Tensor, ref: Tensor | Sequence[Tensor]) -> dict[str, Any]:
        """Everything the forward pass computes, by name.

        Returns:
            ``sr`` and ``upsampled`` (B×C×sh×sw); ``correspondence`` (B×2×h×w: from each LR
            pixel to the centre of its matched 3×3 patch in the reduced reference's grid, x
            then y, in pixels of that grid; the references' padding counts as reference);
            ``reference`` (B×1×h×w, which reference); ``flows`` (per output level, finest
            first, B×2×(sh/2^k)×(sw/2^k): the correspondence as a flow into that level's
            pixels, level 0 into the reference image); ``confidence`` (per level, B×1×…: the
            cosine similarity of the two patches clipped to [0, 1]; unclipped, it is the
            weight of the moved features); ``matches`` (the
            :class:`~refsr_blocks.ops.correspondence.Correspondence` on the padded grid).
        """
        out = self._run(lr, ref)
        corr: Correspondence = out.pop("corr")
        top, left = out.pop("offset")
        h, w = lr.shape[-2:]
        window = (slice(None), slice(None), slice(top, top + h), slice(left, left + w))
        flow, score = corr.flow[window], corr.score[window].clamp(0, 1)
        sizes = [(h * self.upscale >> k, w * self.upscale >> k) for k in range(int(math.log2(self.upscale)) + 1)]
        return {
            **out,
            "correspondence": flow,
            "reference": corr.reference[window],
            "flows": [resize_flow(flow, size) for size in sizes],
            "confidence": [F.interpolate(score, size=size) for size in sizes],
            "matches": corr,
        }

    def _run(self, lr: Tensor, ref: Tensor | Sequence[Tensor]) -> dict[str, Any]:
        lr, refs = model_inputs(self, lr, ref)
        s, (h, w) = self.upscale, lr.shape[-2:]
        padded, (left, _, top, _) = _pad_to(lr, math.lcm(_LR_MULTIPLE, self.block), centred=True)
        refs = [_pad_to(r, 4 * s, centred=False)[0] for r in refs]
        lr_features = self.encoder(padded)
        reduced = [self.encoder(reduced_reference(r, s))[0] for r in refs]
        ref_levels = [self.encoder(r) for r in refs]
        moved, centres, which, score = self.aligner(lr_features[0], reduced, ref_levels, int(math.log2(s)))
        up = self.upsampler(padded)
        sr = (self.decoder(lr_features, moved) + up)[..., top * s : (top + h) * s, left * s : (left + w) * s]
        grid = pixel_grid(*padded.shape[-2:], padded.device, torch.float32)
        corr = Correspondence(
            flow=(centres.to(grid.dtype) - grid).to(score.dtype),
            reference=which,
            score=score,
            valid=torch.ones_like(which, dtype=torch.bool),
            ref_sizes=tuple(tuple(r.shape[-2:]) for r in reduced),
            stride=s,
        )
        return {
            "sr": sr,
            "upsampled": up[..., top * s : (top + h) * s, left * s : (left + w) * s],
            "corr": corr,
            "offset": (top, left),
        }


def build_masa_sr(spec: dict[str, Any]) -> MasaSR:
    """Assemble :class:`MasaSR` from a resolved spec."""
    p = spec["params"]
    levels = int(math.log2(p["upscale"])) + 1
    return MasaSR(
        upsampler=instantiate(spec, "upsampler"),
        encoder=instantiate(spec, "encoder", scales=3),
        decoder=MasaDecoder(
            p["channels"], p["image_channels"], levels, p["decoder_lr_blocks"], p["decoder_stage_blocks"]
        ),
        upscale=p["upscale"],
        block=p["block"],
        spread=p["spread"],
        image_channels=p["image_channels"],
    )


def _counts(length: int, high: int = 256) -> Any:
    """A :class:`GlobalParam` check: ``length`` integers in [0, ``high``]."""

    def check(value: Any) -> str | None:
        if not isinstance(value, list | tuple) or len(value) != length:
            return f"expected a list of {length} integers in [0, {high}], got {value!r}"
        return bounds_error(list(value), (0, high))

    return check


MASA_SR_ARCHITECTURE = register_architecture(
    Architecture(
        name="masa_sr",
        doc="MASA-SR: coarse-to-fine block matching, spatial adaptation, dual residual aggregation.",
        params={
            "upscale": GlobalParam(4, one_of((2, 4)), "super-resolution factor s (the paper: 4)"),
            "channels": GlobalParam(64, in_range(2, 1024), "feature channels of the encoder and decoder"),
            "image_channels": GlobalParam(3, in_range(1, 64), "channels of the LR image, references and output"),
            "block": GlobalParam(8, in_range(2, 64), "side of the LR blocks matched coarsely (the authors: 8)"),
            "spread": GlobalParam(1.5, in_range(0.1, 16), "search window relative to a block's share of the reference"),
            "decoder_lr_blocks": GlobalParam(
                [2, 2, 2], _counts(3), "decoder residual blocks per LR level, coarsest first"
            ),
            "decoder_stage_blocks": GlobalParam(
                [12, 8, 4], _counts(3), "decoder residual blocks per output level (×1, ×2, ×4)"
            ),
        },
        slots={
            "upsampler": Slot(
                "upsampler", "bicubic", {"scale": "upscale", "in_channels": "image_channels"}, doc="makes LR↑"
            ),
            "encoder": Slot(
                "encoder",
                "masa_encoder",
                {"scales": BUILT, "in_channels": "image_channels", "channels": "channels"},
                ("scales",),
                doc="the encoder shared by the LR image, the references and the reduced references",
            ),
        },
        build=build_masa_sr,
    ),
)

register_preset(
    "masa_sr",
    {"model": "masa_sr", "components": {"upsampler": {"name": "bicubic", "params": {"clamp": False}}}},
    "MASA-SR as released (×4): 64 channels, encoder blocks 4/4/4, decoder blocks 2/2/2 and 12/8/4",
)
register_preset(
    "masa_sr_small",
    {
        "model": "masa_sr",
        "params": {"channels": 8, "decoder_lr_blocks": [1, 1, 1], "decoder_stage_blocks": [1, 1, 1]},
        "components": {
            "upsampler": {"name": "bicubic", "params": {"clamp": False}},
            "encoder": {"name": "masa_encoder", "params": {"blocks": 1}},
        },
    },
    "A small MASA-SR for CPU training and tests: 8 channels, one residual block per stage",
)
