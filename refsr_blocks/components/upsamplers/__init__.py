"""Single-image SR upsamplers: ``upsampler(lr)`` maps B×C×h×w to B×C×(s·h)×(s·w)."""

from .bicubic import BicubicUpsampler
from .mdsr import MDSR

__all__ = ["MDSR", "BicubicUpsampler"]
