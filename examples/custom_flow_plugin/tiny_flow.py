"""A tiny flow estimator, registered with refsr-blocks as the ``flow`` component ``tiny_flow``.

Three convolutions predict one flow at 1/4 resolution from the stacked images; the flow
pyramid the ``flow`` contract asks for is that flow resized to every level.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from refsr_blocks import hookimpl
from refsr_blocks.ops import level_size, resize_flow


class TinyFlow(nn.Module):
    """Flow from a 3-layer CNN at 1/4 resolution, resized to ``scales`` levels.

    Args:
        scales: number of flows returned, finest first.
        in_channels: channels of each image.
        width: hidden channels.

    Shapes:
        ``forward(target, ref)``, both B×in_channels×H×W, returns ``scales`` flows; level
        k is B×2×⌈H/2^k⌉×⌈W/2^k⌉ in pixels of level k (channel 0 = x, 1 = y).
    """

    def __init__(self, scales: int = 4, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        self.scales = scales
        self.net = nn.Sequential(
            nn.Conv2d(2 * in_channels, width, 3, stride=2, padding=1),  # 1/2
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),  # 1/4
            nn.ReLU(),
            nn.Conv2d(width, 2, 3, padding=1),  # flow at 1/4, in 1/4-level pixels
        )

    def forward(self, target: Tensor, ref: Tensor) -> list[Tensor]:
        height, width = target.shape[-2:]
        flow = self.net(torch.cat([target, ref], dim=1))
        # resize_flow scales the values with the size, as the flow contract requires
        return [resize_flow(flow, level_size(height, width, k)) for k in range(self.scales)]


@hookimpl
def register_components(registry):
    registry.register("flow", "tiny_flow", TinyFlow)
