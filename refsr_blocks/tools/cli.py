"""The ``refsr-blocks`` command line.

Subcommands::

    refsr-blocks list [KIND] [--pattern P]            components, architectures and presets
    refsr-blocks spec MODEL [KEY=VALUE ...]           the resolved spec (--format json|yaml)
    refsr-blocks summary MODEL [KEY=VALUE ...]        parameters per component
    refsr-blocks sr --lr L --ref R --out O            super-resolve pairs (files or folders)
    refsr-blocks demo [--checkpoint C]                the shipped pair, bicubic vs CrossNet
    refsr-blocks viz [--checkpoint C | --model M]     pictures of flows, warps, errors
    refsr-blocks plugins                              installed plugins and their components
    refsr-blocks train CONFIG ...                     = python -m refsr_blocks.train
    refsr-blocks eval ...                             = python -m refsr_blocks.evaluation
    refsr-blocks convert FORMAT SOURCE -o OUT         = python -m refsr_blocks.interop.command

Every subcommand is an argparse sub-parser (``train``, ``eval`` and ``convert`` are built from
:func:`refsr_blocks.train.command.add_train_arguments`,
:func:`refsr_blocks.evaluation.command.add_eval_arguments` and
:func:`refsr_blocks.interop.command.add_convert_arguments`), so a malformed command line is
argparse's usage error (exit status 2). A mistake the library detects while running (an
unknown model, an invalid spec or checkpoint, a missing or unreadable image) is a
:class:`~refsr_blocks.core.errors.RefSRError`: it ends with one ``error: ...`` line on stderr and
exit status 2. Any other exception is a bug and surfaces as a traceback.

Importing this module, and ``refsr-blocks --help``, imports no torch-using module: each
command imports what it needs, and the ``train``/``eval``/``convert`` sub-parsers get their
options only when chosen.

Example:
    >>> from refsr_blocks.tools.cli import main
    >>> main(["list", "loss", "--pattern", "charb*"])
    charbonnier  Charbonnier penalty ``mean(sqrt((pred - target)^2 + eps^2))``, CrossNet's loss.
    0
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import assets
from ..core.errors import CheckpointError, InputError, RefSRError, SpecError, did_you_mean

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = ["EXIT_NOTHING_FOUND", "EXIT_OK", "EXIT_USER_ERROR", "CommandError", "build_parser", "main"]

#: Exit statuses of :func:`main` (``train`` adds 3: the loss diverged).
EXIT_OK, EXIT_NOTHING_FOUND, EXIT_USER_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
#: ``list`` accepts this as another name of the ``model`` listing.
PRESET_ALIAS = "preset"


class CommandError(RefSRError):
    """A command cannot run as asked (missing optional part, wrong combination of options)."""


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


# -- list, spec, summary, plugins -----------------------------------------------------------
def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def _print_rows(rows: list[tuple[str, str]], indent: str = "") -> None:
    width = max((len(name) for name, _ in rows), default=0)
    for name, doc in rows:
        print(f"{indent}{name.ljust(width)}  {doc}".rstrip())


def _owner_suffix(owner: str) -> str:
    return "" if owner == "refsr_blocks" else f" [{owner}]"


def _component_doc(kind: str, name: str) -> str:
    """One line about a registered component, with its plugin's name in brackets."""
    from ..core.registry import REGISTRY

    component = REGISTRY.get(kind, name)
    doc = getattr(component.factory, "doc", "") or component.doc  # an Architecture carries its own doc
    return _first_line(doc) + _owner_suffix(component.owner)


def _component_rows(kind: str, pattern: str) -> list[tuple[str, str]]:
    from ..core.registry import REGISTRY

    return [(name, _component_doc(kind, name)) for name in REGISTRY.list(kind, pattern)]


def _model_rows(pattern: str) -> list[tuple[str, str]]:
    """Architectures and presets in one listing, each marked as which it is."""
    from ..core.spec import model_entries

    entries = model_entries(pattern)
    labels = [
        "architecture" if entry.type == "architecture" else f"preset of {entry.architecture}" for entry in entries
    ]
    width = max(map(len, labels), default=0)
    rows = []
    for entry, label in zip(entries, labels):
        doc = _component_doc("model", entry.name) if entry.type == "architecture" else _first_line(entry.doc)
        rows.append((entry.name, f"{label.ljust(width)}  {doc}".rstrip()))
    return rows


def cmd_list(args: argparse.Namespace) -> int:
    """List registered components, architectures and presets.

    List registered components by kind, with a description; the 'model' kind lists architectures
    and presets together, saying which each name is. Exit status 1 when nothing matches.
    """
    from ..core.registry import REGISTRY

    REGISTRY.list("model")  # loads the plugins, which may add kinds
    kinds = list(REGISTRY.kinds)
    if args.kind is None:
        shown = kinds
    elif args.kind in (*kinds, PRESET_ALIAS):
        shown = ["model" if args.kind == PRESET_ALIAS else args.kind]
    else:
        raise CommandError(
            f"unknown kind {args.kind!r}.{did_you_mean(args.kind, kinds)} Kinds: {', '.join(kinds)} "
            f"('model' lists architectures and presets)"
        )
    found = 0
    for kind in shown:
        rows = _model_rows(args.pattern) if kind == "model" else _component_rows(kind, args.pattern)
        found += len(rows)
        if args.kind is None:
            if rows:
                print(f"{kind}:")
                _print_rows(rows, indent="  ")
        else:
            _print_rows(rows)
    if not found:
        what = "components or models" if args.kind is None else f"{args.kind} entries"
        print(f"no {what} match {args.pattern!r}", file=sys.stderr)
        return EXIT_NOTHING_FOUND
    return EXIT_OK


def _override(text: str) -> tuple[str, Any]:
    """argparse type of a ``KEY=VALUE`` override (see :mod:`refsr_blocks.core.overrides`)."""
    from ..core.overrides import parse_override

    try:
        return parse_override(text)
    except SpecError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def cmd_spec(args: argparse.Namespace) -> int:
    """Print the fully resolved spec of a model.

    Validate a model (architecture or preset) or spec file with overrides and print the resolved
    spec, every default filled in. build_model() accepts the output as it is.
    """
    from ..core.build import resolve_source

    spec = resolve_source(args.model, dict(args.overrides or {}))
    if args.format == "yaml":
        import yaml

        print(yaml.safe_dump(spec, sort_keys=False), end="")
    else:
        print(json.dumps(spec, indent=2))
    return EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    """Parameter count per component.

    Build a model and print the number of parameters of each component.
    """
    from ..core.build import build_model
    from .summary import format_summary, summarize

    model = build_model(args.model, **dict(args.overrides))
    print(format_summary(summarize(model)))
    return EXIT_OK


def format_plugin_table(records: Sequence[Any]) -> str:
    """A plain-text table of :func:`~refsr_blocks.core.plugins.list_plugins` records, one plugin per row."""
    if not records:
        return "No refsr_blocks plugins found (entry-point group 'refsr_blocks')."
    rows = [("distribution", "version", "entry point", "kinds", "components", "status")]
    for r in records:
        cells = (r.distribution or f"({r.name}, in-process)", r.version, r.entry_point, ", ".join(r.kinds))
        rows.append((*(c or "-" for c in cells), ", ".join(r.components) or "-", r.status))
    widths = [max(map(len, column)) for column in zip(*rows)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def cmd_plugins(args: argparse.Namespace) -> int:
    """List installed plugins.

    List refsr_blocks plugins: distribution, version, entry point, components, status. Set
    REFSR_BLOCKS_DISABLE_PLUGINS=1 to skip loading them.
    """
    from ..core.plugins import list_plugins

    records = list_plugins()
    print(json.dumps([r.as_dict() for r in records], indent=2) if args.json else format_plugin_table(records))
    return EXIT_OK


# -- images and models ------------------------------------------------------------------------
def _load_image(path: Path, what: str) -> Tensor:
    """The image at ``path`` as a 1×3×H×W float tensor in [0, 1] (the library's one reader).

    Raises:
        DataError: the file is missing, not a regular file, not an image, damaged or too large
            (a RefSRError: one ``error:`` line naming the file).
    """
    from ..data import load_image

    return load_image(path, f"{what} image").unsqueeze(0)


def _load_checkpoint(path: Path | None, device: str) -> nn.Module:
    """The model in ``path`` (the default shipped weights when ``None``, or a shipped name), in eval mode."""
    from ..core.checkpoint import load_model

    if path is None or (not path.exists() and str(path) in assets.list_pretrained()):
        path = assets.pretrained_path(None if path is None else str(path))
        if not path.is_file():
            raise CheckpointError(
                f"the shipped weights ({path.name}) are not in this installation; pass --checkpoint PATH "
                "with a file written by refsr_blocks.save_model (for example the output of `refsr-blocks train`)"
            )
    return load_model(path, map_location=device).to(device).eval()


def _upscale(model: nn.Module) -> int:
    spec = getattr(model, "spec", None) or {}
    scale = spec.get("params", {}).get("upscale") or getattr(model, "upscale", None)
    if not isinstance(scale, int):
        raise CommandError("cannot tell the model's upscale factor (no spec.params.upscale)")
    return scale


def _check_pair_sizes(lr: Tensor, ref: Tensor, scale: int, hr: Tensor | None = None) -> None:
    expected = (lr.shape[-2] * scale, lr.shape[-1] * scale)
    if tuple(ref.shape[-2:]) != expected:
        raise InputError(
            f"the model is ×{scale}: the reference must be {expected[1]}×{expected[0]} (width×height) for a "
            f"{lr.shape[-1]}×{lr.shape[-2]} LR image, got {ref.shape[-1]}×{ref.shape[-2]}"
        )
    if hr is not None and tuple(hr.shape[-2:]) != expected:
        raise InputError(
            f"the ground truth must be {expected[1]}×{expected[0]} (width×height), got {hr.shape[-1]}×{hr.shape[-2]}"
        )


def _super_resolve(model: nn.Module, lr: Tensor, ref: Tensor, args: argparse.Namespace) -> Tensor:
    """:func:`refsr_blocks.inference.tiling.super_resolve` with the ``--window/--stride/--device`` options,
    clamped to [0, 1], on the CPU."""
    from ..inference.tiling import super_resolve

    sr = super_resolve(
        model, lr.to(args.device), ref.to(args.device), window=args.window, stride=args.stride, progress=False
    )
    return sr.float().cpu().clamp_(0.0, 1.0)


def _images_in(paths: Sequence[Path], what: str) -> list[Path]:
    """``paths`` with every folder replaced by its image files (sorted by name)."""
    from ..data.io import IMAGE_EXTENSIONS, check_image_file, list_images

    files: list[Path] = []
    for path in paths:
        with _input_error():
            found = list_images(path) if path.is_dir() else [check_image_file(path, f"{what} image")]
        if not found:
            raise InputError(f"{what} folder {str(path)!r} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
        files += found
    return files


@contextlib.contextmanager
def _input_error() -> Iterator[None]:
    """The data layer's errors about files the user named, as InputErrors (one ``error:`` line)."""
    from ..data.errors import DataError, DataNotFoundError

    try:
        yield
    except (DataError, DataNotFoundError) as err:
        raise InputError(str(err)) from None


def sr_pairs(
    lr: Sequence[Path], ref: Sequence[Path], out: Path, *, force: bool = False
) -> list[tuple[Path, Path, Path]]:
    """The ``(lr, ref, output)`` files of one ``sr`` command, checked before anything is loaded.

    ``--lr`` and ``--ref`` each take files and/or folders. One reference serves every LR
    image; otherwise a reference folder is matched to the LR images by file stem (``a.png``
    with ``a.jpg``), and lists of files pair up in order. ``--out`` is a file for one pair (or
    a folder) and a folder for several, which gets ``<LR stem>.png`` files.

    No output may be an input (by path, symlink or hard link), ``--out`` may not be an input
    folder, and an existing output file is replaced only with ``force``.

    Raises:
        InputError: missing files, unmatched or ambiguous names (``a.png`` and ``a.jpg`` in a
            reference folder), counts that differ, one output file for several pairs, an
            ``--out`` with an unknown image extension, or an output that would replace an
            input or (without ``force``) an existing file.
    """
    lr_files = _images_in(lr, "LR")
    if len(ref) == 1 and ref[0].is_dir() and len(lr_files) > 1:
        by_stem = _by_stem(_images_in(ref, "reference"), "reference")
        missing = [p.name for p in lr_files if p.stem not in by_stem]
        if missing:
            raise InputError(
                f"no reference in {str(ref[0])!r} named like the LR image(s) {', '.join(missing[:5])}"
                + (" ..." if len(missing) > 5 else "")
                + " (a reference folder is matched to the LR images by file stem)"
            )
        ref_files = [by_stem[p.stem] for p in lr_files]
    else:
        ref_files = _images_in(ref, "reference")
        if len(ref_files) == 1:
            ref_files = ref_files * len(lr_files)
        elif len(ref_files) != len(lr_files):
            raise InputError(
                f"{len(lr_files)} LR image(s) but {len(ref_files)} references: pass one, or one per LR image"
            )
    outs = _sr_outputs(lr_files, out)
    _check_outputs(outs, out, [*lr, *ref], [("LR", p) for p in lr_files] + [("reference", p) for p in ref_files], force)
    return list(zip(lr_files, ref_files, outs))


def _by_stem(files: Sequence[Path], what: str) -> dict[str, Path]:
    """``files`` by stem; two with one stem (``a.png``, ``a.jpg``) are an InputError naming both."""
    from ..data.io import images_by_stem

    with _input_error():
        return images_by_stem(files, what)


def _sr_outputs(lr_files: Sequence[Path], out: Path) -> list[Path]:
    """The output file of each LR image: ``out`` itself for one image and an image name, else ``out/<stem>.png``."""
    from ..data.io import IMAGE_EXTENSIONS, writable_image_suffix

    suffix = out.suffix.lower()
    if suffix and not writable_image_suffix(out) and not out.is_dir():
        raise InputError(
            f"--out {str(out)!r} has an unknown image extension {out.suffix!r}: use one of "
            f"{', '.join(IMAGE_EXTENSIONS)}, or a folder (an existing one, or a name without an extension)"
        )
    if len(lr_files) == 1 and suffix and not out.is_dir():
        return [out]
    if len(lr_files) > 1 and suffix and not out.is_dir():
        raise InputError(f"{len(lr_files)} LR images need --out to be a folder, got the file name {str(out)!r}")
    _by_stem(lr_files, "LR")  # a.png and a.jpg would both become <out>/a.png
    return [out / f"{p.stem}.png" for p in lr_files]


def _check_outputs(
    outs: Sequence[Path], out: Path, given: Sequence[Path], inputs: list[tuple[str, Path]], force: bool
) -> None:
    """No output replaces an input, ``--out`` is no input folder, and existing outputs need ``--force``."""
    from ..inference.predictor import _same_file, check_output_file

    for path in given:
        if path.is_dir() and out.is_dir() and _same_file(out, path):
            raise InputError(
                f"--out {str(out)!r} is the input folder {str(path)!r}: the results would replace or mix with "
                "your images; choose another --out folder"
            )
    for path in outs:
        check_output_file(path, inputs, overwrite=force, hint="pass --force to replace it")


def cmd_sr(args: argparse.Namespace) -> int:
    """Super-resolve (LR, reference) pairs, with the shipped weights by default.

    Super-resolve LR images with the help of reference images (s times larger) and write the
    results (8-bit PNG or the --out suffix). --lr and --ref take files or folders: one reference
    serves every LR image, a reference folder is matched to the LR images by file stem, lists
    pair up in order; --out is a file for one pair, a folder for several. Uses
    refsr_blocks.inference.Predictor: the fast layers, 768-pixel tiles with 64-pixel overlaps
    for large images, clamping to [0, 1]; freed memory is kept for reuse by this process (glibc),
    or given back at once when a result is streamed.
    """
    from ..data.io import read_image_size
    from ..inference.predictor import Predictor, resolve_device
    from ..inference.runtime import release_freed_memory, retain_freed_memory

    pairs = sr_pairs(args.lr, args.ref, args.out, force=args.force)  # check the files before loading anything
    device = resolve_device(args.device)  # names the device when it is not available
    predictor = Predictor(
        args.checkpoint, device=device, precision=args.precision, window=args.window, stride=args.stride
    )
    # This process only runs inference: keep freed memory for reuse (glibc) for its whole life, unless
    # a result is streamed: there bounded memory comes first (a retained heap fragments as bands and
    # windows come and go, and raised a streamed run's peak by about half), so freed blocks go back.
    if any(predictor.streams(lr) for lr, _, _ in pairs):
        release_freed_memory()
    else:
        retain_freed_memory()
    for lr, ref, out in pairs:
        predictor.to_file(lr, ref, out, overwrite=args.force)  # large results stream to the file in strips
        height, width = read_image_size(out)
        print(f"wrote {out} ({width}×{height})")
    return EXIT_OK


def _pair_from_args(args: argparse.Namespace, scale: int) -> dict[str, Any]:
    """(lr, ref, hr) from ``--lr/--ref/--hr`` (``lr`` may be made from ``hr``), or a synthetic pair."""
    from ..data import downsample
    from .viz import synthetic_pair

    if args.lr is None and args.ref is None and args.hr is None:
        if args.size[0] % scale or args.size[1] % scale:
            raise InputError(f"--size {args.size[0]} {args.size[1]} must be multiples of the model's scale {scale}")
        pair = synthetic_pair(scale, tuple(args.size), args.seed)
        return {"lr": pair["lr"][None], "ref": pair["ref"][None], "hr": pair["hr"][None], "source": "synthetic"}
    if args.ref is None or (args.lr is None and args.hr is None):
        raise CommandError("pass --ref and --lr (or --hr, from which the LR image is made by ×s downsampling)")
    ref = _load_image(args.ref, "reference")
    hr = _load_image(args.hr, "ground-truth") if args.hr is not None else None
    lr = _load_image(args.lr, "LR") if args.lr is not None else downsample(hr, scale)
    return {"lr": lr, "ref": ref, "hr": hr, "source": "files"}


def cmd_viz(args: argparse.Namespace) -> int:
    """Draw flows, the warped reference, comparisons and error maps.

    Run a model's forward_intermediates(lr, ref) once and write flows.png (flow per level),
    warp.png (the reference warped onto the upsampled LR), comparison.png (bicubic | SISR |
    CrossNet | ground truth) and errors.png (absolute errors as heat maps). Without images, a
    synthetic pair is used.
    """
    import torch

    from ..core.build import build_model
    from .viz import render_intermediates

    if args.checkpoint is not None and (args.model is not None or args.overrides):
        raise CommandError("pass either --checkpoint or --model [KEY=VALUE ...], not both")
    if args.checkpoint is not None:
        model = _load_checkpoint(args.checkpoint, "cpu")
    else:
        torch.manual_seed(args.seed)
        model = build_model(args.model or "crossnet_lite", **dict(args.overrides)).eval()
    if args.checkpoint is None and args.model is None:
        print("note: no --checkpoint: drawing a crossnet_lite with random weights", file=sys.stderr)
    scale = _upscale(model)
    pair = _pair_from_args(args, scale)
    _check_pair_sizes(pair["lr"], pair["ref"], scale, pair["hr"])
    paths = render_intermediates(model, pair["lr"], pair["ref"], args.out_dir, hr=pair["hr"])
    for name, path in paths.items():
        print(f"{name:<11} {path}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Super-resolve the shipped demo pair and compare with bicubic.

    Super-resolve the demo pair shipped with the package using the shipped weights ({weights})
    or --checkpoint, print PSNRs (bicubic, the model with a grey reference, the model) and write
    a picture: LR | reference | bicubic | CrossNet | ground truth, with zoomed crops.
    """
    from ..evaluation.metrics import psnr
    from ..evaluation.references import prepare_reference
    from .viz import bicubic_upsample, refsr_figure, save_png

    model = _load_checkpoint(args.checkpoint, args.device)
    scale = _upscale(model)
    if args.lr is None and args.ref is None and args.hr is None:
        files = assets.demo_pair_files()
        if all(path.is_file() for path in files.values()):
            args.lr, args.ref, args.hr = files["lr"], files["ref"], files["hr"]
        else:
            print("note: the shipped demo pair is not installed; using a synthetic pair", file=sys.stderr)
    pair = _pair_from_args(args, scale)
    if pair["hr"] is None:
        raise CommandError("the demo compares against the ground truth: pass --hr as well")
    lr, ref, hr = pair["lr"], pair["ref"], pair["hr"]
    _check_pair_sizes(lr, ref, scale, hr)
    sr = _super_resolve(model, lr, ref, args)
    # The control: the same model with a reference that carries no information.
    grey = _super_resolve(model, lr, prepare_reference(ref, "blank"), args)
    bicubic = bicubic_upsample(lr, scale)
    results = {"bicubic": bicubic, "CrossNet, grey reference": grey, "CrossNet": sr}
    scores = {name: float(psnr(image, hr)[0]) for name, image in results.items()}
    shown = {"bicubic": bicubic[0], "grey reference": grey[0], "CrossNet": sr[0]}
    save_png(refsr_figure(lr[0], ref[0], shown, hr[0]), args.out)
    print("PSNR against the ground truth (RGB, whole image):")
    for name, value in scores.items():
        print(f"  {name:<25} {value:6.2f} dB" if math.isfinite(value) else f"  {name:<25}    inf dB")
    print(f"  gain over bicubic         {scores['CrossNet'] - scores['bicubic']:+6.2f} dB")
    print(f"  reference gain            {scores['CrossNet'] - scores['CrossNet, grey reference']:+6.2f} dB")
    if args.checkpoint is None:
        for line in assets.pretrained_card().get("headline", []):
            print(line)
    print(f"wrote {args.out}")
    return EXIT_OK


# -- train, eval, convert ----------------------------------------------------------------------
#: Subcommands whose options and handler live in their own module (imported only when chosen):
#: name -> (module, add_arguments function, run function). Each module has a DESCRIPTION.
_DELEGATED = {
    "train": ("refsr_blocks.train.command", "add_train_arguments", "run_train"),
    "eval": ("refsr_blocks.evaluation.command", "add_eval_arguments", "run_eval"),
    "convert": ("refsr_blocks.interop.command", "add_convert_arguments", "run_convert"),
}


def _delegated(command: str) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
    """The ``populate`` and handler of a :data:`_DELEGATED` subcommand, importing its module lazily."""
    module_name, add_name, run_name = _DELEGATED[command]

    def populate(parser: argparse.ArgumentParser) -> None:
        module = importlib.import_module(module_name)
        parser.description = module.DESCRIPTION
        getattr(module, add_name)(parser)

    def handler(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module_name), run_name)(args)

    return populate, handler


# -- parser ------------------------------------------------------------------------------------
class _CommandParser(argparse.ArgumentParser):
    """The parser of one subcommand.

    ``populate`` adds options on first use (parsing or help), so a subcommand whose options
    come from a heavy module (``train``, ``eval``) costs nothing until it is chosen. Leftover
    arguments are this subcommand's usage error, not the top-level parser's.
    """

    def __init__(
        self, *args: Any, populate: Callable[[argparse.ArgumentParser], None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._populate = populate

    def _ensure_populated(self) -> None:
        if self._populate is not None:
            populate, self._populate = self._populate, None
            populate(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        self._ensure_populated()
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    def format_usage(self) -> str:
        self._ensure_populated()
        return super().format_usage()

    def format_help(self) -> str:
        self._ensure_populated()
        return super().format_help()


def _add_window_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--window",
        type=int,
        default=None,
        help="largest tile side in output pixels, a multiple of the scale (default: 768 rounded to one)",
    )
    p.add_argument(
        "--stride",
        type=int,
        default=None,
        help="largest step between tiles in output pixels (default: a 64-pixel overlap)",
    )


def _add_pair_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lr", type=Path, help="low-resolution image (PNG, JPEG, ...)")
    p.add_argument("--ref", type=Path, help="reference image, s times the LR size")
    p.add_argument("--hr", type=Path, help="ground truth; without --lr, the LR image is made from it")
    p.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=(96, 128),
        metavar=("H", "W"),
        help="HR size of the synthetic pair used when no image is given (default: 96 128)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic pair and random weights")


def _command(sub: Any, handler: Callable[[argparse.Namespace], int], **fields: str) -> argparse.ArgumentParser:
    """The subcommand ``handler`` runs, named after it (``cmd_spec``: ``spec``).

    Its docstring is its help: the first line, lower-cased, in the list of commands; the rest,
    with ``fields`` filled in, as the description.
    """
    summary, _, description = inspect.getdoc(handler).partition("\n")
    name = handler.__name__.removeprefix("cmd_")
    help_text = summary[0].lower() + summary[1:].removesuffix(".")
    parser = sub.add_parser(name, help=help_text, description=description.strip().format(**fields))
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``refsr-blocks`` argument parser (building it imports no torch-using module)."""
    from ..core import __version__

    parser = argparse.ArgumentParser(
        prog="refsr-blocks",
        description="Reference-based super-resolution building blocks: list components, inspect "
        "specs, super-resolve images, draw pictures, train and evaluate.",
        epilog="Run `refsr-blocks COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"refsr-blocks {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_CommandParser)

    p = _command(sub, cmd_list)
    p.add_argument(
        "kind",
        nargs="?",
        metavar="KIND",
        help="a component kind (upsampler, flow, warper, ..., plugins may add more), or 'model' "
        "(also 'preset'); default: every kind",
    )
    p.add_argument("--pattern", default="*", help="shell-style wildcard on the name, e.g. 'crossnet*'")

    override_help = "overrides: upscale=8, flow=flownets, flow.width=0.5 (values read as YAML scalars)"
    p = _command(sub, cmd_spec)
    p.add_argument("model", metavar="MODEL", help="an architecture or preset (see `list model`) or a .json/.yaml spec")
    p.add_argument("overrides", nargs="*", type=_override, metavar="KEY=VALUE", help=override_help)
    p.add_argument("--format", choices=("json", "yaml"), default="json", help="output format (default: json)")

    p = _command(sub, cmd_summary)
    p.add_argument("model", metavar="MODEL", help="an architecture or preset, or a .json/.yaml spec file")
    p.add_argument("overrides", nargs="*", type=_override, metavar="KEY=VALUE", help=override_help)

    p = _command(sub, cmd_sr)
    p.add_argument(
        "--checkpoint",
        default=None,
        help=f"a .safetensors file written by save_model, or a shipped name (default: {assets.DEFAULT_PRETRAINED})",
    )
    p.add_argument("--lr", type=Path, nargs="+", required=True, help="low-resolution image(s) or folder(s)")
    p.add_argument(
        "--ref", type=Path, nargs="+", required=True, help="reference image(s) or folder(s), s times the LR size"
    )
    p.add_argument("--out", type=Path, required=True, help="output image (one pair) or folder")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace output files that already exist (an input is never replaced, with or without it)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N (default: auto)")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="compute precision (default: auto, bf16 on a CPU with native bf16, else fp32; fp16: CUDA only)",
    )
    _add_window_options(p)

    p = _command(sub, cmd_demo, weights=assets.DEFAULT_PRETRAINED)
    p.add_argument("--checkpoint", type=Path, default=None, help="weights to use instead of the shipped ones")
    p.add_argument("--out", type=Path, default=Path("refsr-demo.png"), help="comparison picture (PNG)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    _add_window_options(p)
    _add_pair_options(p)

    p = _command(sub, cmd_viz)
    p.add_argument("overrides", nargs="*", type=_override, metavar="KEY=VALUE", help="overrides for --model")
    p.add_argument(
        "--checkpoint", type=Path, default=None, help="trained weights (a save_model file, or a shipped name)"
    )
    p.add_argument("--model", default=None, help="a model name or spec file, random weights (default: crossnet_lite)")
    p.add_argument("--out-dir", type=Path, default=Path("refsr-viz"), help="output folder (default: refsr-viz)")
    _add_pair_options(p)

    p = _command(sub, cmd_plugins)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    delegated_help = {
        "train": "train a model from a config (= python -m refsr_blocks.train)",
        "eval": "evaluate checkpoints (= python -m refsr_blocks.evaluation)",
        "convert": "convert foreign weights (the CrossNet authors', EDSR-PyTorch MDSR, flownet2 FlowNetS) "
        "into a refsr-blocks checkpoint (= python -m refsr_blocks.interop.command)",
    }
    for command, help_text in delegated_help.items():
        populate, handler = _delegated(command)
        sub.add_parser(command, help=help_text, populate=populate).set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    0 ok, 1 nothing found (``list``), 2 a usage error or a library error (one line on stderr),
    3 ``train``: the loss diverged, 130 interrupted. Other exceptions propagate.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version (0) and usage errors (2)
        return EXIT_OK if exit_.code is None else exit_.code if isinstance(exit_.code, int) else EXIT_USER_ERROR
    try:
        return int(args.handler(args) or 0)
    except RefSRError as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
