"""What many components declare alike: the usual ranges of shared parameters, the support of conv
stacks, architectures registered under their own names.

A parameter name that means the same thing across components (``in_channels``: image
channels; ``scales``: pyramid levels) gets one range here, so a spec is held to the same limit
whichever component reads it; a component names the usual ones it takes and adds its own::

    PARAM_BOUNDS = usual_bounds("scales channels", convs_per_level=(1, 16))

Example:
    >>> usual_bounds("in_channels upscale", upscale=(1, 16))
    {'in_channels': (1, 64), 'upscale': (1, 16)}
"""

from __future__ import annotations

from ..core.registry import register_component
from ..core.spec import Architecture
from ..core.support import Support

__all__ = ["CONV_SUPPORT", "USUAL_BOUNDS", "register_architecture", "usual_bounds"]

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


def register_architecture(architecture: Architecture) -> Architecture:
    """Register ``architecture`` as the ``model`` component of its own name (what ``build_model`` builds)."""
    return register_component("model", architecture.name, architecture)
