"""The CPU fast layers as an opt-in module swap: models are built from ``nn.Conv2d`` / ``nn.ConvTranspose2d``.

:func:`use_fast_layers` changes, in place, the class of each plain convolution of a model to its
fast twin, which is a subclass with the same parameters and buffers, so the ``state_dict``
keys and values are unchanged and a checkpoint loads the same before and after:

- convolutions with few outputs (``out_channels · kernel_height ≤ 16``, stride 1, "same"
  padding: flow heads, the 3-channel image output) become
  :class:`~refsr_blocks.layers.FewOutputConv2d`;
- every other ``nn.Conv2d`` and every ``nn.ConvTranspose2d`` with at least
  :data:`MIN_PACKED_CHANNELS` outputs become :class:`~refsr_blocks.layers.PrepackedConv2d` /
  :class:`~refsr_blocks.layers.PrepackedConvTranspose2d`, but only where the packed operators
  pass their one-time check (:func:`~refsr_blocks.layers.prepacked.packed_dtypes`); otherwise
  they stay plain, after one warning.

The fast twins take their fast path only in CPU inference (no autograd, channels_last) and
run their ``nn`` parent's ``forward`` everywhere else (training, CUDA, ``torch.compile``), so a
swapped model still trains and exports; :func:`use_plain_layers` undoes the swap.
:func:`refsr_blocks.inference.runtime.optimize_for_inference` applies it.

Example:
    >>> from refsr_blocks import build_model
    >>> model = build_model("crossnet_lite")
    >>> keys = list(model.state_dict())
    >>> counts = use_fast_layers(model)
    >>> counts["few_output"], list(model.state_dict()) == keys
    (9, True)
    >>> sum(use_plain_layers(model).values()) == sum(counts.values())
    True
"""

from __future__ import annotations

from torch import nn

from .few_output import FewOutputConv2d, row_split_suits
from .prepacked import PrepackedConv2d, PrepackedConvTranspose2d, _mkldnn_ops_available

__all__ = ["MIN_PACKED_CHANNELS", "use_fast_layers", "use_plain_layers"]

#: Transposed convolutions with fewer outputs than this stay plain (FlowNetS's 2→2 flow upsamplers:
#: nothing to gain from packing a 64-weight kernel).
MIN_PACKED_CHANNELS = 8

_FAST_CLASSES = {FewOutputConv2d: nn.Conv2d, PrepackedConv2d: nn.Conv2d, PrepackedConvTranspose2d: nn.ConvTranspose2d}


def _fast_class(module: nn.Module, packed: bool, few_output: bool) -> type[nn.Module] | None:
    if type(module) is nn.Conv2d:
        if few_output and row_split_suits(module):
            return FewOutputConv2d
        return PrepackedConv2d if packed else None
    if type(module) is nn.ConvTranspose2d and packed and module.out_channels >= MIN_PACKED_CHANNELS:
        return PrepackedConvTranspose2d
    return None


def use_fast_layers(model: nn.Module, *, packed: bool = True, few_output: bool = True) -> dict[str, int]:
    """Swap ``model``'s plain convolutions for their CPU fast twins, in place (see the module docstring).

    Only modules whose type is exactly ``nn.Conv2d`` / ``nn.ConvTranspose2d`` are touched
    (subclasses with their own ``forward`` are left alone). Calling it twice changes nothing.

    Args:
        model: any module.
        packed: swap in the packed-weight convolutions (skipped, after one warning, where the
            private oneDNN operators are missing or fail their check).
        few_output: swap in :class:`~refsr_blocks.layers.FewOutputConv2d` where it suits.

    Returns:
        How many modules became each fast class: ``{"few_output": n, "packed": m}``.
    """
    packed = packed and _mkldnn_ops_available()
    counts = {"few_output": 0, "packed": 0}
    for module in model.modules():
        cls = _fast_class(module, packed, few_output)
        if cls is not None:
            module.__class__ = cls
            counts["few_output" if cls is FewOutputConv2d else "packed"] += 1
    return counts


def use_plain_layers(model: nn.Module) -> dict[str, int]:
    """Undo :func:`use_fast_layers`: every fast twin becomes its ``nn`` parent again (packed copies dropped).

    Returns:
        How many modules of each kind were turned back, as :func:`use_fast_layers` counts them.
    """
    counts = {"few_output": 0, "packed": 0}
    for module in model.modules():
        plain = _FAST_CLASSES.get(type(module))
        if plain is not None:
            counts["few_output" if type(module) is FewOutputConv2d else "packed"] += 1
            module.__dict__.pop("_packed", None)
            module.__class__ = plain
    return counts
