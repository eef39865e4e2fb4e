"""Running trained models: tiled whole-image inference and the fast inference runtime.

- :mod:`~refsr_blocks.inference.tiling`: :func:`super_resolve` over overlapping windows;
- :mod:`~refsr_blocks.inference.runtime`: eval mode, channels_last, ``inference_mode``,
  autocast and optional ``torch.compile``.
"""

from .runtime import inference_context, optimize_for_inference, run
from .tiling import count_tiles, default_windowing, super_resolve

__all__ = [
    "count_tiles",
    "default_windowing",
    "inference_context",
    "optimize_for_inference",
    "run",
    "super_resolve",
]
