"""C2-Matching's released weights (yumingj/C2-Matching) into a ``c2_matching`` checkpoint.

Their test configuration loads three networks:

- ``c2_matching_restoration.pth`` (or ``..._mse.pth``): ``RestorationNet``, saved as
  ``torch.save(net.state_dict())`` (``content_extractor.*`` and ``dyn_agg_restore.*``:
  ``small_*`` at relu3_1, ``medium_*`` at relu2_1, ``large_*`` at relu1_1, each with two
  offset convs, a ``DCN_sep_pre_multi_offset`` (``weight``, ``bias``, ``conv_offset_mask``),
  a head conv, 16 residual blocks and a tail) → the ``restoration`` slot;
- ``feature_extraction.pth``: ``ContrasExtractorSep`` (``feature_extraction_image1.model.conv1_1``
  … ``conv3_1`` for the upsampled LR, ``feature_extraction_image2`` for the reference, plus
  their ImageNet ``mean``/``std`` buffers) → the ``correspondence`` slot;
- torchvision's ImageNet VGG19 (``vgg19-dcbb9e9d.pth``; their ``CorrespondenceGenerationArch``
  builds it with ``pretrained=True``, so it is in none of their files): ``features.0`` …
  ``features.10`` (conv1_1 … conv3_1) → the ``extractor`` slot; the rest of VGG19 is unused.

Values are unchanged: the layouts agree (the deformable convolution's offsets and mask come
out of ``offset_mask`` in their channel order, which the restoration network reads as they do).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ._common import ConversionError, as_state_dict, check_consumed, read_torch_file, rename_layers, save_whole_model

__all__ = ["FORMAT", "companion_files", "convert", "convert_state_dict", "key_map", "rename_parts"]

FORMAT = "c2_matching"

#: Their VGG layer names (conv1_1 … conv3_1) → the texture extractor's module names (``ttsr_lte`` layout).
_VGG_LAYERS = {
    "conv1_1": "levels.0.0",
    "conv1_2": "levels.1.0",
    "conv2_1": "levels.1.3",
    "conv2_2": "levels.2.0",
    "conv3_1": "levels.2.3",
}

#: Indices of those layers in torchvision's ``vgg19().features``.
_TORCHVISION_VGG19 = {"conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7, "conv3_1": 10}

#: Their stage prefixes, coarsest first (the order of the restoration's ``levels``).
_STAGES = ("small", "medium", "large")


def key_map(blocks: int = 16) -> dict[str, str]:
    """Module names of their three networks → module names of the ``c2_matching`` model.

    Each entry stands for ``.weight`` and ``.bias``. Their restoration network's names start
    with ``restoration:``, the contrastive extractor's with ``extractor:`` and torchvision's
    VGG19 with ``vgg19:`` (the file each comes from).
    """
    names: dict[str, str] = {"restoration:content_extractor.conv_first": "restoration.content.0"}
    for i in range(blocks):
        for conv, mine in (("conv1", "0"), ("conv2", "2")):
            names[f"restoration:content_extractor.body.{i}.{conv}"] = f"restoration.content.2.{i}.body.{mine}"
    for j, stage in enumerate(_STAGES):
        src, dst = f"restoration:dyn_agg_restore.{stage}", f"restoration.levels.{j}"
        names[f"{src}_offset_conv1"] = f"{dst}.offsets.0"
        names[f"{src}_offset_conv2"] = f"{dst}.offsets.2"
        names[f"{src}_dyn_agg.conv_offset_mask"] = f"{dst}.offset_mask"
        names[f"{src}_dyn_agg"] = dst  # the deformable kernel: {dst}.weight, {dst}.bias
        names[f"{src.replace(stage, 'head_' + stage)}.0"] = f"{dst}.head.0"
        for i in range(blocks):
            for conv, mine in (("conv1", "0"), ("conv2", "2")):
                names[f"{src.replace(stage, 'body_' + stage)}.{i}.{conv}"] = f"{dst}.body.{i}.body.{mine}"
        names[f"{src.replace(stage, 'tail_' + stage)}.0"] = f"{dst}.tail.0"
    names["restoration:dyn_agg_restore.tail_large.2"] = "restoration.levels.2.tail.2"
    for layer, mine in _VGG_LAYERS.items():
        names[f"extractor:feature_extraction_image1.model.{layer}"] = f"correspondence.query_extractor.{mine}"
        names[f"extractor:feature_extraction_image2.model.{layer}"] = f"correspondence.ref_extractor.{mine}"
        names[f"vgg19:features.{_TORCHVISION_VGG19[layer]}"] = f"extractor.{mine}"
    return names


def _unwrap(obj: Any, what: str) -> dict[str, Tensor]:
    if isinstance(obj, Mapping) and isinstance(obj.get("params"), Mapping):  # BasicSR's later layout
        obj = obj["params"]
    return as_state_dict(obj, what)


def convert_state_dict(
    restoration: Mapping[str, Tensor],
    extractor: Mapping[str, Tensor],
    vgg19: Mapping[str, Tensor],
    blocks: int = 16,
) -> dict[str, Tensor]:
    """Rename their tensors to the ``c2_matching`` model's (values unchanged).

    Args:
        restoration: their ``RestorationNet`` state dict.
        extractor: their ``ContrasExtractorSep`` state dict (the ImageNet ``mean``/``std``
            buffers in it are the constants the model's extractors hold already).
        vgg19: torchvision's VGG19 state dict (``features.*``; ``classifier.*`` and the deeper
            layers are not used).
        blocks: residual blocks per stage (16 as released).

    Raises:
        ConversionError: a tensor is missing, or their restoration or extractor file holds one
            that this network does not have.
    """
    out, used = rename_parts({"restoration": restoration, "extractor": extractor, "vgg19": vgg19}, blocks, FORMAT)
    check_consumed(restoration, used["restoration"], f"{FORMAT} restoration")
    check_consumed(extractor, used["extractor"], f"{FORMAT} feature extractor")
    return out


def rename_parts(
    sources: Mapping[str, Mapping[str, Tensor]], blocks: int = 16, fmt: str = FORMAT
) -> tuple[dict[str, Tensor], dict[str, list[str]]]:
    """The tensors of the parts in ``sources`` (``restoration``, ``extractor``, ``vgg19``; DATSR
    gives the last two) renamed by :func:`key_map`.

    Returns:
        The renamed tensors, and per part the keys read (the extractor's ImageNet ``mean`` and
        ``std`` included: constants the model's extractors hold already).
    """
    names = key_map(blocks)
    out: dict[str, Tensor] = {}
    used: dict[str, list[str]] = {}
    for part, state in sources.items():
        prefix = f"{part}:"
        mine = {src.removeprefix(prefix): dst for src, dst in names.items() if src.startswith(prefix)}
        tensors, used[part] = rename_layers(state, mine, fmt, f"their {part} file")
        out.update(tensors)
    if "extractor" in used:
        used["extractor"] += [f"feature_extraction_image{i}.{b}" for i in (1, 2) for b in ("mean", "std")]
    return out, used


#: The files a restoration network of this family is released with: keyword, default name beside
#: the restoration file, what it is, the command-line option that names it.
_COMPANIONS = (
    ("extractor", "feature_extraction.pth", "their feature extractor", "--extractor"),
    ("vgg19", "vgg19-dcbb9e9d.pth", "torchvision's ImageNet VGG19", "--vgg19"),
)


def companion_files(
    source: str | Path, extractor: str | Path | None, vgg19: str | Path | None, fmt: str = FORMAT
) -> dict[str, Path]:
    """Their ``feature_extraction.pth`` and torchvision's VGG19 (DATSR reads the same two): each the
    path given, else the file of that name beside ``source``.

    Raises:
        ConversionError: one does not exist (the message names the option that gives it).
    """
    given = {"extractor": extractor, "vgg19": vgg19}
    paths = {}
    for key, name, what, option in _COMPANIONS:
        path = Path(given[key]) if given[key] is not None else Path(source).parent / name
        if not path.is_file():
            raise ConversionError(
                f"{fmt} needs {what} ({name}): {str(path)!r} does not exist; pass its path ({option})"
            )
        paths[key] = path
    return paths


def convert(
    source: str | Path,
    output: str | Path,
    *,
    extractor: str | Path | None = None,
    vgg19: str | Path | None = None,
    model: str | Mapping[str, Any] = "c2_matching",
) -> Path:
    """Convert their released files into one ``c2_matching`` checkpoint (every tensor converted).

    Args:
        source: their restoration network (``c2_matching_restoration.pth`` or ``..._mse.pth``).
        output: the ``.safetensors`` checkpoint to write.
        extractor: their ``feature_extraction.pth`` (default: beside ``source``).
        vgg19: torchvision's ``vgg19-dcbb9e9d.pth`` (default: beside ``source``).
        model: the target preset or spec (``c2_matching`` or a variant with the same layout).

    Returns:
        The path written.

    Example:
        >>> convert("c2_matching_restoration.pth", "c2_matching.safetensors")  # doctest: +SKIP
    """
    files = {"restoration": Path(source), **companion_files(source, extractor, vgg19)}
    states = {k: _unwrap(read_torch_file(p), f"{FORMAT} {p.name}") for k, p in files.items()}

    def tensors_for(net: nn.Module) -> dict[str, Tensor]:
        blocks = len(net.restoration.content[2])
        return convert_state_dict(states["restoration"], states["extractor"], states["vgg19"], blocks)

    return save_whole_model(model, output, source, FORMAT, tensors_for)
