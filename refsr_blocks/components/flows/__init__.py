"""Flow estimators: ``flow(target, ref)`` returns ``scales`` flows, finest first.

Level ``k`` is B×2×ceil(H/2^k)×ceil(W/2^k) in pixels of that level, and aligns ``ref`` to
``target`` by backward warping: ``target[p] ≈ ref[p + flow[p]]``.
"""

from .flownets import FlowNetS, FlowNetSPlus
from .raft import RAFTSmall

__all__ = ["FlowNetS", "FlowNetSPlus", "RAFTSmall"]
