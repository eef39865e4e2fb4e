"""Aligners (kind ``aligner``): reference features brought onto the LR grid, per level.

=======================  ==============================================================
name                     how
=======================  ==============================================================
``flow_warp``            CrossNet's: (pre-alignment shift +) flow estimation + backward warp
``attention``            TTSR's: hard attention transfers the best 3×3 patch of K references
                         of any size, soft attention gives its relevance; chunked matching
``deformable``           modulated deformable convolution (``torchvision.ops.deform_conv2d``)
``match_flow``           scale-space patch matching over each whole reference (any size, K of them), a
                         robust dense field, then flow on the pre-warped reference; per-pixel confidence
``correspondence_warp``  a correspondence network (``c2_contrastive``: C2-Matching's) over K references
                         of any size, each level warped along its matches
=======================  ==============================================================

The call contract is in :mod:`~refsr_blocks.components.aligners.base`; the kind is registered by
:mod:`refsr_blocks.components`, with :class:`refsr_blocks.testing.contracts.AlignerContract` as its conformance class.
"""

from .attention import AttentionAligner
from .base import Aligner
from .correspondence_warp import CorrespondenceWarpAligner
from .deformable import DeformableAligner
from .flow_warp import FlowWarpAligner
from .match_flow import MatchFlowAligner
from .matching import Matches, match_patches, relevance, transfer

__all__ = [
    "Aligner",
    "AttentionAligner",
    "CorrespondenceWarpAligner",
    "DeformableAligner",
    "FlowWarpAligner",
    "MatchFlowAligner",
    "Matches",
    "match_patches",
    "relevance",
    "transfer",
]
