"""MASA-SR's released weights (dvlab-research/MASA-SR) into a ``masa_sr`` checkpoint.

Their ``MASA`` network (``models/archs/MASA_arch.py``) is saved as ``torch.save(net.state_dict())``
(``masa_rec.pth``, ``masa.pth``; a ``module.`` prefix from DataParallel is dropped as their
loader does): ``enc.*`` (the encoder: ``conv_L1`` … ``conv_L3`` and ``blk_L1`` … ``blk_L3``) and
``decoder.*`` (``conv_L3`` … ``conv_L1`` with ``blk_L3`` … ``blk_L1``, ``merge_warp_x1``,
``blk_x1``, ``dram_x2``, ``blk_x2``, ``dram_x4``, ``blk_x4``, ``conv_out`` and the shared
``pAda``).

Their network works in BGR: their loaders read images with ``cv2.imread`` and never convert
them, and their test code flips the output's channels before saving it. The ``masa_sr`` model
takes and returns RGB, so the input channels of the first conv (``enc.conv_L1``) and the
output channels of the last (``decoder.conv_out``) are reversed; every other tensor is kept
as it is, under its new name. (The rest of the network sees only features, and the bicubic
LR↑ treats each channel alike.)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ._common import ConversionError, as_state_dict, check_consumed, read_torch_file, rename_layers, save_whole_model

__all__ = ["FORMAT", "convert", "convert_state_dict", "key_map"]

FORMAT = "masa_sr"

#: Their tensors whose image-channel axis is reversed (BGR → RGB), and that axis.
_IMAGE_CHANNEL_AXIS = {"enc.conv_L1.weight": 1, "decoder.conv_out.weight": 0, "decoder.conv_out.bias": 0}

#: Their dual residual aggregation's convs → the ``DualResidualAggregation`` module names.
_DRAM = {
    "conv_down_a": "down_ref",
    "conv_up_a": "up_ref",
    "conv_down_b": "down_features",
    "conv_up_b": "up_features",
    "conv_cat": "fuse",
}


def _residual(src: str, dst: str, count: int) -> dict[str, str]:
    return {
        f"{src}.{i}.{conv}": f"{dst}.{i}.body.{mine}"
        for i in range(count)
        for conv, mine in (("conv1", "0"), ("conv2", "2"))
    }


def key_map(
    encoder_blocks: tuple[int, int, int] = (4, 4, 4),
    lr_blocks: tuple[int, int, int] = (2, 2, 2),
    stage_blocks: tuple[int, int, int] = (12, 8, 4),
) -> dict[str, str]:
    """Their module names → the ``masa_sr`` model's (each stands for ``.weight`` and ``.bias``).

    Block counts: the encoder's per level (finest first), the decoder's per LR level
    (coarsest first) and per output level (×1, ×2, ×4), as released.
    """
    names: dict[str, str] = {}
    for k, count in enumerate(encoder_blocks):
        names[f"enc.conv_L{k + 1}"] = f"encoder.convs.{k}"
        names |= _residual(f"enc.blk_L{k + 1}", f"encoder.blocks.{k}", count)
    for j, count in enumerate(lr_blocks):  # their L3 (coarsest) first
        names[f"decoder.conv_L{3 - j}"] = f"decoder.lr_convs.{j}"
        names |= _residual(f"decoder.blk_L{3 - j}", f"decoder.lr_blocks.{j}", count)
    names["decoder.merge_warp_x1"] = "decoder.merge"
    for j, (factor, count) in enumerate(zip((1, 2, 4), stage_blocks, strict=True)):
        names |= _residual(f"decoder.blk_x{factor}", f"decoder.stage_blocks.{j}", count)
        if factor > 1:
            for theirs, mine in _DRAM.items():
                names[f"decoder.dram_x{factor}.{theirs}"] = f"decoder.aggregations.{j - 1}.{mine}"
    names["decoder.pAda.conv_shared.0"] = "decoder.adaptation.shared.0"
    names["decoder.pAda.conv_gamma"] = "decoder.adaptation.gamma"
    names["decoder.pAda.conv_beta"] = "decoder.adaptation.beta"
    names["decoder.conv_out"] = "decoder.out"
    return names


def convert_state_dict(state: Mapping[str, Tensor], **blocks: Any) -> dict[str, Tensor]:
    """Rename their tensors to the ``masa_sr`` model's, their BGR image channels made RGB.

    Args:
        state: their ``MASA`` state dict (``module.`` prefixes allowed).
        blocks: block counts for :func:`key_map` (default: as released).

    Raises:
        ConversionError: a tensor is missing, or the file holds one this network does not have.
    """
    state = {k.removeprefix("module."): v for k, v in state.items()}
    # Their first and last convs read and write BGR: flipped on their image-channel axis, RGB.
    state.update({k: state[k].flip(axis) for k, axis in _IMAGE_CHANNEL_AXIS.items() if k in state})
    out, used = rename_layers(state, key_map(**blocks), FORMAT, "MASA-SR's MASA network")
    check_consumed(state, used, FORMAT)
    return out


def convert(source: str | Path, output: str | Path, *, model: str | Mapping[str, Any] = "masa_sr") -> Path:
    """Convert their released ``masa_rec.pth`` (or ``masa.pth``) into a ``masa_sr`` checkpoint.

    Args:
        source: their network's state dict file.
        output: the ``.safetensors`` checkpoint to write.
        model: the target preset or spec (``masa_sr`` or a variant with the same layout).

    Returns:
        The path written.

    Example:
        >>> convert("masa_rec.pth", "masa_sr.safetensors")  # doctest: +SKIP
    """
    obj = read_torch_file(source)
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    state = as_state_dict(obj, f"{FORMAT} {Path(source).name}")

    def tensors_for(net: nn.Module) -> dict[str, Tensor]:
        blocks = {
            "encoder_blocks": tuple(len(b) for b in net.encoder.blocks),
            "lr_blocks": tuple(len(b) for b in net.decoder.lr_blocks),
            "stage_blocks": tuple(len(b) for b in net.decoder.stage_blocks),
        }
        if len(blocks["stage_blocks"]) != 3:
            raise ConversionError(f"{FORMAT}: their network is ×4; the target model is ×{net.upscale}")
        return convert_state_dict(state, **blocks)

    return save_whole_model(model, output, source, FORMAT, tensors_for)
