"""CrossNet's image encoder (Sec. 3.2): one 5×5 conv + ReLU per pyramid level."""

from __future__ import annotations

from torch import Tensor, nn

from ...core.registry import register_component
from ..conventions import CONV_SUPPORT, usual_bounds

__all__ = ["CrossNetEncoder"]


@register_component("encoder", "crossnet")
class CrossNetEncoder(nn.Module):
    """Multi-scale encoder: 5×5 convs, stride 1 at level 0 and stride 2 below.

    Args:
        scales: pyramid levels (4 in the paper).
        in_channels: image channels.
        channels: feature channels at every level (64 in the paper).
        convs_per_level: 5×5 convs per level (1 in the paper; later stride-1 convs
            deepen a level without changing its size).
        kernel_size: convolution size (5 in the paper).

    Shapes: B×in_channels×H×W → list of B×channels×ceil(H/2^k)×ceil(W/2^k), k = 0..scales-1.

    Example:
        >>> import torch
        >>> feats = CrossNetEncoder(scales=3, channels=8)(torch.rand(1, 3, 20, 30))
        >>> [tuple(f.shape) for f in feats]
        [(1, 8, 20, 30), (1, 8, 10, 15), (1, 8, 5, 8)]
    """

    SUPPORT = CONV_SUPPORT

    PARAM_BOUNDS = usual_bounds("scales channels kernel_size", convs_per_level=(1, 16))

    def __init__(
        self, scales: int = 4, in_channels: int = 3, channels: int = 64, convs_per_level: int = 1, kernel_size: int = 5
    ) -> None:
        super().__init__()
        if scales < 1 or channels < 1 or convs_per_level < 1 or kernel_size % 2 == 0:
            raise ValueError(
                "scales, channels and convs_per_level must be positive and kernel_size odd; got "
                f"scales={scales}, channels={channels}, convs_per_level={convs_per_level}, "
                f"kernel_size={kernel_size}"
            )
        pad = kernel_size // 2
        self.levels = nn.ModuleList()
        prev = in_channels
        for level in range(scales):
            layers: list[nn.Module] = []
            for i in range(convs_per_level):
                stride = 2 if level > 0 and i == 0 else 1
                layers += [nn.Conv2d(prev, channels, kernel_size, stride, pad), nn.ReLU(inplace=True)]
                prev = channels
            self.levels.append(nn.Sequential(*layers))
        self.out_channels = [channels] * scales

    def forward(self, image: Tensor) -> list[Tensor]:
        feats, x = [], image
        for level in self.levels:
            x = level(x)
            feats.append(x)
        return feats
