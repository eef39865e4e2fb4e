"""EDSR-PyTorch's MDSR (sanghyun-son/EDSR-PyTorch, ``mdsr-*.pt``) into this library's ``mdsr`` upsampler.

Conventions of the source:

- pixel values in 0–255 (``rgb_range=255``), the DIV2K mean subtracted by a 1×1 conv
  (``sub_mean``, weight identity, bias −255·mean) and added back (``add_mean``);
- module names ``head.0``, ``pre_process.<i>`` and ``upsample.<i>`` indexed by the position of
  the scale in its training list (``--scale 2+3+4``), ``body.<j>``, ``tail.0``.

This library's MDSR works in [0, 1] with the same mean. Every layer is a convolution and every
non-linearity a ReLU, so scaling the input by 1/255 scales every feature by 1/255 when every
bias is scaled too: weights are copied, biases divided by 255, and the outputs agree (within
float rounding). The scales are read from the upsampling convs (one 9·C conv: ×3; n 4·C convs:
×2^n).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..components.upsamplers.mdsr import RGB_MEAN
from ..core.build import build_model
from ._common import ConversionError, check_consumed, load_state_dict, read_state_dict, save_converted

__all__ = ["FORMAT", "convert", "convert_state_dict"]

FORMAT = "edsr_mdsr"


def _scales(state: Mapping[str, Tensor], channels: int) -> list[int]:
    """The scale of each ``upsample.<i>`` branch, in the source's order."""
    convs: dict[int, list[Tensor]] = {}
    for key, value in state.items():
        m = re.fullmatch(r"upsample\.(\d+)\.(\d+)\.weight", key)
        if m:
            convs.setdefault(int(m.group(1)), []).append(value)
    if not convs or sorted(convs) != list(range(len(convs))):
        raise ConversionError(f"{FORMAT}: no upsample.<i> branches found (indices {sorted(convs)})")
    scales = []
    for i in range(len(convs)):
        outs = [int(w.shape[0]) for w in convs[i]]
        if outs == [9 * channels]:
            scales.append(3)
        elif outs and all(o == 4 * channels for o in outs):
            scales.append(2 ** len(outs))
        else:
            raise ConversionError(f"{FORMAT}: upsample.{i} has convs with {outs} outputs; not an MDSR upsampler")
    return scales


def _check_mean_shift(state: Mapping[str, Tensor], rgb_range: float) -> list[str]:
    """Check ``sub_mean``/``add_mean`` are the DIV2K mean shift with unit std; return their keys."""
    used = []
    for name, sign in (("sub_mean", -1.0), ("add_mean", 1.0)):
        if f"{name}.weight" not in state:
            continue
        weight, bias = state[f"{name}.weight"].float(), state[f"{name}.bias"].float()
        used += [f"{name}.weight", f"{name}.bias"]
        if weight.shape != (3, 3, 1, 1) or not torch.allclose(weight.view(3, 3), torch.eye(3), atol=1e-6):
            raise ConversionError(
                f"{FORMAT}: {name} is not an identity 1×1 conv (an rgb_std other than 1 is not supported)"
            )
        mean = sign * bias / rgb_range
        if not torch.allclose(mean, torch.tensor(RGB_MEAN), atol=1e-4):
            raise ConversionError(
                f"{FORMAT}: {name} shifts by the mean {[round(float(v), 4) for v in mean]} (with rgb_range={rgb_range}); "
                f"this library's MDSR uses {list(RGB_MEAN)}. Is rgb_range right?"
            )
    return used


def convert_state_dict(
    state: Mapping[str, Tensor], rgb_range: float = 255.0
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Convert an EDSR-PyTorch MDSR state dict.

    Args:
        state: the source tensors (``head.0.weight``, ``pre_process.0.0.body.0.weight``, ...).
        rgb_range: the pixel range the source was trained with (255 for the released models).

    Returns:
        ``(params, tensors)``: the constructor arguments of :class:`~refsr_blocks.components.upsamplers.mdsr.MDSR`
        (``num_blocks``, ``channels`` and ``scales``, the factors in the source's order) and its
        state dict.

    Raises:
        ConversionError: a tensor is missing, has an unexpected shape, or is left over.
    """
    if not rgb_range > 0:
        raise ConversionError(f"{FORMAT}: rgb_range must be positive, got {rgb_range!r}")
    if "head.0.weight" not in state:
        raise ConversionError(f"{FORMAT}: missing tensor 'head.0.weight'; not an EDSR-PyTorch MDSR state dict")
    channels, colors = int(state["head.0.weight"].shape[0]), int(state["head.0.weight"].shape[1])
    if colors != 3:
        raise ConversionError(f"{FORMAT}: the source takes {colors} colour channels; only RGB (3) is supported")
    num_blocks = 0
    while f"body.{num_blocks}.body.0.weight" in state:
        num_blocks += 1
    if num_blocks == 0 or f"body.{num_blocks}.weight" not in state:
        raise ConversionError(f"{FORMAT}: the body must be residual blocks then one conv (found {num_blocks} blocks)")
    scales = _scales(state, channels)
    used = _check_mean_shift(state, rgb_range)

    out: dict[str, Tensor] = {}

    def copy(src: str, dst: str) -> None:
        for suffix in ("weight", "bias"):
            key = f"{src}.{suffix}"
            if key not in state:
                raise ConversionError(f"{FORMAT}: missing tensor {key!r}")
            value = state[key].detach().to(torch.float32).clone()
            out[f"{dst}.{suffix}"] = value / rgb_range if suffix == "bias" else value
            used.append(key)

    copy("head.0", "head")
    for i, scale in enumerate(scales):
        for block in (0, 1):
            for conv in (0, 2):
                copy(f"pre_process.{i}.{block}.body.{conv}", f"pre_process.{scale}.{block}.body.{conv}")
        stages = 1 if scale == 3 else int(math.log2(scale))
        for stage in range(stages):
            copy(f"upsample.{i}.{2 * stage}", f"upsample.{scale}.{2 * stage}")
    for j in range(num_blocks):
        for conv in (0, 2):
            copy(f"body.{j}.body.{conv}", f"body.{j}.body.{conv}")
    copy(f"body.{num_blocks}", f"body.{num_blocks}")
    copy("tail.0", "tail")
    check_consumed(state, used, FORMAT)
    return {"num_blocks": num_blocks, "channels": channels, "scales": scales}, out


def convert(
    source: str | Path,
    output: str | Path,
    *,
    model: str | Mapping[str, Any] = "crossnet",
    upscale: int | None = None,
    rgb_range: float = 255.0,
    seed: int = 0,
) -> Path:
    """Convert an EDSR-PyTorch ``mdsr-*.pt`` into the ``upsampler`` of a refsr-blocks checkpoint.

    Args:
        source: the ``.pt`` file (read with ``torch.load(weights_only=True)``).
        output: the ``.safetensors`` checkpoint to write.
        model: the preset, spec file or spec dict whose ``upsampler`` slot receives the MDSR
            (its upsampler is set to ``mdsr`` with the source's depth, width and scales); the other
            slots keep their initialisation, seeded by ``seed``.
        upscale: the model's factor; default 4 when the source holds ×4, else its first scale.
        rgb_range: the source's pixel range (255).
        seed: seeds the initialisation of the slots that are not converted.

    Returns:
        The path written.

    Example:
        >>> convert("MDSR.pt", "crossnet_mdsr.safetensors")  # doctest: +SKIP
    """
    state = read_state_dict(source, FORMAT)
    params, tensors = convert_state_dict(state, rgb_range)
    scales = params.pop("scales")
    if upscale is None:
        upscale = 4 if 4 in scales else scales[0]
    if upscale not in scales:
        raise ConversionError(f"{FORMAT}: upscale={upscale} is not among the source's scales {scales}")
    upsampler = {"name": "mdsr", "params": {**params, "extra_scales": [s for s in scales if s != upscale]}}
    torch.manual_seed(seed)
    net = build_model(model, upscale=upscale, upsampler=upsampler)
    load_state_dict(net.upsampler, tensors, FORMAT)
    return save_converted(net, output, source, FORMAT, "upsampler")
