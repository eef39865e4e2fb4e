"""The ``crossnet_authors`` preset: CrossNet as the authors' released code builds it.

It assembles the ``crossnet`` architecture from the components of htzheng/ECCV2018_CrossNet_RefSR:
their shared 5-conv SELU encoder (:mod:`~refsr_blocks.components.encoders.authors`), their
FlowNetS+ (:mod:`~refsr_blocks.components.flows.flownets_authors`) and their SELU fusion
decoder with a linear output (:mod:`~refsr_blocks.components.decoders.authors`). There is no
MDSR inside: the authors feed a precomputed upsampling, so use
:meth:`~refsr_blocks.components.models.crossnet.CrossNet.fuse` with it; ``forward`` upsamples
bicubically.

Its parameter count is the authors' 35,183,841, of which 102,464 are their second
post-fusion conv: it is held (so their checkpoint converts tensor for tensor, see
:mod:`refsr_blocks.interop.crossnet_authors`) and skipped in ``forward`` (so the outputs are
theirs). ``build_model("crossnet_authors", **{"decoder.unused_conv": False})`` leaves it out.
"""

from __future__ import annotations

from ...core.spec import register_preset
from ..decoders import authors as _decoder  # noqa: F401 - registers decoder "authors_fusion"
from ..encoders import authors as _encoder  # noqa: F401 - registers encoder "authors"
from ..flows import flownets_authors as _flow  # noqa: F401 - registers flow "flownets_authors"
from . import crossnet as _crossnet  # noqa: F401 - registers the "crossnet" architecture

__all__ = ["AUTHORS_PARAMETERS", "AUTHORS_PRESET", "AUTHORS_UNUSED_PARAMETERS"]

#: Parameters of the authors' MultiscaleWarpingNet (FlowNet, Encoder, UNet_decoder_2).
AUTHORS_PARAMETERS = 35_183_841
#: Parameters of their second post-fusion conv, computed but never used.
AUTHORS_UNUSED_PARAMETERS = 102_464

#: The partial spec of the preset.
AUTHORS_PRESET = {
    "model": "crossnet",
    "params": {"upscale": 4, "scales": 4, "channels": 64, "shared_encoder": True, "residual": False},
    "components": {
        "upsampler": "bicubic",
        "flow": "flownets_authors",
        "lr_encoder": "authors",
        "warper": "bilinear",
        "decoder": {"name": "authors_fusion", "params": {"unused_conv": True}},
    },
}

register_preset(
    "crossnet_authors",
    AUTHORS_PRESET,
    "CrossNet as in the authors' released code: shared SELU encoder, their FlowNetS+, linear output, "
    "no MDSR inside (feed a precomputed upsampling to fuse)",
)
