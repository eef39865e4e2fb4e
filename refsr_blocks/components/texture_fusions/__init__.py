"""Texture fusion networks (kind ``texture_fusion``): ``fusion(lr, textures, confidence)`` → image.

``lr`` is B×C×h×w; ``textures`` lists the aligned reference features finest first (level k
at ``2^(L-1-k)·(h, w)``, L levels, the coarsest on the LR grid); ``confidence`` lists the
soft attention per level (B×1×same size, or ``None``: full confidence). The output is
B×out_channels×(s·h)×(s·w) with s = 2^(L-1).
"""

from .csfi import CrossScaleFusion

__all__ = ["CrossScaleFusion"]
