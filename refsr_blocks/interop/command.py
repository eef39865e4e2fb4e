"""``refsr-blocks convert FORMAT SOURCE -o OUTPUT``: foreign weights into a refsr-blocks checkpoint.

The options are added by :func:`add_convert_arguments` and carried out by :func:`run_convert`,
so the main command line embeds them as a sub-parser (as it does for ``train``).

Formats:

- ``crossnet_authors``: the CrossNet authors' ``CP*.pth`` into the ``crossnet_authors`` preset;
- ``edsr_mdsr``: EDSR-PyTorch's ``mdsr-*.pt`` into the ``mdsr`` upsampler of ``--model``
  (default ``crossnet``; ``--upscale`` picks the factor);
- ``flownet2_flownets``: flownet2-pytorch's ``FlowNet2-S_checkpoint.pth.tar`` into the
  ``flownets`` (or ``flownets_plus``) flow of ``--model`` (default ``crossnet_flownets``).
- ``c2_matching``: C2-Matching's ``c2_matching_restoration.pth`` with their
  ``feature_extraction.pth`` (``--extractor``) and torchvision's ImageNet VGG19
  (``--vgg19``; both default to files of those names beside SOURCE) into ``c2_matching``;
- ``datsr``: DATSR's ``restoration_mse.pth`` (or ``restoration_gan.pth``) with the same two
  companion files into the ``datsr`` preset.
- ``ttsr``: TTSR's ``TTSR.pt`` (or ``TTSR-rec.pt``) into the ``ttsr_authors`` preset.
- ``masa_sr``: MASA-SR's ``masa_rec.pth`` (or ``masa.pth``) into the ``masa_sr`` preset.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import CONVERTERS, c2_matching, crossnet_authors, datsr, edsr_mdsr, flownet2_flownets, masa_sr, ttsr
from ._common import ConversionError

__all__ = ["DESCRIPTION", "add_convert_arguments", "run_convert"]

DESCRIPTION = (
    "Convert weights trained elsewhere (the CrossNet authors' checkpoint, EDSR-PyTorch's MDSR, "
    "flownet2-pytorch's FlowNetS) into a refsr-blocks checkpoint (.safetensors with its spec). "
    "The source is read with torch.load(weights_only=True): a file holding anything but tensors "
    "and plain containers is refused."
)


def add_convert_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the conversion options to ``parser`` (for embedding in another command line)."""
    parser.add_argument("format", choices=sorted(CONVERTERS), help="the source's format")
    parser.add_argument("source", type=Path, help="the weight file to convert (.pth, .pt, .pth.tar)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .safetensors checkpoint to write")
    parser.add_argument(
        "--model",
        default=None,
        help="target preset or spec file (default: crossnet_authors, crossnet or crossnet_flownets by format)",
    )
    parser.add_argument(
        "--upscale", type=int, default=None, help="edsr_mdsr: the factor of the model (default: 4 if the source has it)"
    )
    parser.add_argument(
        "--extractor",
        type=Path,
        default=None,
        help="c2_matching, datsr: their feature_extraction.pth (default: beside SOURCE)",
    )
    parser.add_argument(
        "--vgg19",
        type=Path,
        default=None,
        help="c2_matching, datsr: torchvision's vgg19-dcbb9e9d.pth (default: beside SOURCE)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the slots that are not converted (default 0)")
    parser.add_argument("--force", action="store_true", help="replace OUTPUT if it exists (default: refuse)")
    return parser


def run_convert(args: argparse.Namespace) -> int:
    """Convert as the options of :func:`add_convert_arguments` say; print the result; return 0.

    Raises:
        ConversionError: the source cannot be converted (a :class:`~refsr_blocks.core.errors.RefSRError`
            for the caller to report on one line).
        SpecError: the ``--model`` spec is invalid.
    """
    fmt = args.format
    if args.upscale is not None and fmt != edsr_mdsr.FORMAT:
        raise ConversionError(f"--upscale applies to edsr_mdsr only (the {fmt} target's factor comes from --model)")
    if (args.extractor is not None or args.vgg19 is not None) and fmt not in (c2_matching.FORMAT, datsr.FORMAT):
        raise ConversionError(f"--extractor and --vgg19 apply to c2_matching and datsr only (got format {fmt})")
    if args.output.exists() and not args.force:
        raise ConversionError(f"{str(args.output)!r} already exists: choose another -o, or pass --force to replace it")
    if fmt == crossnet_authors.FORMAT:
        out = crossnet_authors.convert(args.source, args.output, model=args.model or "crossnet_authors")
    elif fmt == c2_matching.FORMAT:
        out = c2_matching.convert(
            args.source, args.output, extractor=args.extractor, vgg19=args.vgg19, model=args.model or "c2_matching"
        )
    elif fmt == datsr.FORMAT:
        out = datsr.convert(
            args.source, args.output, extractor=args.extractor, vgg19=args.vgg19, model=args.model or "datsr"
        )
    elif fmt == ttsr.FORMAT:
        out = ttsr.convert(args.source, args.output, model=args.model or "ttsr_authors")
    elif fmt == masa_sr.FORMAT:
        out = masa_sr.convert(args.source, args.output, model=args.model or "masa_sr")
    elif fmt == edsr_mdsr.FORMAT:
        out = edsr_mdsr.convert(
            args.source, args.output, model=args.model or "crossnet", upscale=args.upscale, seed=args.seed
        )
    else:
        out = flownet2_flownets.convert(
            args.source, args.output, model=args.model or "crossnet_flownets", seed=args.seed
        )
    print(f"converted {args.source} ({fmt}) -> {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m refsr_blocks.interop.command``: the same options without the main command line."""
    parser = add_convert_arguments(argparse.ArgumentParser(prog="refsr-blocks convert", description=DESCRIPTION))
    return run_convert(parser.parse_args(argv))


if __name__ == "__main__":
    import sys

    from ..core.errors import RefSRError

    try:
        sys.exit(main())
    except RefSRError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
