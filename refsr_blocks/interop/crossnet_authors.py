"""The CrossNet authors' released checkpoint (htzheng/ECCV2018_CrossNet_RefSR, ``CP*.pth``) into ``crossnet_authors``.

Their ``MultiscaleWarpingNet`` saves ``torch.save(net.state_dict())`` with three sub-modules:
``FlowNet`` (their FlowNetS+), ``Encoder`` (shared by both images) and ``UNet_decoder_2``.
Every tensor maps to one of the ``crossnet_authors`` preset unchanged: both work in [0, 1], and
their flows are already in pixels of each level. Their unused second post-fusion conv goes to
``decoder.unused`` (kept, never run) or is dropped when the target model leaves it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ..components.flows.flownets_authors import CONTRACTING
from ._common import check_consumed, read_state_dict, rename_layers, save_whole_model

__all__ = ["FORMAT", "convert", "convert_state_dict", "key_map"]

FORMAT = "crossnet_authors"


def key_map(unused_conv: bool = True) -> dict[str, str]:
    """Module names of the authors' network → module names of the ``crossnet_authors`` model.

    Each entry stands for ``.weight`` and ``.bias``. With ``unused_conv=False`` their second
    post-fusion conv maps to ``""`` (dropped).
    """
    names: dict[str, str] = {}
    for name, *_ in CONTRACTING:
        names[f"FlowNet.{name}.0"] = f"aligner.flow.contracting.{name}.0"
    names["FlowNet.flow6.0"] = "aligner.flow.predict.6"
    for k in range(5, -1, -1):
        names[f"FlowNet.flow{k + 1}_up"] = f"aligner.flow.upflow.{k}"
        names[f"FlowNet.deconv{k}.0"] = f"aligner.flow.deconv.{k}.0"
        if k > 0:
            names[f"FlowNet.flow{k}.0"] = f"aligner.flow.predict.{k}"
    names["FlowNet.concat0_conv1.0"] = "aligner.flow.refine.0"
    names["FlowNet.concat0_conv2.0"] = "aligner.flow.refine.2"
    names["FlowNet.flow_12.0"] = "aligner.flow.predict.0"
    names["Encoder.layer_f.0"] = "lr_encoder.stem.0"
    for k in range(1, 5):
        names[f"Encoder.conv{k}.0"] = f"lr_encoder.levels.{k - 1}.0"
    for k in (4, 3, 2):
        names[f"UNet_decoder_2.warp_deconv{k}.0"] = f"decoder.up.{k - 2}.0"
    names["UNet_decoder_2.post_fusion1.0"] = "decoder.post_fusion.0"
    names["UNet_decoder_2.post_fusion2.0"] = "decoder.unused.0" if unused_conv else ""
    names["UNet_decoder_2.final.0"] = "decoder.output"
    return names


def convert_state_dict(state: Mapping[str, Tensor], unused_conv: bool = True) -> dict[str, Tensor]:
    """Rename the authors' tensors to the ``crossnet_authors`` model's (values unchanged).

    Args:
        state: their ``MultiscaleWarpingNet`` state dict (``FlowNet.conv1.0.weight``, ...).
        unused_conv: keep their second post-fusion conv (the preset's default) or drop it.

    Raises:
        ConversionError: a tensor is missing or left over.
    """
    out, used = rename_layers(state, key_map(unused_conv), FORMAT, "the authors' MultiscaleWarpingNet")
    check_consumed(state, used, FORMAT)
    return out


def convert(source: str | Path, output: str | Path, *, model: str | Mapping[str, Any] = "crossnet_authors") -> Path:
    """Convert the authors' ``.pth`` into a ``crossnet_authors`` checkpoint (every tensor converted).

    Args:
        source: their checkpoint (read with ``torch.load(weights_only=True)``).
        output: the ``.safetensors`` checkpoint to write.
        model: the target preset or spec: ``crossnet_authors`` or a variant of it (for example with
            ``decoder.unused_conv`` false, which drops the unused conv).

    Returns:
        The path written.

    Example:
        >>> convert("CP195000.pth", "crossnet_authors.safetensors")  # doctest: +SKIP
    """
    state = read_state_dict(source, FORMAT)

    def tensors_for(net: nn.Module) -> dict[str, Tensor]:
        return convert_state_dict(state, unused_conv=getattr(net.decoder, "unused", None) is not None)

    return save_whole_model(model, output, source, FORMAT, tensors_for)
