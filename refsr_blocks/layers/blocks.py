"""Building blocks shared by components: same-size convolutions, residual blocks, pixel shuffle.

Example:
    >>> import torch
    >>> from refsr_blocks.layers import PixelShuffleUpsampler, ResBlock
    >>> x = torch.rand(1, 8, 5, 6)
    >>> ResBlock(8)(x).shape, PixelShuffleUpsampler(8, 4)(x).shape
    (torch.Size([1, 8, 5, 6]), torch.Size([1, 8, 20, 24]))
"""

from __future__ import annotations

import math

from torch import Tensor, nn

__all__ = ["PixelShuffleUpsampler", "ResBlock", "conv"]


def conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    """A convolution padded so that stride 1 keeps the size (odd ``kernel_size``)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2)


class ResBlock(nn.Module):
    """conv → ReLU → conv, plus the input (no batch norm, as in EDSR/MDSR). B×C×H×W → same."""

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels, kernel_size),
            nn.ReLU(inplace=True),
            conv(channels, channels, kernel_size),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class PixelShuffleUpsampler(nn.Sequential):
    """Upsampling by ``scale`` with conv + pixel shuffle: log2(scale) ×2 stages, or one ×3.

    Shapes: B×C×H×W → B×C×(scale·H)×(scale·W).
    """

    def __init__(self, channels: int, scale: int) -> None:
        layers: list[nn.Module] = []
        if scale == 3:
            layers += [conv(channels, 9 * channels, 3), nn.PixelShuffle(3)]
        elif scale >= 2 and scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [conv(channels, 4 * channels, 3), nn.PixelShuffle(2)]
        else:
            raise ValueError(f"pixel-shuffle upsampling supports 2, 3 and powers of 2, got {scale}")
        super().__init__(*layers)
