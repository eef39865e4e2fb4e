"""Running trained models: one call from images to a result, tiled inference, the fast runtime, export.

- :mod:`~refsr_blocks.inference.predictor`: :class:`Predictor` and :func:`super_resolve_images`
  (paths, PIL, numpy or tensors in; default weights, fast path, tiling, clamping; an image out);
- :mod:`~refsr_blocks.inference.tiling`: :func:`super_resolve` over overlapping windows;
- :mod:`~refsr_blocks.inference.runtime`: eval mode, fast layers, channels_last, ``inference_mode``,
  autocast and optional ``torch.compile``;
- :mod:`~refsr_blocks.inference.export`: ONNX (opset 17) and ``torch.export``.
"""

from .predictor import DeviceError, Predictor, super_resolve_images
from .runtime import inference_context, optimize_for_inference, run
from .tiling import count_tiles, default_windowing, super_resolve

__all__ = [
    "DeviceError",
    "Predictor",
    "count_tiles",
    "default_windowing",
    "inference_context",
    "optimize_for_inference",
    "run",
    "super_resolve",
    "super_resolve_images",
]
