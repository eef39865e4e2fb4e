"""The image encoder of the CrossNet authors' released code (htzheng/ECCV2018_CrossNet_RefSR).

It differs from the paper's encoder (:class:`~refsr_blocks.components.encoders.crossnet.CrossNetEncoder`)
in two ways: the activation is SELU instead of ReLU, and level 0 has two 5×5 convs (an input
conv, then the conv whose output is the level-0 feature). With four levels that is five convs,
and the same encoder serves the upsampled LR image and the reference (``shared_encoder=True``).
"""

from __future__ import annotations

from torch import Tensor, nn

from ...core.registry import register_component
from ..conventions import CONV_SUPPORT, usual_bounds

__all__ = ["AuthorsEncoder"]


def _conv_selu(in_channels: int, out_channels: int, kernel_size: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2), nn.SELU(inplace=True)
    )


@register_component("encoder", "authors")
class AuthorsEncoder(nn.Module):
    """The authors' encoder: a stem conv, then one conv per level (stride 1 at level 0, 2 below), SELU after each.

    Args:
        scales: pyramid levels (4 in CrossNet).
        in_channels: image channels.
        channels: feature channels at every level (64 in CrossNet).
        kernel_size: convolution size (5 in CrossNet), odd.

    Shapes: those of :class:`~refsr_blocks.components.encoders.crossnet.CrossNetEncoder`.

    Example (the same pyramid as CrossNet's encoder, from one conv more: the stem):
        >>> import torch
        >>> enc = AuthorsEncoder(scales=3, channels=8)
        >>> [tuple(f.shape) for f in enc(torch.rand(1, 3, 20, 30))], sum(isinstance(m, nn.Conv2d) for m in enc.modules())
        ([(1, 8, 20, 30), (1, 8, 10, 15), (1, 8, 5, 8)], 4)
    """

    SUPPORT = CONV_SUPPORT

    PARAM_BOUNDS = usual_bounds("scales in_channels channels kernel_size")

    def __init__(self, scales: int = 4, in_channels: int = 3, channels: int = 64, kernel_size: int = 5) -> None:
        super().__init__()
        if scales < 1 or channels < 1 or in_channels < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                "scales, in_channels and channels must be positive and kernel_size odd; got "
                f"scales={scales}, in_channels={in_channels}, channels={channels}, kernel_size={kernel_size}"
            )
        self.stem = _conv_selu(in_channels, channels, kernel_size, 1)
        self.levels = nn.ModuleList(
            _conv_selu(channels, channels, kernel_size, 1 if level == 0 else 2) for level in range(scales)
        )
        self.out_channels = [channels] * scales

    def forward(self, image: Tensor) -> list[Tensor]:
        feats: list[Tensor] = []
        x = self.stem(image)
        for level in self.levels:
            x = level(x)
            feats.append(x)
        return feats
