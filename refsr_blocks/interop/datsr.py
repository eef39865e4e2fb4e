"""DATSR's released weights (caojiezhang/DATSR) into a ``datsr`` checkpoint.

Their test configuration loads three networks:

- ``restoration_mse.pth`` (or the GAN-trained ``restoration_gan.pth``):
  ``SwinUnetv3RestorationNet``, saved as ``torch.save(net.state_dict())``:
  ``content_extractor.*`` (computed by their forward, never read: kept, frozen) and
  ``dyn_agg_restore.*``: ``unet_head``, then per stage (``down_large``, ``down_medium``,
  ``up_small``, ``up_medium``, ``up_large``) two offset convs, a deformable aggregation
  (``weight``, ``bias``, ``conv_offset_mask``), a head, a Swin body (``patch_embed.norm``,
  ``layers.i.residual_group.blocks.j.*``, ``layers.i.conv``, ``norm``) and a tail →
  the ``restoration`` slot (``datsr_rfa``);
- ``feature_extraction.pth``: C2-Matching's ``ContrasExtractorSep`` → the ``correspondence``
  slot, mapped as the ``c2_matching`` converter maps it;
- torchvision's ImageNet VGG19 (``vgg19-dcbb9e9d.pth``, built with ``pretrained=True`` in
  their ``FlowSimCorrespondenceGenerationArch``, so in none of their files) → the ``extractor``.

Their buffers ``relative_position_index`` and ``attn_mask`` are constants the Swin blocks
compute themselves; they are not copied. Values are unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from . import c2_matching
from ._common import ConversionError, check_consumed, read_state_dict, save_whole_model

__all__ = ["FORMAT", "convert", "convert_state_dict", "restoration_key"]

FORMAT = "datsr"

#: Their stage names → the ``datsr_rfa`` stage at that level (×4: large 0, medium 1, small 2).
_STAGES = {
    "down_large": "down.0",
    "down_medium": "down.1",
    "up_small": "up.2",
    "up_medium": "up.1",
    "up_large": "up.0",
}

#: Their tensors with no counterpart: buffers the Swin blocks recompute.
_CONSTANTS = re.compile(r".*\.(relative_position_index|attn_mask)$")


def restoration_key(name: str) -> str | None:
    """Their restoration tensor ``name`` → the model's, ``None`` for a recomputed buffer.

    Raises:
        ConversionError: a name of no DATSR restoration network.
    """
    if _CONSTANTS.match(name):
        return None
    for pattern, rename in _RULES:
        m = re.fullmatch(pattern, name)
        if m is not None:
            return "restoration." + rename(*m.groups())
    raise ConversionError(f"{FORMAT}: unexpected tensor {name!r}, not part of DATSR's restoration network")


def _content_block(block: str, conv: str, rest: str) -> str:
    return f"content_extractor.{int(block) + 1}.body.{0 if conv == '1' else 2}.{rest}"


def _stage_part(path: str, part: str, size: str, rest: str) -> str:
    stage = _stage(path, size)
    if part == "body":
        return f"{stage}.body.{_body_key(rest)}"
    return f"{stage}.{'fuse' if part == 'head' else 'tail'}.{rest}"


_SIZE = "(large|medium|small)"
_RULES = (
    (r"content_extractor\.conv_first\.(.+)", lambda rest: f"content_extractor.0.{rest}"),
    (r"content_extractor\.body\.(\d+)\.conv([12])\.(.+)", _content_block),
    (r"dyn_agg_restore\.unet_head\.(.+)", lambda rest: f"head.{rest}"),
    (
        rf"dyn_agg_restore\.(down|up)_{_SIZE}_offset_conv([12])\.(.+)",
        lambda path, size, conv, rest: f"{_stage(path, size)}.attention.offset_conv{conv}.{rest}",
    ),
    (
        rf"dyn_agg_restore\.(down|up)_{_SIZE}_dyn_agg\.(.+)",
        lambda path, size, rest: f"{_stage(path, size)}.attention.{rest}",
    ),
    (rf"dyn_agg_restore\.(down|up)_(head|body|tail)_{_SIZE}\.(.+)", _stage_part),
)


def _stage(path: str, size: str) -> str:
    key = f"{path}_{size}"
    if key not in _STAGES:
        raise ConversionError(f"{FORMAT}: no stage {key!r} in DATSR's ×4 restoration network")
    return _STAGES[key]


def _body_key(rest: str) -> str:
    """A name inside their ``SwinBlock`` → the :class:`SwinGroup`'s."""
    if rest.startswith("patch_embed.norm."):
        return "embed_norm." + rest[len("patch_embed.norm.") :]
    m = re.fullmatch(r"layers\.(\d+)\.residual_group\.blocks\.(\d+)\.(.+)", rest)
    if m:
        return f"groups.{m[1]}.blocks.{m[2]}.{m[3]}"
    m = re.fullmatch(r"layers\.(\d+)\.conv\.(.+)", rest)
    if m:
        return f"groups.{m[1]}.conv.{m[2]}"
    if rest.startswith("norm."):
        return rest
    raise ConversionError(f"{FORMAT}: unexpected tensor {rest!r} in a Swin body")


def convert_state_dict(
    restoration: Mapping[str, Tensor], extractor: Mapping[str, Tensor], vgg19: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """Rename their tensors to the ``datsr`` model's (values unchanged).

    Args:
        restoration: their ``SwinUnetv3RestorationNet`` state dict.
        extractor: C2-Matching's ``ContrasExtractorSep`` state dict (their ``feature_extraction.pth``).
        vgg19: torchvision's VGG19 state dict (``features.*``; the deeper layers are not used).

    Raises:
        ConversionError: a tensor is missing, or one is not part of these networks.
    """
    out: dict[str, Tensor] = {}
    for name, value in restoration.items():
        mine = restoration_key(name)
        if mine is not None:
            out[mine] = value.detach().float().clone()
    tensors, used = c2_matching.rename_parts({"extractor": extractor, "vgg19": vgg19}, fmt=FORMAT)
    out.update(tensors)
    check_consumed(extractor, used["extractor"], f"{FORMAT} feature extractor")
    return out


def convert(
    source: str | Path,
    output: str | Path,
    *,
    extractor: str | Path | None = None,
    vgg19: str | Path | None = None,
    model: str | Mapping[str, Any] = "datsr",
) -> Path:
    """Convert their released files into one ``datsr`` checkpoint (every tensor converted).

    Args:
        source: their restoration network (``restoration_mse.pth`` or ``restoration_gan.pth``).
        output: the ``.safetensors`` checkpoint to write.
        extractor, vgg19: C2-Matching's ``feature_extraction.pth`` and torchvision's VGG19, found
            as :func:`~refsr_blocks.interop.c2_matching.companion_files` finds them.
        model: the target preset or spec (``datsr`` or a variant with the same layout).

    Returns:
        The path written.

    Example:
        >>> convert("restoration_mse.pth", "datsr.safetensors")  # doctest: +SKIP
    """
    companions = c2_matching.companion_files(source, extractor, vgg19, FORMAT)
    states = [read_state_dict(p, FORMAT) for p in (source, companions["extractor"], companions["vgg19"])]
    return save_whole_model(model, output, source, FORMAT, lambda net: convert_state_dict(*states))
