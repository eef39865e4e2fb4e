"""TTSR's released weights (researchmm/TTSR, ``TTSR.pt`` / ``TTSR-rec.pt``) into a ``ttsr_authors`` checkpoint.

Their trainer saves ``torch.save`` of the ``TTSR`` module's state dict without ``LTE_copy``
(a frozen copy used only by the transferal perceptual loss), so the file holds two parts:

- ``LTE.*``: the learnable texture extractor, VGG19's ``features[0:12]`` split in three
  ``slice``s (conv1_1 at ``slice1.0``; conv1_2, conv2_1 at ``slice2.2``, ``slice2.5``;
  conv2_2, conv3_1 at ``slice3.7``, ``slice3.10``) behind ``sub_mean``, a frozen 1×1 conv
  holding ImageNet's normalisation (the extractor here holds the same constants as buffers);
- ``MainNet.*``: shallow feature extraction (``SFE``), the soft-attention heads
  (``conv11_head``, ``conv22_head``, ``conv33_head``), the residual stages (``RB11``, ``RB21``,
  ``RB22``, ``RB31``–``RB33`` with their ``_tail`` convs), the pixel-shuffle growths
  (``conv12``, ``conv23``), the cross-scale integrations (``ex12`` = CSFI2, ``ex123`` = CSFI3)
  and ``merge_tail``.

Every tensor maps to one of the ``ttsr_authors`` preset with unchanged values, except the
merge convs of CSFI and of the tail, whose input channel blocks are reordered: they
concatenate a branch itself first and then the others, the fusion here concatenates the
branches in scale order.

What the model takes differs from their ``forward(lr, lrsr, ref, refsr)``: they pass images
in [-1, 1] and the data loader supplies ``lrsr`` (LR upsampled ×4 by PIL's bicubic) and
``refsr`` (the reference down ×4 and up again by PIL's bicubic), cropping both images to
multiples of 4 (and padding training references to 160×160). Here the model takes ``lr`` and
any number of references of any size in [0, 1] and makes ``LR↑`` and ``Ref↓↑`` itself with
torch's bicubic (antialiased on the way down), which differs slightly from PIL's; the
[-1, 1] range is applied inside the fusion network (``signed_images``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ._common import ConversionError, check_consumed, read_state_dict, rename_layers, save_whole_model

__all__ = ["FORMAT", "MERGE_ORDERS", "convert", "convert_state_dict", "key_map"]

FORMAT = "ttsr"

#: Their LTE's conv layers (VGG19 ``features`` indices inside each slice) → the texture extractor's.
_LTE_LAYERS = {
    "slice1.0": "levels.0.0",
    "slice2.2": "levels.1.0",
    "slice2.5": "levels.1.3",
    "slice3.7": "levels.2.0",
    "slice3.10": "levels.2.3",
}

#: Their ``MainNet`` modules outside the residual stages → the fusion network's. In CSFI
#: (``ex12``, ``ex123``) and ``merge_tail`` their ``convXY`` brings branch X to branch Y's scale
#: (branches count from 1, the coarsest); ours is ``exchange.<stage>.<src>_<dst>`` counting from 0.
_FUSION_LAYERS = {
    "SFE.conv_head": "head.0",
    "conv11_head": "fuse.0",
    "conv22_head": "fuse.1",
    "conv33_head": "fuse.2",
    "conv12": "grow.0.0",
    "conv23": "grow.1.0",
    "ex12.conv12": "exchange.1.0_1.op",
    "ex12.conv21": "exchange.1.1_0.op.0",
    "ex12.conv_merge1": "merge.1.0",
    "ex12.conv_merge2": "merge.1.1",
    "ex123.conv12": "exchange.2.0_1.op",
    "ex123.conv13": "exchange.2.0_2.op",
    "ex123.conv21": "exchange.2.1_0.op.0",
    "ex123.conv23": "exchange.2.1_2.op",
    "ex123.conv31_1": "exchange.2.2_0.op.0",
    "ex123.conv31_2": "exchange.2.2_0.op.2",
    "ex123.conv32": "exchange.2.2_1.op.0",
    "ex123.conv_merge1": "merge.2.0",
    "ex123.conv_merge2": "merge.2.1",
    "ex123.conv_merge3": "merge.2.2",
    "merge_tail.conv13": "tail_merge.0",
    "merge_tail.conv23": "tail_merge.1",
    "merge_tail.conv_merge": "tail.0",
    "merge_tail.conv_tail1": "tail.2",
    "merge_tail.conv_tail2": "tail.4",
}

#: ImageNet statistics their ``sub_mean`` holds (``rgb_range`` 1): weight ``1/std`` on the
#: diagonal, bias ``-mean/std``.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)

#: For each merge conv whose inputs are concatenated in another order: for each of our input
#: blocks (branches in scale order, coarsest first), the index of the same block in theirs.
MERGE_ORDERS = {
    "MainNet.ex12.conv_merge2": (1, 0),  # theirs cat(x2, x12); ours cat(x12, x2)
    "MainNet.ex123.conv_merge2": (1, 0, 2),  # theirs cat(x2, x12, x32)
    "MainNet.ex123.conv_merge3": (1, 2, 0),  # theirs cat(x3, x13, x23)
    "MainNet.merge_tail.conv_merge": (1, 2, 0),  # theirs cat(x3, x13, x23)
}


def _residual_stage(names: dict[str, str], theirs: str, tail: str, ours: str, blocks: int) -> None:
    for i in range(blocks):
        names[f"{theirs}.{i}.conv1"] = f"{ours}.{i}.body.0"
        names[f"{theirs}.{i}.conv2"] = f"{ours}.{i}.body.2"
    names[tail] = f"{ours}.{blocks}"


def key_map(blocks: tuple[int, int, int, int] = (16, 16, 8, 4)) -> dict[str, str]:
    """Module names of their checkpoint → module names of the ``ttsr_authors`` model (×4).

    Each entry stands for ``.weight`` and ``.bias``.

    Args:
        blocks: their ``num_res_blocks`` (``16+16+8+4`` as released).
    """
    n0, n1, n2, n3 = blocks
    names = {f"LTE.{theirs}": f"extractor.{ours}" for theirs, ours in _LTE_LAYERS.items()}
    m, f = "MainNet", "fusion"
    _residual_stage(names, f"{m}.SFE.RBs", f"{m}.SFE.conv_tail", f"{f}.shallow", n0)
    _residual_stage(names, f"{m}.RB11", f"{m}.conv11_tail", f"{f}.bodies.0.0", n1)
    for b in range(2):
        _residual_stage(names, f"{m}.RB2{b + 1}", f"{m}.conv2{b + 1}_tail", f"{f}.bodies.1.{b}", n2)
    for b in range(3):
        _residual_stage(names, f"{m}.RB3{b + 1}", f"{m}.conv3{b + 1}_tail", f"{f}.bodies.2.{b}", n3)
    names.update({f"{m}.{theirs}": f"{f}.{ours}" for theirs, ours in _FUSION_LAYERS.items()})
    return names


def _reorder_inputs(weight: Tensor, order: tuple[int, ...]) -> Tensor:
    """A conv weight (O×(n·C)×k×k) with its n input blocks of C channels taken in ``order``."""
    blocks = weight.chunk(len(order), dim=1)
    return torch.cat([blocks[i] for i in order], dim=1)


def _check_normalisation(state: Mapping[str, Tensor]) -> None:
    """Their ``sub_mean`` must hold ImageNet's normalisation, the constants the extractor here uses."""
    weight, bias = state.get("LTE.sub_mean.weight"), state.get("LTE.sub_mean.bias")
    if weight is None or bias is None:
        raise ConversionError(f"{FORMAT}: missing tensor 'LTE.sub_mean.weight' or '.bias'; is this TTSR's checkpoint?")
    std, mean = torch.tensor(_STD), torch.tensor(_MEAN)
    expected_w = torch.diag(1 / std).view(3, 3, 1, 1)
    if tuple(weight.shape) != (3, 3, 1, 1) or not (
        torch.allclose(weight.float(), expected_w, atol=1e-5) and torch.allclose(bias.float(), -mean / std, atol=1e-5)
    ):
        raise ConversionError(
            f"{FORMAT}: LTE.sub_mean is not ImageNet's normalisation (rgb_range 1); "
            "the texture extractor here cannot hold another one"
        )


def convert_state_dict(
    state: Mapping[str, Tensor], blocks: tuple[int, int, int, int] = (16, 16, 8, 4)
) -> dict[str, Tensor]:
    """Rename their tensors to the ``ttsr_authors`` model's (values unchanged, merge inputs reordered).

    ``LTE_copy.*`` (the loss's frozen copy, present if the whole module was saved) is ignored.

    Raises:
        ConversionError: a tensor is missing, or the file holds one this network does not have.
    """
    _check_normalisation(state)
    names = key_map(blocks)
    out, used = rename_layers(state, names, FORMAT, "TTSR's checkpoint")
    for src, order in MERGE_ORDERS.items():
        if src in names:
            out[f"{names[src]}.weight"] = _reorder_inputs(out[f"{names[src]}.weight"], order)
    used += ["LTE.sub_mean.weight", "LTE.sub_mean.bias"] + [k for k in state if k.startswith("LTE_copy.")]
    check_consumed(state, used, f"{FORMAT} checkpoint")
    return out


def _blocks(net: Any) -> tuple[int, int, int, int]:
    """The residual blocks per stage of a built ``ttsr`` model (their ``num_res_blocks``).

    Raises:
        ConversionError: the target does not compute as their code (another fusion or scale,
            or a ``ttsr`` spec without the ``ttsr_authors`` settings).
    """
    fusion, aligner = net.fusion, net.aligner
    if getattr(fusion, "stages", None) != 3 or not hasattr(fusion, "signed_images"):
        raise ConversionError(f"{FORMAT}: the target must be a ×4 ttsr model with the ttsr_csfi fusion")
    authors = (
        fusion.signed_images
        and fusion.exchange_relu
        and fusion.skip_around_csfi
        and isinstance(fusion.tail[3], torch.nn.Identity)
        and getattr(aligner, "divide_by_nine", False)
    )
    if not authors:
        raise ConversionError(
            f"{FORMAT}: the target would not compute as their code; use the ttsr_authors preset "
            "(or a spec with its fusion and aligner settings)"
        )
    return (
        len(fusion.shallow) - 1,
        len(fusion.bodies[0][0]) - 1,
        len(fusion.bodies[1][0]) - 1,
        len(fusion.bodies[2][0]) - 1,
    )


def convert(source: str | Path, output: str | Path, *, model: str | Mapping[str, Any] = "ttsr_authors") -> Path:
    """Convert their ``TTSR.pt`` (or ``TTSR-rec.pt``) into a ``ttsr_authors`` checkpoint.

    Args:
        source: their checkpoint.
        output: the ``.safetensors`` checkpoint to write.
        model: the target preset or spec (``ttsr_authors`` or a variant with its layout).

    Returns:
        The path written.

    Example:
        >>> convert("TTSR-rec.pt", "ttsr_rec.safetensors")  # doctest: +SKIP
    """
    state = read_state_dict(source, FORMAT)
    return save_whole_model(model, output, source, FORMAT, lambda net: convert_state_dict(state, _blocks(net)))
