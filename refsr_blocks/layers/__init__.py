"""Layers shared by components: ``nn.Conv2d`` / ``nn.ConvTranspose2d`` subclasses with the same
parameters and state_dict keys, and faster CPU inference paths.

- :class:`FewOutputConv2d`: convolutions with 2-3 output channels (flow heads, image output).
- :class:`PrepackedConv2d`, :class:`PrepackedConvTranspose2d`: weight-heavy convolutions on
  small maps (FlowNetS's deep layers), whose weight is kept in oneDNN's layout between calls.
"""

from .few_output import FewOutputConv2d
from .prepacked import PrepackedConv2d, PrepackedConvTranspose2d, flop_formulas

__all__ = ["FewOutputConv2d", "PrepackedConv2d", "PrepackedConvTranspose2d", "flop_formulas"]
