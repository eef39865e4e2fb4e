"""A refsr-blocks plugin adding a component kind, two components of it and an architecture.

* the kind ``texture_matcher``: ``matcher(query, key)`` compares two feature maps and returns
  the similarity of every query position to every key position; its contract is
  :class:`TextureMatcherContract`, so ``check_component("texture_matcher", name)`` tests any
  matcher, this plugin's or another's;
* the matchers ``cosine`` (cosine similarity of 3×3 feature patches, as in TTSR) and
  ``projected`` (the same after a learned 1×1 projection);
* the architecture ``texture_transfer``: a tiny attention-style RefSR model whose ``matcher``
  slot takes any ``texture_matcher`` and whose ``upsampler`` slot any library upsampler.

Everything is registered at import with the library's own ``register_kind`` and
``register_component``: refsr-blocks imports this module through its entry point and records
all of it as owned by the distribution ``refsr-texture``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from refsr_blocks import register_component, register_kind
from refsr_blocks.core.build import instantiate
from refsr_blocks.core.spec import Architecture, GlobalParam, Slot
from refsr_blocks.ops.inputs import check_pair
from refsr_blocks.testing import ComponentContract


# -- the kind and its contract ---------------------------------------------------------------
class TextureMatcherContract(ComponentContract):
    """``matcher(query, key)``: B×C×h×w and B×C×h'×w' → B×(h·w)×(h'·w') similarities,
    and a map matched against itself matches every position best with itself."""

    kind = "texture_matcher"
    channels = 8

    def injected(self) -> dict[str, Any]:
        return {"channels": self.channels}

    def make_inputs(self, size, batch=2, generator=None):
        h, w = (max(1, s // 4) for s in size)  # similarities grow with (h·w)², keep them small
        return tuple(torch.rand(batch, self.channels, h, w, generator=generator) for _ in range(2))

    def check_output(self, out, inputs, module):
        query, key = inputs
        expected = (query.shape[0], query.shape[2] * query.shape[3], key.shape[2] * key.shape[3])
        assert isinstance(out, Tensor) and tuple(out.shape) == expected, (
            f"texture_matcher {self.name!r}: expected {expected}, got {getattr(out, 'shape', type(out))}"
        )

    def test_a_map_matches_itself(self) -> None:
        """Matched against itself, each position's best match is that position."""
        query, _ = self.inputs((32, 48))
        with torch.no_grad():
            best = self.build().eval()(query, query).argmax(dim=-1)
        assert torch.equal(best, torch.arange(best.shape[1]).expand_as(best)), (
            f"texture_matcher {self.name!r}: a map matched against itself does not match itself"
        )


register_kind(
    "texture_matcher",
    contract=TextureMatcherContract,
    doc="texture matcher: (query, key) feature maps -> B×(h·w)×(h'·w') similarities",
)


# -- two components of the kind ----------------------------------------------------------------
def _patch_cosine(query: Tensor, key: Tensor) -> Tensor:
    """Cosine similarity of every 3×3 patch of ``query`` to every 3×3 patch of ``key``."""
    q = F.normalize(F.unfold(query, 3, padding=1), dim=1)  # B×(9C)×(h·w)
    k = F.normalize(F.unfold(key, 3, padding=1), dim=1)
    return q.transpose(1, 2) @ k


@register_component("texture_matcher", "cosine")
class CosineMatcher(nn.Module):
    """Cosine similarity of 3×3 feature patches (TTSR's relevance embedding)."""

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return _patch_cosine(query, key)


@register_component("texture_matcher", "projected")
class ProjectedMatcher(nn.Module):
    """Cosine similarity of 3×3 patches after a learned 1×1 projection.

    Args:
        channels: channels of the feature maps (injected by the architecture).
        dim: channels of the projection.
    """

    def __init__(self, channels: int = 16, dim: int = 16) -> None:
        super().__init__()
        self.project = nn.Conv2d(channels, dim, 1)

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return _patch_cosine(self.project(query), self.project(key))


# -- the architecture --------------------------------------------------------------------------
class TextureTransferSR(nn.Module):
    """Upsample the LR image, find for each LR position the best-matching reference patch,
    and fuse the features of those patches with the upsampled image.

    Shapes: ``lr`` B×3×h×w and ``ref`` B×3×(s·h)×(s·w) give B×3×(s·h)×(s·w).
    """

    def __init__(self, upsampler: nn.Module, matcher: nn.Module, upscale: int, channels: int) -> None:
        super().__init__()
        self.upsampler, self.matcher, self.upscale = upsampler, matcher, upscale
        self.embed = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1)
        )
        self.fuse = nn.Sequential(
            nn.Conv2d(2 * channels, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, 3, 3, padding=1)
        )

    def forward(self, lr: Tensor, ref: Tensor) -> Tensor:
        return self.forward_intermediates(lr, ref)["sr"]

    def forward_intermediates(self, lr: Tensor, ref: Tensor) -> dict[str, Tensor]:
        """``sr`` and ``upsampled`` (B×3×H×W), the matched reference position ``index`` and its
        ``score`` for each LR pixel (B×h×w), and the ``transferred`` reference features (B×C×H×W)."""
        check_pair(lr, ref, self.upscale)
        s, (b, _, h, w) = self.upscale, lr.shape
        up = self.upsampler(lr)
        # match like with like: the reference blurred the way the LR image is (down, then up)
        ref_blurred = self.upsampler(F.interpolate(ref, size=(h, w), mode="bicubic", align_corners=False))
        features = self.embed(up)
        query = F.avg_pool2d(features, s)  # B×C×h×w: one vector per LR pixel
        key = F.avg_pool2d(self.embed(ref_blurred), s)
        score, index = self.matcher(query, key).max(dim=-1)  # B×(h·w)
        ref_patches = F.unfold(self.embed(ref), s, stride=s)  # B×(C·s²)×(h·w): one s×s patch per LR pixel
        picked = ref_patches.gather(2, index[:, None].expand(-1, ref_patches.shape[1], -1))
        transferred = F.fold(picked, ref.shape[-2:], s, stride=s)
        weight = F.interpolate(score.view(b, 1, h, w), scale_factor=s, mode="nearest")
        sr = up + self.fuse(torch.cat([features, transferred * weight], dim=1))
        return {
            "sr": sr,
            "upsampled": up,
            "index": index.view(b, h, w),
            "score": score.view(b, h, w),
            "transferred": transferred,
        }


def build_texture_transfer(spec: dict[str, Any]) -> TextureTransferSR:
    """Assemble :class:`TextureTransferSR` from a resolved spec."""
    p = spec["params"]
    return TextureTransferSR(instantiate(spec, "upsampler"), instantiate(spec, "matcher"), p["upscale"], p["channels"])


register_component(
    "model",
    "texture_transfer",
    Architecture(
        name="texture_transfer",
        doc="Tiny texture-transfer RefSR: upsampled LR, best-matching reference patches, conv fusion.",
        params={
            "upscale": GlobalParam(
                4, lambda v: None if v in (2, 3, 4) else f"must be 2, 3 or 4, got {v!r}", "factor s"
            ),
            "channels": GlobalParam(16, lambda v: None if 1 <= v <= 256 else f"must be 1..256, got {v!r}", "features"),
        },
        slots={
            "upsampler": Slot("upsampler", "bicubic", {"scale": "upscale"}, ("scale",), "LR upsampler"),
            "matcher": Slot("texture_matcher", "cosine", {"channels": "channels"}, doc="LR-to-reference matcher"),
        },
        build=build_texture_transfer,
    ),
)
