"""Layers shared by components.

- :mod:`~refsr_blocks.layers.blocks`: same-size convolutions, :class:`ResBlock`,
  :class:`PixelShuffleUpsampler` (MDSR's parts, for any SR network).
- :class:`FewOutputConv2d`: ``nn.Conv2d`` with 2-3 output channels (flow heads, image output)
  and a faster CPU path, same parameters and state_dict keys.
- :class:`PrepackedConv2d`, :class:`PrepackedConvTranspose2d`: weight-heavy convolutions on
  small maps (FlowNetS's deep layers), whose weight is kept in oneDNN's layout between calls.
- :func:`use_fast_layers` / :func:`use_plain_layers`: models are built from plain ``nn``
  convolutions; the inference path swaps in the fast classes above (same state_dict).
"""

from . import prepacked
from .blocks import PixelShuffleUpsampler, ResBlock, conv
from .few_output import FewOutputConv2d
from .prepacked import PrepackedConv2d, PrepackedConvTranspose2d, flop_formulas
from .swap import use_fast_layers, use_plain_layers

__all__ = [
    "FewOutputConv2d",
    "PixelShuffleUpsampler",
    "PrepackedConv2d",
    "PrepackedConvTranspose2d",
    "ResBlock",
    "conv",
    "flop_formulas",
    "prepacked",
    "use_fast_layers",
    "use_plain_layers",
]
