"""TTSR's learnable texture extractor (LTE): the first layers of VGG19, trained with the model."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...core.registry import register_component
from ..conventions import CONV_SUPPORT, usual_bounds

__all__ = ["TextureExtractor"]

#: ImageNet statistics VGG's input normalisation uses.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


@register_component("encoder", "ttsr_lte")
class TextureExtractor(nn.Module):
    """VGG19's layers up to ``relu{k+1}_1`` per level: level k has ``channels·2^k`` channels.

    Level 0 is ``conv1_1 + ReLU``; each further level is the previous block's second
    conv + ReLU, a 2×2 max-pool (ceil mode) and the next ``conv_1 + ReLU`` — TTSR's LTE
    (relu1_1, relu2_1, relu3_1 for three levels). TTSR starts it from ImageNet VGG weights;
    none can be downloaded here, so it starts at random and learns with the model.

    Args:
        scales: levels (3 in TTSR at ×4).
        in_channels: image channels (ImageNet normalisation applies to 3-channel images).
        channels: channels of level 0 (64 in VGG19).
        max_channels: cap on the channels of a level.

    Shapes: B×in_channels×H×W → list of B×out_channels[k]×⌈H/2^k⌉×⌈W/2^k⌉.

    Example:
        >>> import torch
        >>> lte = TextureExtractor(scales=3, channels=4)
        >>> [tuple(f.shape) for f in lte(torch.rand(1, 3, 10, 9))]
        [(1, 4, 10, 9), (1, 8, 5, 5), (1, 16, 3, 3)]
    """

    SUPPORT = CONV_SUPPORT

    PARAM_BOUNDS = usual_bounds("scales in_channels channels", max_channels=(1, 4096))

    def __init__(self, scales: int = 3, in_channels: int = 3, channels: int = 64, max_channels: int = 512) -> None:
        super().__init__()
        if scales < 1 or channels < 1:
            raise ValueError(f"scales and channels must be positive, got scales={scales}, channels={channels}")
        self.out_channels = [min(channels * 2**k, max_channels) for k in range(scales)]
        levels: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, self.out_channels[0], 3, padding=1), nn.ReLU())]
        for k in range(1, scales):
            prev, cur = self.out_channels[k - 1], self.out_channels[k]
            levels.append(
                nn.Sequential(
                    nn.Conv2d(prev, prev, 3, padding=1),
                    nn.ReLU(),
                    nn.MaxPool2d(2, ceil_mode=True),
                    nn.Conv2d(prev, cur, 3, padding=1),
                    nn.ReLU(),
                )
            )
        self.levels = nn.ModuleList(levels)
        rgb = in_channels == 3
        self.register_buffer("mean", torch.tensor(_MEAN if rgb else (0.5,) * in_channels).view(1, -1, 1, 1), False)
        self.register_buffer("std", torch.tensor(_STD if rgb else (0.5,) * in_channels).view(1, -1, 1, 1), False)

    def forward(self, image: Tensor) -> list[Tensor]:
        x = (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)
        feats = []
        for level in self.levels:
            x = level(x)
            feats.append(x)
        return feats
