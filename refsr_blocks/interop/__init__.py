"""Weight converters: checkpoints trained elsewhere into refsr-blocks checkpoints.

One module per source, each with ``convert_state_dict`` (tensors in, tensors out) and
``convert`` (a file in, a ``.safetensors`` checkpoint with its spec out); foreign files are read
with ``torch.load(weights_only=True)`` only.

================================  ==========================================  ======================
source                            module                                      into
================================  ==========================================  ======================
CrossNet authors' ``CP*.pth``     :mod:`~refsr_blocks.interop.crossnet_authors`   ``crossnet_authors``
EDSR-PyTorch ``mdsr-*.pt``        :mod:`~refsr_blocks.interop.edsr_mdsr`          the ``mdsr`` upsampler
flownet2-pytorch FlowNet2-S       :mod:`~refsr_blocks.interop.flownet2_flownets`  ``flownets`` / ``flownets_plus``
C2-Matching's three networks      :mod:`~refsr_blocks.interop.c2_matching`        ``c2_matching``
DATSR's three networks            :mod:`~refsr_blocks.interop.datsr`              ``datsr``
TTSR's ``TTSR(-rec).pt``          :mod:`~refsr_blocks.interop.ttsr`               ``ttsr_authors``
MASA-SR's ``masa_rec.pth``        :mod:`~refsr_blocks.interop.masa_sr`            ``masa_sr``
================================  ==========================================  ======================

From the command line: ``refsr-blocks convert FORMAT SOURCE -o OUTPUT`` (see
:mod:`refsr_blocks.interop.command`).
"""

from __future__ import annotations

from . import c2_matching, crossnet_authors, datsr, edsr_mdsr, flownet2_flownets, masa_sr, ttsr
from ._common import ConversionError, read_torch_file

__all__ = [
    "CONVERTERS",
    "ConversionError",
    "c2_matching",
    "crossnet_authors",
    "datsr",
    "edsr_mdsr",
    "flownet2_flownets",
    "masa_sr",
    "read_torch_file",
    "ttsr",
]

#: Source format name → its converter module.
CONVERTERS = {
    c2_matching.FORMAT: c2_matching,
    crossnet_authors.FORMAT: crossnet_authors,
    datsr.FORMAT: datsr,
    edsr_mdsr.FORMAT: edsr_mdsr,
    flownet2_flownets.FORMAT: flownet2_flownets,
    masa_sr.FORMAT: masa_sr,
    ttsr.FORMAT: ttsr,
}
