"""C2-Matching's contrastive correspondence network (Jiang et al., CVPR 2021).

Two VGG16-layout extractors (``conv1_1`` to ``conv3_1``, no final ReLU; one for the
upsampled LR image, one for the references: the authors train them apart, by contrastive
learning and then teacher-student distillation, so that a reference patch and the LR patch
showing the same content embed alike across the resolution gap, and under rotation and
scale). Their features, a quarter of the image's resolution, are L2-normalised per pixel;
every 3×3 patch of the LR side is matched to the reference patch of highest cosine
similarity, jointly over K references of any size.

Memory: the relevance matrix (LR patches × reference patches) is never formed. Reference
patches are taken in blocks of whole rows (at most ``chunk_size`` patches) and the LR side in
row bands (at most ``chunk_size`` positions), so the largest temporary is a
``chunk_size × chunk_size`` block of similarities; a running maximum keeps the result. The
authors' code holds blocks of 512·2^20 similarities (2 GiB in float32) and pads the
reference to the LR image's size first.

The correspondence is a hard choice: no gradient reaches the extractors through it. Their
weights are frozen (``requires_grad`` false): the authors train them in their own stages and
keep them fixed while the restoration network learns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...core.errors import InputError
from ...core.registry import register_component
from ...ops.correspondence import Correspondence, colocated
from ...ops.warp import pixel_grid
from ..conventions import SAMPLING_SUPPORT, usual_bounds
from ..encoders.texture import TextureExtractor

__all__ = ["C2ContrastiveCorrespondence"]


def _features(extractor: TextureExtractor, image: Tensor) -> Tensor:
    """The extractor's last level before its final ReLU (VGG16's ``conv3_1`` at three levels)."""
    x = (image - extractor.mean.to(image.dtype)) / extractor.std.to(image.dtype)
    for level in extractor.levels[:-1]:
        x = level(x)
    return extractor.levels[-1][:-1](x)


def _match_one(query: Tensor, keys: Sequence[Tensor], chunk_size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Best valid 3×3 key patch of all references for every valid 3×3 query patch (one item).

    Args:
        query: C×h×w, unit vectors per pixel (h, w ≥ 3).
        keys: C×H_r×W_r each, unit vectors per pixel.

    Returns:
        (best cosine, reference index, y, x of the matched patch's top-left in its
        reference), each (h−2)×(w−2), for the query patch whose top-left is there; the
        reference index is −1 where no reference has a whole patch.
    """
    h, w = query.shape[-2:]
    best = query.new_full((h - 2, w - 2), -float("inf"))
    ref_index = torch.full((h - 2, w - 2), -1, dtype=torch.long, device=query.device)
    top = torch.zeros_like(ref_index)
    left = torch.zeros_like(ref_index)
    band = max(1, chunk_size // (w - 2))  # query rows per block
    for r, key in enumerate(keys):
        kh, kw = key.shape[-2:]
        if kh < 3 or kw < 3:
            continue
        rows = max(1, chunk_size // (kw - 2))  # key rows per block
        for r0 in range(0, kh - 2, rows):
            r1 = min(kh - 2, r0 + rows)
            patches = F.unfold(key[None, :, r0 : r1 + 2], 3)[0]  # (C·9)×n
            # The authors divide by the norm + 1e-5; kept so that near-ties break alike.
            filters = (patches / (patches.norm(dim=0) + 1e-5)).t().reshape(-1, key.shape[0], 3, 3)
            for q0 in range(0, h - 2, band):
                q1 = min(h - 2, q0 + band)
                value, arg = F.conv2d(query[None, :, q0 : q1 + 2], filters)[0].max(dim=0)
                better = value > best[q0:q1]
                best[q0:q1] = torch.where(better, value, best[q0:q1])
                ref_index[q0:q1] = torch.where(better, r, ref_index[q0:q1])
                top[q0:q1] = torch.where(better, r0 + arg // (kw - 2), top[q0:q1])
                left[q0:q1] = torch.where(better, arg % (kw - 2), left[q0:q1])
    query_norm = 9 * F.avg_pool2d(query.square().sum(0, keepdim=True)[None], 3, stride=1)[0, 0]
    return best / (query_norm.sqrt() + 1e-5), ref_index, top, left


@register_component("correspondence", "c2_contrastive")
class C2ContrastiveCorrespondence(nn.Module):
    """C2-Matching's correspondence: contrastive VGG16-layout features, 3×3 cosine patch matching.

    Args:
        in_channels: image channels.
        channels: channels of the extractors' first level (64 in VGG16; 64/128/256 over
            the three levels).
        chunk_size: most reference patches, and most LR positions, per similarity block.

    Shapes: ``target`` B×C×H×W (the upsampled LR image), ``refs`` K images B×C×H_r×W_r of any
    sizes → :class:`Correspondence` on the grid ceil(H/4)×ceil(W/4).

    Attributes:
        stride: 4 (image pixels per match-grid pixel).
    """

    # Measured by tests/components/test_c2_matching.py: fp32/fp64 (contracts), bf16 autocast
    # through the Predictor (the features in bf16, the matching in fp32), torch.export of the
    # c2_matching_small model equal to eager. ONNX: not tried.
    SUPPORT = replace(SAMPLING_SUPPORT, notes="bf16: matching in fp32; ONNX not tried")

    PARAM_BOUNDS = usual_bounds("in_channels channels chunk_size")

    stride = 4

    def __init__(self, in_channels: int = 3, channels: int = 64, chunk_size: int = 4096) -> None:
        super().__init__()
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.chunk_size = chunk_size
        self.query_extractor = TextureExtractor(scales=3, in_channels=in_channels, channels=channels)
        self.ref_extractor = TextureExtractor(scales=3, in_channels=in_channels, channels=channels)
        # Both start alike (the authors start both from ImageNet VGG16): an untrained network
        # already finds a copy of the target in a reference.
        self.ref_extractor.load_state_dict(self.query_extractor.state_dict())
        self.requires_grad_(False)

    def forward(self, target: Tensor, refs: Sequence[Tensor]) -> Correspondence:
        if not refs:
            raise InputError("the correspondence needs at least one reference")
        with torch.no_grad():
            query = _features(self.query_extractor, target)
            keys = [_features(self.ref_extractor, r) for r in refs]
            # The matching in float32 at least, autocast or not: bf16 cosines tie and pick other patches.
            dtype = torch.promote_types(target.dtype, torch.float32)
            with torch.autocast(target.device.type, enabled=False):
                query = F.normalize(query.to(dtype), dim=1)
                return self.match(query, [F.normalize(k.to(dtype), dim=1) for k in keys])

    def match(self, query: Tensor, keys: Sequence[Tensor]) -> Correspondence:
        """The correspondence of per-pixel unit feature maps (B×C×h×w and K × B×C×H_r×W_r)."""
        b, _, h, w = query.shape
        sizes = tuple((int(k.shape[-2]), int(k.shape[-1])) for k in keys)
        score = query.new_zeros(b, 1, h, w)
        reference = torch.zeros(b, 1, h, w, dtype=torch.long, device=query.device)
        valid = torch.zeros(b, 1, h, w, dtype=torch.bool, device=query.device)
        # Every pixel starts at its co-located place in reference 0 (the authors' zero flow).
        flow = colocated((h, w), sizes[0], query).expand(b, -1, -1, -1).clone()
        if h >= 3 and w >= 3:
            grid = pixel_grid(h - 2, w - 2, query.device, query.dtype)
            for i in range(b):
                best, ref, top, left = _match_one(query[i], [k[i] for k in keys], self.chunk_size)
                found = ref >= 0
                inner = (slice(1, h - 1), slice(1, w - 1))
                score[i, 0][inner] = torch.where(found, best, 0.0)
                reference[i, 0][inner] = ref.clamp_min(0)
                valid[i, 0][inner] = found
                moved = torch.stack((left, top)).to(query.dtype) - grid[0]
                flow[i][(slice(None), *inner)] = torch.where(found, moved, flow[i][(slice(None), *inner)])
            reference = _spread_to_border(reference)
        if len(keys) > 1:  # co-located displacements into the reference now chosen at the border
            for r, size in enumerate(sizes[1:], start=1):
                at_border = (~valid) & (reference == r)
                flow = torch.where(at_border, colocated((h, w), size, query), flow)
        return Correspondence(flow, reference, score, valid, sizes, self.stride)


def _spread_to_border(index: Tensor) -> Tensor:
    """The one-pixel border takes the value of the nearest interior pixel (B×1×h×w, h, w ≥ 3)."""
    inner = index[..., 1:-1, 1:-1]
    return F.pad(inner.float(), (1, 1, 1, 1), mode="replicate").to(index.dtype)
