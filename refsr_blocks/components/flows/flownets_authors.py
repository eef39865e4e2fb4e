"""FlowNetS+ as the CrossNet authors' released code builds it (htzheng/ECCV2018_CrossNet_RefSR).

The contracting path is FlowNetS's (ten convs with leaky ReLU 0.1, down to 1/64). The
expanding path differs from NVIDIA's FlowNetS and from this library's
:class:`~refsr_blocks.components.flows.flownets.FlowNetSPlus`:

- the transposed conv from 1/64 to 1/32 (``deconv5``) has 256 filters (FlowNetS: 512), and
  the three finest ones (to 1/4, 1/2 and full resolution) have 64 each;
- the flow upsamplings are transposed convs *with* a bias;
- the full-resolution skip connection is the raw reference image (no conv on the pair);
- at full resolution, two 7×7 convs with SELU (16 filters) come before the flow head;
- the input pair is used as is (images in [0, 1], no mean subtracted).

Every level k = 0..6 has a flow head; its output is in pixels of level k (the authors warp
level-k features with it directly), so no ÷20 scaling is involved.

Internal layout, coarse to fine (``s_k`` the contracting feature of level k, ``s_0`` the
reference image)::

    x_6    = s_6                                    flow_6 = predict[6](x_6)
    x_k    = [s_k, deconv[k](x_{k+1}), upflow[k](flow_{k+1})]   k = 5..0
    flow_k = predict[k](x_k)                        k = 5..1
    flow_0 = predict[0](refine(x_0))
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...core.registry import register_component
from ...ops.flow import crop_to, level_size, pad_to_multiple
from ..conventions import usual_bounds
from .flownets import COARSEST, CONTRACTING, FLOWNETS_SUPPORT  # the contracting path is FlowNetS's

__all__ = ["AuthorsFlowNetSPlus"]

#: Filters of the transposed conv that brings level k+1 features to level k.
DECONV_CHANNELS = {5: 256, 4: 256, 3: 128, 2: 64, 1: 64, 0: 64}
#: Filters of the two 7×7 SELU convs before the full-resolution flow head.
REFINE_CHANNELS = 16


@register_component("flow", "flownets_authors")
class AuthorsFlowNetSPlus(nn.Module):
    """The authors' FlowNetS+: flow heads at every level from 1/64 to full resolution.

    Args:
        scales: number of pyramid levels returned, finest first (1 to 7; CrossNet: 4).
        in_channels: channels of each input image.

    Shapes: ``target``, ``ref`` B×C×H×W (any H, W; padded to a multiple of 64 inside) → a list
    of ``scales`` flows, level k B×2×ceil(H/2^k)×ceil(W/2^k), in pixels of level k, with
    ``target[p] ≈ ref[p + flow[p]]``.

    Example:
        >>> net = AuthorsFlowNetSPlus(scales=2)
        >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 40, 70), torch.rand(1, 3, 40, 70))]
        [(1, 2, 40, 70), (1, 2, 20, 35)]
    """

    SUPPORT = FLOWNETS_SUPPORT  # the same family: padded to 64 inside

    # scales: one flow head per level from full resolution to 1/64 (the constructor's own limit).
    PARAM_BOUNDS = usual_bounds("in_channels", scales=(1, COARSEST + 1))

    def __init__(self, scales: int = 4, in_channels: int = 3) -> None:
        super().__init__()
        if not 1 <= scales <= COARSEST + 1:
            raise ValueError(f"scales must be between 1 and {COARSEST + 1}, got {scales}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be positive, got {in_channels}")
        self.scales = scales
        layers: dict[str, nn.Module] = {}
        self._level_of: dict[str, int] = {}
        skip_channels = {0: in_channels}
        prev, level = 2 * in_channels, 0
        for name, out, kernel, stride in CONTRACTING:
            layers[name] = nn.Sequential(
                nn.Conv2d(prev, out, kernel, stride, padding=kernel // 2), nn.LeakyReLU(0.1, inplace=True)
            )
            prev, level = out, level + (stride == 2)
            skip_channels[level] = out
            self._level_of[name] = level
        self.contracting = nn.ModuleDict(layers)

        self.predict = nn.ModuleDict({str(COARSEST): nn.Conv2d(skip_channels[COARSEST], 2, 3, padding=1)})
        self.deconv, self.upflow = nn.ModuleDict(), nn.ModuleDict()
        concat = skip_channels[COARSEST]
        for k in range(COARSEST - 1, -1, -1):
            self.deconv[str(k)] = nn.Sequential(
                nn.ConvTranspose2d(concat, DECONV_CHANNELS[k], 4, 2, 1), nn.LeakyReLU(0.1, inplace=True)
            )
            self.upflow[str(k)] = nn.ConvTranspose2d(2, 2, 4, 2, 1)
            concat = skip_channels[k] + DECONV_CHANNELS[k] + 2
            if k > 0:
                self.predict[str(k)] = nn.Conv2d(concat, 2, 3, padding=1)
        self.refine = nn.Sequential(
            nn.Conv2d(concat, REFINE_CHANNELS, 7, padding=3),
            nn.SELU(inplace=True),
            nn.Conv2d(REFINE_CHANNELS, REFINE_CHANNELS, 7, padding=3),
            nn.SELU(inplace=True),
        )
        self.predict["0"] = nn.Conv2d(REFINE_CHANNELS, 2, 3, padding=1)

    def forward(self, target: Tensor, ref: Tensor) -> list[Tensor]:
        """Flows aligning ``ref`` to ``target``, finest first (see the class docstring)."""
        if target.shape != ref.shape or target.ndim != 4:
            raise ValueError(
                f"target {tuple(target.shape)} and ref {tuple(ref.shape)} must be B×C×H×W of the same shape"
            )
        pair, size = pad_to_multiple(torch.cat((target, ref), 1), 2**COARSEST)
        c = target.shape[1]
        skips: dict[int, Tensor] = {0: pair[:, c:]}
        x = pair
        for name, layer in self.contracting.items():
            x = layer(x)
            skips[self._level_of[name]] = x

        flow = self.predict[str(COARSEST)](x)
        flows = {COARSEST: flow}
        for k in range(COARSEST - 1, -1, -1):
            x = torch.cat((skips[k], self.deconv[str(k)](x), self.upflow[str(k)](flow)), 1)
            flow = self.predict[str(k)](self.refine(x) if k == 0 else x)
            flows[k] = flow
        return [crop_to(flows[k], level_size(*size, k)) for k in range(self.scales)]
