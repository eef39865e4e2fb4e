"""NVIDIA flownet2-pytorch's FlowNetS (``FlowNet2-S_checkpoint.pth.tar``) into ``flownets`` or ``flownets_plus``.

Conventions of the source (``networks/FlowNetS.py`` and ``models.FlowNet2S``):

- module names ``conv1`` … ``conv6_1`` (``.0`` the conv), ``deconv5`` … ``deconv2``,
  ``predict_flow6`` … ``predict_flow2`` and ``upsampled_flow6_to_5`` … ``upsampled_flow3_to_2``;
  the file wraps them in ``{"state_dict": ..., "epoch": ..., "best_EPE": ...}``;
- every flow head predicts the flow in *full-resolution* pixels divided by ``div_flow = 20``
  (``FlowNet2S`` multiplies the 1/4-resolution prediction by 20 and upsamples it bilinearly);
- the input is RGB (the converted Caffe checkpoints already reflect the BGR→RGB swap), minus
  the per-channel mean of the pair, divided by 255.

This library's flow estimators return level k in pixels of level k. Raw head output ``r_k``
therefore becomes ``r_k · 20 / 2^k``: the head's weight and bias are multiplied by
``c_k = 20 / 2^k``, and the transposed conv that feeds flow k+1 into level k (no bias) is
divided by ``c_{k+1}``, so the features it produces are unchanged. The contracting and
expanding convs are copied as they are.

What is not converted: the input normalisation. This library's FlowNetS subtracts 0.5 from
both images; FlowNet2S subtracts the per-channel mean of the pair, computed per input. The
two agree exactly when that mean is 0.5 and differ by a constant per-channel offset otherwise
(fine-tuning absorbs it; there is no weight change that reproduces a data-dependent mean).
FlowNetS+'s two extra stages (levels 1 and 0, and the full-resolution skip conv) have no
source: they keep their initialisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..components.flows.flownets import CONTRACTING
from ..core.build import build_model
from ._common import ConversionError, check_consumed, read_state_dict, save_converted, take

__all__ = ["DIV_FLOW", "FORMAT", "convert", "convert_state_dict"]

FORMAT = "flownet2_flownets"
#: flownet2-pytorch's flow scaling: heads predict full-resolution pixels / 20.
DIV_FLOW = 20.0
#: Levels with a flow head in FlowNetS (1/64 to 1/4).
LEVELS = (6, 5, 4, 3, 2)


def convert_state_dict(state: Mapping[str, Tensor], div_flow: float = DIV_FLOW) -> dict[str, Tensor]:
    """Convert a flownet2-pytorch FlowNetS (FlowNet2S, no batch norm) state dict.

    Args:
        state: the source tensors (``conv1.0.weight``, ``predict_flow6.weight``, ...).
        div_flow: the source's flow divisor (20).

    Returns:
        Tensors for :class:`~refsr_blocks.components.flows.flownets.FlowNetS` (``width=1``, all of
        them) or FlowNetSPlus (all but levels 1 and 0 and ``full_res``), keys without prefix.

    Raises:
        ConversionError: batch-norm layers (FlowNetS with ``batchNorm=True``), another input
            size, a missing, misshapen or left-over tensor.
    """
    if any(k.endswith("running_mean") for k in state):
        raise ConversionError(
            f"{FORMAT}: the source has batch-norm layers (FlowNetS with batchNorm=True); only FlowNet2S "
            "(no batch norm, the released FlowNet2-S checkpoint) is supported"
        )
    if not div_flow > 0:
        raise ConversionError(f"{FORMAT}: div_flow must be positive, got {div_flow!r}")
    if "conv1.0.weight" in state and int(state["conv1.0.weight"].shape[1]) != 6:
        raise ConversionError(
            f"{FORMAT}: conv1 takes {int(state['conv1.0.weight'].shape[1])} channels; only the two-image "
            "FlowNetS (6 channels) is supported"
        )
    out: dict[str, Tensor] = {}
    used: list[str] = []

    def get(key: str) -> Tensor:
        used.append(key)
        return take(state, key, FORMAT)

    for name, *_ in CONTRACTING:
        out[f"contracting.{name}.0.weight"] = get(f"{name}.0.weight")
        out[f"contracting.{name}.0.bias"] = get(f"{name}.0.bias")
    for k in LEVELS:
        c_k = div_flow / 2**k
        out[f"predict.{k}.weight"] = get(f"predict_flow{k}.weight") * c_k
        out[f"predict.{k}.bias"] = get(f"predict_flow{k}.bias") * c_k
        if k < 6:
            out[f"deconv.{k}.0.weight"] = get(f"deconv{k}.0.weight")
            out[f"deconv.{k}.0.bias"] = get(f"deconv{k}.0.bias")
            out[f"upflow.{k}.weight"] = get(f"upsampled_flow{k + 1}_to_{k}.weight") / (div_flow / 2 ** (k + 1))
    check_consumed(state, used, FORMAT)
    return out


def convert(
    source: str | Path,
    output: str | Path,
    *,
    model: str | Mapping[str, Any] = "crossnet_flownets",
    div_flow: float = DIV_FLOW,
    seed: int = 0,
) -> Path:
    """Convert a flownet2-pytorch FlowNetS checkpoint into the ``flow`` slot of a refsr-blocks checkpoint.

    Args:
        source: the ``.pth.tar`` file (read with ``torch.load(weights_only=True)``).
        output: the ``.safetensors`` checkpoint to write.
        model: a preset, spec file or spec dict whose ``flow`` is ``flownets`` (every tensor
            converted) or ``flownets_plus`` (all but its two extra stages) at ``width=1``;
            default ``crossnet_flownets``. Other slots keep their initialisation, seeded by ``seed``.
        div_flow: the source's flow divisor (20).
        seed: seeds the initialisation of what is not converted.

    Returns:
        The path written.

    Example:
        >>> convert("FlowNet2-S_checkpoint.pth.tar", "crossnet_flownets.safetensors")  # doctest: +SKIP
    """
    state = read_state_dict(source, FORMAT)
    tensors = convert_state_dict(state, div_flow)
    torch.manual_seed(seed)
    net = build_model(model)
    flow = net.aligner.flow
    name = net.spec["components"]["flow"]["name"]
    if name not in ("flownets", "flownets_plus"):
        raise ConversionError(
            f"{FORMAT}: the model's flow is {name!r}; FlowNetS converts into 'flownets' or 'flownets_plus'"
        )
    target = flow.state_dict()
    wrong = {
        k: (tuple(v.shape), tuple(target[k].shape))
        for k, v in tensors.items()
        if k in target and v.shape != target[k].shape
    }
    missing = sorted(set(tensors) - set(target))
    if wrong or missing:
        raise ConversionError(
            f"{FORMAT}: the model's {name} does not have FlowNetS's layers (width must be 1): "
            f"{dict(list(wrong.items())[:3]) or missing[:3]}"
        )
    flow.load_state_dict(tensors, strict=False)
    slots = "flow" if name == "flownets" else "flow (all but levels 1, 0 and full_res)"
    return save_converted(net, output, source, FORMAT, slots)
