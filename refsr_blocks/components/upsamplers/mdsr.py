"""MDSR, the multi-scale deep SR network (Lim et al., CVPR-W 2017), CrossNet's upsampler.

One network holds several upscale factors: a shared residual body, and for each factor a
pre-processing block (two residual blocks with 5×5 kernels) and an upsampling head. ×8 is
three ×2 pixel-shuffle stages; ×3 one ×3 stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ...core.registry import register_component
from ...layers.blocks import PixelShuffleUpsampler, ResBlock, conv
from ..conventions import CONV_SUPPORT, usual_bounds

__all__ = ["MDSR"]

#: Mean RGB of DIV2K, subtracted at the input and added back at the output (as in EDSR).
RGB_MEAN = (0.4488, 0.4371, 0.4040)
SUPPORTED_SCALES = (2, 3, 4, 8)


@register_component("upsampler", "mdsr")
class MDSR(nn.Module):
    """Multi-scale deep super-resolution network.

    Args:
        scale: the default upscale factor used by ``forward``.
        in_channels: image channels.
        extra_scales: further factors the same network holds (each adds a pre-processing
            block and a head); ``forward(lr, scale=f)`` selects one.
        num_blocks: residual blocks in the shared body (80 in the MDSR paper).
        channels: feature width (64 in the paper).

    Shapes: B×C×h×w → B×C×(s·h)×(s·w).

    Example:
        >>> net = MDSR(scale=4, extra_scales=(2,), num_blocks=2, channels=16)
        >>> net(torch.rand(1, 3, 8, 8)).shape, net(torch.rand(1, 3, 8, 8), scale=2).shape
        (torch.Size([1, 3, 32, 32]), torch.Size([1, 3, 16, 16]))
    """

    SUPPORT = CONV_SUPPORT

    PARAM_BOUNDS = usual_bounds("in_channels channels", extra_scales=(2, 8), num_blocks=(1, 256))

    def __init__(
        self,
        scale: int = 4,
        in_channels: int = 3,
        extra_scales: Sequence[int] = (),
        num_blocks: int = 80,
        channels: int = 64,
    ) -> None:
        super().__init__()
        factors = sorted({int(scale), *map(int, extra_scales)})
        unsupported = [f for f in factors if f not in SUPPORTED_SCALES]
        if unsupported:
            raise ValueError(f"MDSR supports scales {SUPPORTED_SCALES}, got {unsupported}")
        if num_blocks < 1 or channels < 1:
            raise ValueError(f"num_blocks and channels must be positive, got {num_blocks}, {channels}")
        self.scale = int(scale)
        mean = RGB_MEAN if in_channels == 3 else (0.5,) * in_channels
        self.register_buffer("mean", torch.tensor(mean).view(1, in_channels, 1, 1), persistent=False)
        self.head = conv(in_channels, channels, 3)
        self.pre_process = nn.ModuleDict(
            {str(f): nn.Sequential(ResBlock(channels, 5), ResBlock(channels, 5)) for f in factors}
        )
        self.body = nn.Sequential(*(ResBlock(channels) for _ in range(num_blocks)), conv(channels, channels, 3))
        self.upsample = nn.ModuleDict({str(f): PixelShuffleUpsampler(channels, f) for f in factors})
        self.tail = conv(channels, in_channels, 3)

    @property
    def scales(self) -> list[int]:
        """The upscale factors this network holds."""
        return sorted(int(f) for f in self.upsample)

    def forward(self, lr: Tensor, scale: int | None = None) -> Tensor:
        key = str(self.scale if scale is None else scale)
        if key not in self.upsample:
            raise ValueError(f"this MDSR holds scales {self.scales}, not {key}")
        x = self.head(lr - self.mean)
        x = self.pre_process[key](x)
        x = x + self.body(x)
        return self.tail(self.upsample[key](x)) + self.mean
