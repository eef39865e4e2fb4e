"""TTSR's main network: textures fused at every scale, with cross-scale feature integration (CSFI)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...core.registry import register_component
from ...layers.blocks import ResBlock, conv
from ..conventions import CONV_SUPPORT, texture_levels, usual_bounds

__all__ = ["CrossScaleFusion"]


def _body(channels: int, blocks: int) -> nn.Sequential:
    """``blocks`` residual blocks and a closing conv (added to the input by the caller)."""
    return nn.Sequential(*(ResBlock(channels) for _ in range(blocks)), conv(channels, channels, 3))


class _Exchange(nn.Module):
    """Moves a branch from scale ``2^src`` to ``2^dst``: bicubic up + 1×1 conv, or stride-2 3×3 convs down."""

    def __init__(self, channels: int, src: int, dst: int) -> None:
        super().__init__()
        self.factor = 2 ** (dst - src) if dst > src else 1
        if dst > src:
            self.op: nn.Module = conv(channels, channels, 1)
        else:
            layers: list[nn.Module] = []
            for i in range(src - dst):
                layers.append(nn.Conv2d(channels, channels, 3, 2, 1))
                if i < src - dst - 1:
                    layers.append(nn.ReLU(inplace=True))
            self.op = nn.Sequential(*layers)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        if self.factor > 1:
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False)
        return self.op(x)


@register_component("texture_fusion", "ttsr_csfi")
class CrossScaleFusion(nn.Module):
    """TTSR's main network with soft-attention texture fusion at every scale and CSFI.

    Stage 0 (LR grid): shallow feature extraction (head conv, ``blocks[0]`` residual blocks,
    conv, skip), then the texture fusion ``x + conv(cat(x, T)) ⊙ S``, then ``blocks[1]``
    residual blocks. Each further stage j doubles the finest branch (conv + pixel shuffle),
    fuses that scale's texture the same way, integrates every branch with all the others
    (CSFI: each branch takes the others resized to its scale, bicubic + 1×1 conv upwards,
    stride-2 convs downwards, merged by a 3×3 conv) and runs ``blocks[j+1]`` residual blocks
    per branch. The tail resizes every branch to the output scale and merges them
    (3×3 conv, 3×3 conv to ``channels/2``, 1×1 conv to the image).

    Args:
        texture_channels: channels of the textures per level, finest first (injected).
        upscale: s, a power of two; L = log2(s) + 1 stages (3 at ×4, as TTSR).
        in_channels: image channels of ``lr``.
        out_channels: image channels of the output.
        channels: feature channels (64 in TTSR).
        blocks: residual blocks of the shallow extractor, then of each stage (TTSR:
            16, 16, 8, 4 at ×4); one more entry than stages.
        exchange_relu: a ReLU on every branch resized to another scale (CSFI and the tail),
            as the TTSR authors' code has (their released weights need it).
        skip_around_csfi: each stage's skip connection starts before the cross-scale
            integration (the TTSR authors' code: ``x + tail(blocks(CSFI(x)))``) rather than
            after it (``CSFI(x) + tail(blocks(CSFI(x)))``).
        tail_relu: a ReLU between the tail's last two convs (the TTSR authors' code has none).
        signed_images: the network works on images in [-1, 1], as the TTSR authors' weights
            were trained: ``lr`` (in [0, 1]) is mapped to ``2·lr − 1`` before the head, and
            the output is clamped to [-1, 1] and mapped back to [0, 1]. Mapping inside, not
            folding it into the head conv, keeps the zero padding of their first conv exact.

    Shapes: see :mod:`~refsr_blocks.components.texture_fusions`.
    """

    SUPPORT = CONV_SUPPORT

    # upscale sets the number of stages (log2 s + 1); channels as TTSR's global channels; blocks
    # per stage as MDSR's num_blocks (0: a stage without residual blocks).
    PARAM_BOUNDS = usual_bounds("texture_channels upscale in_channels out_channels blocks", channels=(1, 4096))

    def __init__(
        self,
        texture_channels: list[int],
        upscale: int = 4,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: int = 64,
        blocks: list[int] | None = None,
        exchange_relu: bool = False,
        skip_around_csfi: bool = False,
        tail_relu: bool = True,
        signed_images: bool = False,
    ) -> None:
        super().__init__()
        stages = texture_levels(texture_channels, upscale)
        blocks = list(blocks) if blocks is not None else [16, 16, 8, 4][: stages + 1] + [4] * max(0, stages - 3)
        if len(blocks) != stages + 1:
            raise ValueError(f"blocks needs {stages + 1} entries (shallow extractor + {stages} stages), got {blocks}")
        self.stages = stages
        self.exchange_relu = exchange_relu
        self.skip_around_csfi = skip_around_csfi
        self.signed_images = signed_images
        self.head = nn.Sequential(conv(in_channels, channels, 3), nn.ReLU(inplace=True))
        self.shallow = _body(channels, blocks[0])
        # Textures come finest first; stage j fuses level L-1-j.
        self.fuse = nn.ModuleList(conv(channels + texture_channels[stages - 1 - j], channels, 3) for j in range(stages))
        self.grow = nn.ModuleList(
            nn.Sequential(conv(channels, 4 * channels, 3), nn.PixelShuffle(2), nn.ReLU(inplace=True))
            for _ in range(stages - 1)
        )
        self.exchange = nn.ModuleList(
            nn.ModuleDict(
                {
                    f"{src}_{dst}": _Exchange(channels, src, dst)
                    for dst in range(j + 1)
                    for src in range(j + 1)
                    if src != dst
                }
            )
            for j in range(stages)
        )
        self.merge = nn.ModuleList(
            nn.ModuleList(conv(channels * (j + 1), channels, 3) for _ in range(j + 1)) if j else nn.ModuleList()
            for j in range(stages)
        )
        self.bodies = nn.ModuleList(
            nn.ModuleList(_body(channels, blocks[j + 1]) for _ in range(j + 1)) for j in range(stages)
        )
        self.tail_merge = nn.ModuleList(conv(channels, channels, 1) for _ in range(stages - 1))
        self.tail = nn.Sequential(
            conv(channels * stages, channels, 3),
            nn.ReLU(inplace=True),
            conv(channels, max(1, channels // 2), 3),
            nn.ReLU(inplace=True) if tail_relu else nn.Identity(),
            conv(max(1, channels // 2), out_channels, 1),
        )

    def _fuse(self, j: int, x: Tensor, texture: Tensor, confidence: Tensor | None) -> Tensor:
        if texture.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"stage {j}: texture {tuple(texture.shape)} is not on the grid of {tuple(x.shape)}")
        t = self.fuse[j](torch.cat([x, texture], dim=1))
        return x + (t if confidence is None else t * confidence)

    def forward(self, lr: Tensor, textures: Sequence[Tensor], confidence: Sequence[Tensor | None]) -> Tensor:
        if len(textures) != self.stages or len(confidence) != self.stages:
            raise ValueError(
                f"expected {self.stages} texture and confidence levels, got {len(textures)}, {len(confidence)}"
            )
        if self.signed_images:
            lr = lr * 2 - 1
        head = self.head(lr)
        x = head + self.shallow(head)
        branches: list[Tensor] = []
        for j in range(self.stages):
            level = self.stages - 1 - j
            new = x if j == 0 else self.grow[j - 1](branches[-1])
            branches.append(self._fuse(j, new, textures[level], confidence[level]))
            skips = branches
            if j:
                sizes = [tuple(b.shape[-2:]) for b in branches]
                exchange = self.exchange[j]
                branches = [
                    F.relu(
                        self.merge[j][dst](
                            torch.cat(
                                [
                                    b if src == dst else self._activate(exchange[f"{src}_{dst}"](b, sizes[dst]))
                                    for src, b in enumerate(branches)
                                ],
                                dim=1,
                            )
                        )
                    )
                    for dst in range(j + 1)
                ]
            if not self.skip_around_csfi:
                skips = branches
            branches = [skip + body(b) for skip, b, body in zip(skips, branches, self.bodies[j])]
        size = tuple(branches[-1].shape[-2:])
        resized = [
            self._activate(self.tail_merge[i](F.interpolate(b, size=size, mode="bicubic", align_corners=False)))
            for i, b in enumerate(branches[:-1])
        ]
        out = self.tail(torch.cat([*resized, branches[-1]], dim=1))
        if self.signed_images:
            out = (out.clamp(-1, 1) + 1) / 2
        return out

    def _activate(self, x: Tensor) -> Tensor:
        return F.relu(x) if self.exchange_relu else x
