"""Correspondences (kind ``correspondence``): where each LR pixel is found in K references of any size.

=================  ==============================================================
name               how
=================  ==============================================================
``c2_contrastive`` C2-Matching's: contrastive VGG16-layout features, chunked 3×3 cosine
                   patch matching jointly over the references; frozen (a hard choice)
=================  ==============================================================

A correspondence takes ``(target, refs)`` (the upsampled LR image B×C×H×W and a list of K
images B×C×H_r×W_r) and returns a
:class:`~refsr_blocks.ops.correspondence.Correspondence` on a grid
``stride`` times coarser than the target. Restoration networks (kind ``restoration``) and the
``correspondence_warp`` aligner read it.
"""

from ...ops.correspondence import Correspondence, colocated
from .c2_contrastive import C2ContrastiveCorrespondence

__all__ = ["C2ContrastiveCorrespondence", "Correspondence", "colocated"]
