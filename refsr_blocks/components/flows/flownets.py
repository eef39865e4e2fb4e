"""FlowNetS (Dosovitskiy et al., ICCV 2015) and CrossNet's FlowNetS+.

FlowNetS stacks the two images as 6 channels, contracts them to 1/64 with strided convs
and expands back with transposed convs, predicting a flow at every level from 1/64 to 1/4;
finer levels are bilinear upsamplings of the 1/4 flow. FlowNetS+ (CrossNet, Sec. 3.1) adds
two more expanding stages with skip connections, so flow is *predicted* at 1/2 and at full
resolution.

Internal layout of one expanding stage at level ``k`` (coarse to fine)::

    concat_k = [contracting features_k, deconv(concat_{k+1}), upflow(flow_{k+1})]
    flow_k   = predict_flow_k(concat_k)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...core.registry import register_component
from ...core.support import Support
from ...ops.flow import crop_to, level_size, pad_to_multiple, resize_flow
from ..conventions import usual_bounds

__all__ = ["FlowNetS", "FlowNetSPlus"]

#: Contracting path: (out_channels, kernel, stride) per conv; the level is 1 + number of
#: stride-2 convs so far. Channel counts are FlowNetS's, before the width multiplier.
CONTRACTING = (
    ("conv1", 64, 7, 2),
    ("conv2", 128, 5, 2),
    ("conv3", 256, 5, 2),
    ("conv3_1", 256, 3, 1),
    ("conv4", 512, 3, 2),
    ("conv4_1", 512, 3, 1),
    ("conv5", 512, 3, 2),
    ("conv5_1", 512, 3, 1),
    ("conv6", 1024, 3, 2),
    ("conv6_1", 1024, 3, 1),
)
#: Output channels of the transposed conv that brings level k+1 features to level k.
DECONV_CHANNELS = {5: 512, 4: 256, 3: 128, 2: 64, 1: 32, 0: 16}
#: The coarsest level (1/64) and hence the padding multiple.
COARSEST = 6

#: What the FlowNetS family supports (it pads inputs to a multiple of 2**COARSEST inside).
FLOWNETS_SUPPORT = Support(
    dtypes=("fp32", "bf16", "fp16"),
    onnx=True,
    torch_export=True,
    size_multiple=2**COARSEST,
    notes="fp16: CUDA only",
)
#: Width of FlowNetS+'s full-resolution skip features (a stride-1 conv on the input pair).
FULL_RES_CHANNELS = 32


# Plain nn layers: the inference path swaps in the CPU fast twins (refsr_blocks.layers.swap), the
# packed-weight convolutions for the deep layers (millions of weights on tiny maps) among them.
def conv_lrelu(in_ch: int, out_ch: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2),
        nn.LeakyReLU(0.1, inplace=True),
    )


def deconv_lrelu(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1), nn.LeakyReLU(0.1, inplace=True))


class _FlowNetSBase(nn.Module):
    """Shared FlowNetS body; ``finest_predicted`` is the finest level with a flow head."""

    PARAM_BOUNDS = usual_bounds("scales in_channels", width=(0.001, 8.0))

    finest_predicted: int = 2
    SUPPORT = FLOWNETS_SUPPORT

    def __init__(self, scales: int = 4, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        if not 1 <= scales <= COARSEST + 1:
            raise ValueError(f"scales must be between 1 and {COARSEST + 1}, got {scales}")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        self.scales = scales
        ch = lambda c: max(8, round(c * width))  # noqa: E731 - tiny local helper

        # Contracting path; a level's skip feature is the output of its last conv.
        layers, level_channels = [], {}
        self._level_of: dict[str, int] = {}  # conv name -> pyramid level of its output
        prev, level = 2 * in_channels, 0
        for name, out, kernel, stride in CONTRACTING:
            layers.append((name, conv_lrelu(prev, ch(out), kernel, stride)))
            prev, level = ch(out), level + (stride == 2)
            level_channels[level] = prev
            self._level_of[name] = level
        self.contracting = nn.ModuleDict(layers)
        if self.finest_predicted == 0:
            self.full_res = conv_lrelu(2 * in_channels, FULL_RES_CHANNELS, 3, 1)
            level_channels[0] = FULL_RES_CHANNELS

        # Expanding path, coarse to fine.
        # Flow heads have 2 output channels (the inference path makes them FewOutputConv2d).
        self.predict = nn.ModuleDict({str(COARSEST): nn.Conv2d(level_channels[COARSEST], 2, 3, padding=1)})
        self.deconv, self.upflow = nn.ModuleDict(), nn.ModuleDict()
        concat = level_channels[COARSEST]
        for k in range(COARSEST - 1, self.finest_predicted - 1, -1):
            up = ch(DECONV_CHANNELS[k])
            self.deconv[str(k)] = deconv_lrelu(concat, up)
            self.upflow[str(k)] = nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=False)
            concat = level_channels[k] + up + 2
            self.predict[str(k)] = nn.Conv2d(concat, 2, 3, padding=1)

    def forward(self, target: Tensor, ref: Tensor) -> list[Tensor]:
        """Flows aligning ``ref`` to ``target``.

        Args:
            target, ref: B×C×H×W, any H and W.

        Returns:
            ``scales`` flows, finest first; level k is B×2×ceil(H/2^k)×ceil(W/2^k).
        """
        if target.shape != ref.shape:
            raise ValueError(f"target {tuple(target.shape)} and ref {tuple(ref.shape)} must match")
        pair, size = pad_to_multiple(torch.cat((target, ref), 1) - 0.5, 2**COARSEST)

        skips: dict[int, Tensor] = {}
        x = pair
        for name, layer in self.contracting.items():
            x = layer(x)
            skips[self._level_of[name]] = x
        if self.finest_predicted == 0:
            skips[0] = self.full_res(pair)

        flows: dict[int, Tensor] = {COARSEST: self.predict[str(COARSEST)](x)}
        features = x
        for k in range(COARSEST - 1, self.finest_predicted - 1, -1):
            features = torch.cat((skips[k], self.deconv[str(k)](features), self.upflow[str(k)](flows[k + 1])), 1)
            flows[k] = self.predict[str(k)](features)

        out = []
        for k in range(self.scales):
            h, w = level_size(*size, k)
            if k in flows:
                out.append(crop_to(flows[k], (h, w)))
            else:  # finer than the finest prediction: bilinear upsampling of the padded flow
                padded = level_size(*pair.shape[-2:], k)
                out.append(crop_to(resize_flow(flows[self.finest_predicted], padded), (h, w)))
        return out


@register_component("flow", "flownets")
class FlowNetS(_FlowNetSBase):
    """FlowNetS: flow heads from 1/64 down to 1/4; levels 0 and 1 are upsampled from 1/4.

    Args:
        scales: number of pyramid levels returned (1 to 7).
        in_channels: channels of each input image.
        width: multiplier on every channel count (1.0 is FlowNetS, ~38M parameters).
    """

    finest_predicted = 2


@register_component("flow", "flownets_plus")
class FlowNetSPlus(_FlowNetSBase):
    """FlowNetS+ (CrossNet): FlowNetS with two more expanding stages, predicting to full size.

    The extra stages take skip connections from the first strided conv (1/2) and from a
    stride-1 conv on the input pair (full resolution). Arguments as :class:`FlowNetS`.
    """

    finest_predicted = 0
