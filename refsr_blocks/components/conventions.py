"""What many components declare alike: the usual ranges of shared parameters, the support of conv
stacks, architectures registered under their own names, the widths of a built encoder's levels and
the texture levels of a ×s network.

A parameter name that means the same thing across components (``in_channels``: image
channels; ``scales``: pyramid levels) gets one range here, so a spec is held to the same limit
whichever component reads it; a component names the usual ones it takes and adds its own::

    PARAM_BOUNDS = usual_bounds("scales channels", convs_per_level=(1, 16))

Example:
    >>> usual_bounds("in_channels upscale", upscale=(1, 16))
    {'in_channels': (1, 64), 'upscale': (1, 16)}
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..core.registry import register_component
from ..core.spec import Architecture
from ..core.support import Support

__all__ = [
    "CONV_SUPPORT",
    "SAMPLING_SUPPORT",
    "USUAL_BOUNDS",
    "pyramid_channels",
    "register_architecture",
    "texture_levels",
    "usual_bounds",
]

#: ``(low, high)``, inclusive, of parameters shared by many components (see docs/specs.md).
USUAL_BOUNDS: dict[str, tuple[int, int]] = {
    "in_channels": (1, 64),  # image channels in
    "out_channels": (1, 64),  # image channels out
    "scales": (1, 8),  # pyramid levels (the encoders go down to 1/128)
    "upscale": (2, 16),  # the super-resolution factor
    "channels": (1, 1024),  # feature width
    "lr_channels": (1, 4096),  # per-level widths of a feature pyramid (the injected encoder widths)
    "ref_channels": (1, 4096),
    "texture_channels": (1, 4096),
    "kernel_size": (1, 15),
    "blocks": (0, 256),  # residual blocks; 0 leaves the stage out
    "offset_groups": (1, 256),  # deformable-convolution groups
    "chunk_size": (1, 10**9),  # positions per matching block; 10**9 is one block (unchunked)
}


def usual_bounds(names: str, **own: tuple[float, float]) -> dict[str, tuple[float, float]]:
    """A ``PARAM_BOUNDS``: the :data:`USUAL_BOUNDS` of ``names`` (separated by spaces), then the
    component's ``own`` ranges.

    An ``own`` range replaces the usual one of the same name (a component that also runs at ×1).

    Raises:
        KeyError: a name has no usual range (give it as an ``own`` range).
    """
    return {**{name: USUAL_BOUNDS[name] for name in names.split()}, **own}


#: Plain convolution stacks (no sampling, no matching), as measured for each that declares it:
#: every precision under autocast (fp16 on CUDA only), ONNX opset 17 and ``torch.export``.
CONV_SUPPORT = Support(dtypes=("fp32", "bf16", "fp16"), onnx=True, torch_export=True, notes="fp16: CUDA only")
#: Support of components that gather at computed positions (feature matching, deformable
#: sampling): fp32 and bf16 autocast (their positions stay in fp32), torch.export, no ONNX; each
#: gives what it measured as ``replace(SAMPLING_SUPPORT, notes=...)``.
SAMPLING_SUPPORT = Support(dtypes=("fp32", "bf16"), onnx=False, torch_export=True)


def register_architecture(architecture: Architecture) -> Architecture:
    """Register ``architecture`` as the ``model`` component of its own name (what ``build_model`` builds)."""
    return register_component("model", architecture.name, architecture)


def pyramid_channels(encoder: nn.Module, levels: int, slot: str) -> list[int]:
    """The channels per level, finest first, of the encoder built for ``slot``, which an
    architecture injects into the components that read its features.

    Raises:
        ValueError: the encoder has no ``out_channels`` with one entry per level.
    """
    channels = getattr(encoder, "out_channels", None)
    if channels is None or len(channels) != levels:
        raise ValueError(f"{slot} must expose out_channels with {levels} entries, got {channels!r}")
    return list(channels)


def texture_levels(texture_channels: Sequence[int], upscale: int) -> int:
    """The texture levels of a ×``upscale`` network that reads textures from the output grid down
    to the LR grid: log2(upscale) + 1, checked against ``texture_channels`` (one entry per level).

    Raises:
        ValueError: ``upscale`` is not a power of two from 2, or the levels do not match it.

    Example:
        >>> texture_levels([64, 128, 256], 4)
        3
    """
    if upscale < 2 or upscale & (upscale - 1):
        raise ValueError(f"upscale must be a power of two (2, 4, 8), got {upscale}")
    levels = upscale.bit_length()  # log2(upscale) + 1
    if len(texture_channels) != levels:
        raise ValueError(
            f"×{upscale} needs textures at {levels} levels (log2(upscale) + 1), got {list(texture_channels)}"
        )
    return levels
