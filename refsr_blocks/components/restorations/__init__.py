"""Restoration networks (kind ``restoration``): the image from the LR, reference textures and a correspondence.

==========================  ==============================================================
name                        how
==========================  ==============================================================
``c2_dynamic_aggregation``  C2-Matching's: per level, coarsest first, modulated deformable
                            aggregation of the textures placed by the correspondence, then
                            residual blocks and a ×2 pixel shuffle
``datsr_rfa``               DATSR's: a U-Net over the levels; per level, deformable attention
                            placed by the correspondence (learned offsets bounded, modulation
                            scaled by the matching score), then residual Swin groups
==========================  ==============================================================

A restoration network takes ``(lr, textures, correspondence)``: the LR image B×C×h×w, one
texture pyramid per reference (finest first, at the reference's own size) and a
:class:`~refsr_blocks.ops.correspondence.Correspondence` on the LR grid; it returns
B×C×(s·h)×(s·w). Unlike an aligner followed by a fusion, the aggregation at each level
depends on the restoration's features at that level.
"""

from .c2_aggregation import C2Restoration, tap_displacements
from .datsr_rfa import DatsrAggregation

__all__ = ["C2Restoration", "DatsrAggregation", "tap_displacements"]
