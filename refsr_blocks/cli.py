"""The ``refsr-blocks`` command line.

Subcommands::

    refsr-blocks list [KIND] [--pattern P]            components and presets
    refsr-blocks spec MODEL [KEY=VALUE ...]           the resolved spec (--format json|yaml)
    refsr-blocks summary MODEL [KEY=VALUE ...]        parameters per component
    refsr-blocks sr --checkpoint C --lr L --ref R --out O
    refsr-blocks demo [--checkpoint C]                the shipped pair, bicubic vs CrossNet
    refsr-blocks viz [--checkpoint C | --model M]     pictures of flows, warps, errors
    refsr-blocks plugins                              installed plugins and their components
    refsr-blocks train CONFIG ...                     = python -m refsr_blocks.train
    refsr-blocks eval ...                             = python -m refsr_blocks.evaluation
    refsr-blocks bench ...                            = python benchmarks/run.py

A user mistake (unknown model, malformed ``KEY=VALUE``, missing file, invalid spec) ends
with one ``error: ...`` line on stderr and exit status 2, never a traceback.

Example:
    >>> from refsr_blocks.cli import main
    >>> main(["list", "loss", "--pattern", "charb*"])
    charbonnier  Charbonnier penalty ``mean(sqrt((pred - target)^2 + eps^2))``, CrossNet's loss.
    0
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import runpy
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RefSRError

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = [
    "DEMO_DIR",
    "SHIPPED_WEIGHTS",
    "CommandError",
    "build_parser",
    "demo_pair_files",
    "main",
    "shipped_weights",
]

PACKAGE_DIR = Path(__file__).resolve().parent
#: Where the shipped demo pair lives (``lr.png``, ``ref.png``, ``hr.png``).
DEMO_DIR = PACKAGE_DIR / "assets" / "demo"
#: File name of the default pretrained weights, inside ``refsr_blocks/assets``.
SHIPPED_WEIGHTS = "crossnet_real_x4.safetensors"

#: Subcommands whose arguments are handed, untouched, to another entry point.
PASSTHROUGH = ("train", "eval", "bench")


class CommandError(RefSRError):
    """A command cannot run as asked (missing optional part, wrong combination of options)."""


def shipped_weights() -> Path:
    """Path of the default pretrained weights (see :mod:`refsr_blocks.pretrained`)."""
    from .pretrained import pretrained_path

    return pretrained_path()


def demo_pair_files() -> dict[str, Path]:
    """The shipped demo pair: ``{"lr": ..., "ref": ..., "hr": ...}`` (files may be missing)."""
    return {name: DEMO_DIR / f"{name}.png" for name in ("lr", "ref", "hr")}


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


def cmd_list(args: argparse.Namespace) -> int:
    """Print registered components (of one kind) and presets, with their descriptions."""
    from .registry import KINDS, REGISTRY
    from .spec import list_models, preset_doc

    kinds = [*KINDS, "preset"] if args.kind is None else [args.kind]
    found = 0
    for kind in kinds:
        if kind == "preset":
            rows = [(name, preset_doc(name)) for name in list_models(args.pattern)]
        else:
            rows = []
            for name in REGISTRY.list(kind, args.pattern):
                component = REGISTRY.get(kind, name)
                doc = getattr(component.factory, "doc", "") or component.doc
                owner = "" if component.owner == "refsr_blocks" else f" [{component.owner}]"
                rows.append((name, _first_line(doc) + owner))
        found += len(rows)
        if args.kind is None:
            if rows:
                print(f"{kind}:")
                _print_rows(rows, indent="  ")
        else:
            _print_rows(rows)
    if not found:
        what = "components or presets" if args.kind is None else f"{args.kind} entries"
        print(f"no {what} match {args.pattern!r}", file=sys.stderr)
        return 1
    return 0


def _resolved(model: str, overrides: Sequence[str]) -> dict[str, Any]:
    from .build import spec_from
    from .spec import apply_overrides, resolve_spec
    from .summary import parse_overrides

    parsed = parse_overrides(overrides)
    spec = spec_from(model)
    if parsed:
        spec = apply_overrides(spec, parsed)
    return resolve_spec(spec)


def cmd_spec(args: argparse.Namespace) -> int:
    """Print the fully resolved spec of a preset or spec file, with overrides applied."""
    spec = _resolved(args.model, args.overrides)
    if args.format == "yaml":
        import yaml

        print(yaml.safe_dump(spec, sort_keys=False), end="")
    else:
        print(json.dumps(spec, indent=2))
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    """Print the parameter count of each component of a model."""
    from .build import build_model
    from .summary import format_summary, parse_overrides, summarize

    model = build_model(args.model, **parse_overrides(args.overrides))
    print(format_summary(summarize(model)))
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    """Print the installed plugins: distribution, version, entry point, components, status."""
    from .plugins import print_plugins

    print_plugins(as_json=args.json)
    return 0


# -- images and models ------------------------------------------------------------------------
def _load_image(path: Path, what: str) -> Tensor:
    """The image at ``path`` as a 1×3×H×W float tensor in [0, 1]."""
    from .data import load_image

    if not path.is_file():
        raise FileNotFoundError(f"{what} image {str(path)!r} does not exist")
    return load_image(path).unsqueeze(0)


def _load_checkpoint(path: Path | None, device: str) -> nn.Module:
    """The model in ``path`` (the shipped weights when ``None``), in eval mode on ``device``."""
    from .checkpoint import load_model

    if path is None:
        weights = shipped_weights()
        if not weights.is_file():
            raise CommandError(
                f"the shipped weights ({SHIPPED_WEIGHTS}) are not in this installation yet; pass "
                "--checkpoint PATH with a file written by refsr_blocks.save_model (for example the "
                "output of `refsr-blocks train`)"
            )
        path = weights
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    return load_model(path, map_location=device).to(device).eval()


def _upscale(model: nn.Module) -> int:
    spec = getattr(model, "spec", None) or {}
    scale = spec.get("params", {}).get("upscale") or getattr(model, "upscale", None)
    if not isinstance(scale, int):
        raise CommandError("cannot tell the model's upscale factor (no spec.params.upscale)")
    return scale


def _windowing(scale: int, window: int | None, stride: int | None) -> tuple[int, int]:
    """Window and stride in output pixels: CrossNet's 512/256, rounded to multiples of ``scale``."""
    window = window if window is not None else max(scale, 512 // scale * scale)
    stride = stride if stride is not None else max(scale, window // 2 // scale * scale)
    return window, stride


def super_resolve(
    model: nn.Module, lr: Tensor, ref: Tensor, *, window: int | None = None, stride: int | None = None
) -> Tensor:
    """Super-resolve one pair with sliding-window inference (:func:`refsr_blocks.infer.super_resolve`).

    Windows of ``window`` output pixels every ``stride`` pixels (default: CrossNet's 512 and
    256, rounded to multiples of the scale) keep the memory of large images bounded; an
    image smaller than a window goes through the model whole. The result is clamped to [0, 1].
    """
    from .infer import super_resolve as windowed

    scale = _upscale(model)
    window, stride = _windowing(scale, window, stride)
    return windowed(model, lr, ref, window=window, stride=stride, progress=False).clamp(0.0, 1.0)


def _check_pair_sizes(lr: Tensor, ref: Tensor, scale: int, hr: Tensor | None = None) -> None:
    expected = (lr.shape[-2] * scale, lr.shape[-1] * scale)
    if tuple(ref.shape[-2:]) != expected:
        raise CommandError(
            f"the model is ×{scale}: the reference must be {expected[0]}×{expected[1]} for a "
            f"{lr.shape[-2]}×{lr.shape[-1]} LR image, got {ref.shape[-2]}×{ref.shape[-1]}"
        )
    if hr is not None and tuple(hr.shape[-2:]) != expected:
        raise CommandError(f"the ground truth must be {expected[0]}×{expected[1]}, got {hr.shape[-2]}×{hr.shape[-1]}")


def cmd_sr(args: argparse.Namespace) -> int:
    """Super-resolve one (LR, reference) pair with a checkpoint and write the result."""
    from .data import save_image
    from .runtime import retain_freed_memory

    retain_freed_memory()  # windows reuse freed buffers instead of page-faulting them again
    lr = _load_image(args.lr, "LR")
    ref = _load_image(args.ref, "reference")
    model = _load_checkpoint(args.checkpoint, args.device)
    _check_pair_sizes(lr, ref, _upscale(model))
    sr = super_resolve(model, lr.to(args.device), ref.to(args.device), window=args.window, stride=args.stride)
    save_image(sr[0].float().cpu(), args.out)
    print(f"wrote {args.out} ({sr.shape[-2]}×{sr.shape[-1]})")
    return 0


def _pair_from_args(args: argparse.Namespace, scale: int, *, default_synthetic: bool) -> dict[str, Any]:
    """(lr, ref, hr) from ``--lr/--ref/--hr``; ``lr`` may be derived from ``hr``."""
    from .data import downsample
    from .viz import synthetic_pair

    if args.lr is None and args.ref is None and args.hr is None:
        if not default_synthetic:
            raise CommandError("pass --lr and --ref (and --hr for errors), or none for a synthetic pair")
        pair = synthetic_pair(scale, tuple(args.size), args.seed)
        return {"lr": pair["lr"][None], "ref": pair["ref"][None], "hr": pair["hr"][None], "source": "synthetic"}
    if args.ref is None or (args.lr is None and args.hr is None):
        raise CommandError("pass --ref and --lr (or --hr, from which the LR image is made by ×s downsampling)")
    ref = _load_image(args.ref, "reference")
    hr = _load_image(args.hr, "ground-truth") if args.hr is not None else None
    lr = _load_image(args.lr, "LR") if args.lr is not None else downsample(hr, scale)
    return {"lr": lr, "ref": ref, "hr": hr, "source": "files"}


def cmd_viz(args: argparse.Namespace) -> int:
    """Write pictures of a model's intermediates: flows per level, warp, comparison, errors."""
    import torch

    from .build import build_model
    from .summary import parse_overrides
    from .viz import render_intermediates

    if args.checkpoint is not None and (args.model is not None or args.overrides):
        raise CommandError("pass either --checkpoint or --model [KEY=VALUE ...], not both")
    if args.checkpoint is not None:
        model = _load_checkpoint(args.checkpoint, "cpu")
    else:
        torch.manual_seed(args.seed)
        model = build_model(args.model or "crossnet_lite", **parse_overrides(args.overrides)).eval()
    if args.checkpoint is None and args.model is None:
        print("note: no --checkpoint: drawing a crossnet_lite with random weights", file=sys.stderr)
    scale = _upscale(model)
    pair = _pair_from_args(args, scale, default_synthetic=True)
    _check_pair_sizes(pair["lr"], pair["ref"], scale, pair["hr"])
    paths = render_intermediates(model, pair["lr"], pair["ref"], args.out_dir, hr=pair["hr"])
    for name, path in paths.items():
        print(f"{name:<11} {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Super-resolve the shipped pair with the shipped (or given) weights; compare with the controls."""
    from .pretrained import pretrained_card
    from .train.reference import prepare_reference
    from .viz import bicubic_upsample, psnr, refsr_figure, save_png

    model = _load_checkpoint(args.checkpoint, args.device)
    scale = _upscale(model)
    files = demo_pair_files()
    if args.lr is None and args.ref is None and args.hr is None and all(p.is_file() for p in files.values()):
        args.lr, args.ref, args.hr = files["lr"], files["ref"], files["hr"]
    elif args.lr is None and args.ref is None and args.hr is None:
        print(f"note: the shipped demo pair is not installed ({DEMO_DIR}); using a synthetic pair", file=sys.stderr)
    pair = _pair_from_args(args, scale, default_synthetic=True)
    if pair["hr"] is None:
        raise CommandError("the demo compares against the ground truth: pass --hr as well")
    _check_pair_sizes(pair["lr"], pair["ref"], scale, pair["hr"])
    sr = super_resolve(
        model, pair["lr"].to(args.device), pair["ref"].to(args.device), window=args.window, stride=args.stride
    )
    sr = sr.float().cpu().clamp(0, 1)
    # The control: the same model with a reference that carries no information.
    grey = super_resolve(
        model,
        pair["lr"].to(args.device),
        prepare_reference(pair["ref"], "blank").to(args.device),
        window=args.window,
        stride=args.stride,
    )
    grey = grey.float().cpu().clamp(0, 1)
    bicubic = bicubic_upsample(pair["lr"], scale)
    hr = pair["hr"]
    scores = {
        "bicubic": psnr(bicubic, hr),
        "CrossNet, grey reference": psnr(grey, hr),
        "CrossNet": psnr(sr, hr),
    }
    shown = {"bicubic": bicubic[0], "grey reference": grey[0], "CrossNet": sr[0]}
    figure = refsr_figure(pair["lr"][0], pair["ref"][0], shown, hr[0])
    save_png(figure, args.out)
    print("PSNR against the ground truth (RGB, whole image):")
    for name, value in scores.items():
        print(f"  {name:<25} {value:6.2f} dB" if math.isfinite(value) else f"  {name:<25}    inf dB")
    print(f"  gain over bicubic         {scores['CrossNet'] - scores['bicubic']:+6.2f} dB")
    print(f"  reference gain            {scores['CrossNet'] - scores['CrossNet, grey reference']:+6.2f} dB")
    if args.checkpoint is None:
        card = pretrained_card()
        for line in card.get("headline", []):
            print(line)
    print(f"wrote {args.out}")
    return 0


# -- delegations -------------------------------------------------------------------------------
def _import_entry(module: str, function: str, what: str) -> Callable[[list[str]], Any]:
    """``module.function``, or a :class:`CommandError` saying why it cannot be imported."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        missing = err.name or ""
        if missing and (module == missing or module.startswith(missing + ".")):
            raise CommandError(f"{what} is not available: {module} is not part of this installation") from None
        raise CommandError(f"{what} needs the package {missing!r}, which is not installed: {err}") from None
    entry = getattr(mod, function, None)
    if not callable(entry):
        raise CommandError(f"{what} is not available: {module} has no {function}()")
    return entry


def _call(entry: Callable[[list[str]], Any], argv: list[str]) -> int:
    """Call an entry point ``entry(argv)``; its ``SystemExit`` (argparse) becomes the status."""
    try:
        status = entry(argv)
    except SystemExit as exit_:
        return _exit_status(exit_)
    return int(status or 0)


def _exit_status(exit_: SystemExit) -> int:
    code = exit_.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def cmd_train(argv: list[str]) -> int:
    """``refsr-blocks train CONFIG ...`` → ``refsr_blocks.train.__main__.train_main(argv)``."""
    return _call(_import_entry("refsr_blocks.train.__main__", "train_main", "training"), argv)


def cmd_eval(argv: list[str]) -> int:
    """``refsr-blocks eval ...`` → ``refsr_blocks.evaluation.__main__.eval_main(argv)``."""
    return _call(_import_entry("refsr_blocks.evaluation.__main__", "eval_main", "evaluation"), argv)


def benchmark_script() -> Path | None:
    """``benchmarks/run.py`` of the working directory or of the source checkout, if any."""
    for root in (Path.cwd(), PACKAGE_DIR.parent):
        script = root / "benchmarks" / "run.py"
        if script.is_file():
            return script
    return None


def cmd_bench(argv: list[str]) -> int:
    """``refsr-blocks bench ...`` → ``python benchmarks/run.py ...`` (source checkouts only).

    The script runs in this process as ``__main__``, with ``sys.argv`` and ``sys.path[0]``
    set as ``python benchmarks/run.py ARGS`` would set them.
    """
    script = benchmark_script()
    if script is None:
        raise CommandError(
            "the benchmarks are not part of the installed package: run `refsr-blocks bench` (or "
            "`python benchmarks/run.py`) from a refsr-blocks source checkout"
        )
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(script), *argv]
    sys.path.insert(0, str(script.parent))
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exit_:
        return _exit_status(exit_)
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
    return 0


DELEGATES: dict[str, Callable[[list[str]], int]] = {"train": cmd_train, "eval": cmd_eval, "bench": cmd_bench}


# -- parser ------------------------------------------------------------------------------------
def _add_window_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--window",
        type=int,
        default=None,
        help="sliding-window size in output pixels, a multiple of the scale (default: 512 rounded to one)",
    )
    p.add_argument("--stride", type=int, default=None, help="step between windows in output pixels (default: window/2)")


def _add_pair_options(p: argparse.ArgumentParser, *, size: bool = True) -> None:
    p.add_argument("--lr", type=Path, help="low-resolution image (PNG, JPEG, ...)")
    p.add_argument("--ref", type=Path, help="reference image, s times the LR size")
    p.add_argument("--hr", type=Path, help="ground truth; without --lr, the LR image is made from it")
    if size:
        p.add_argument(
            "--size",
            type=int,
            nargs=2,
            default=(96, 128),
            metavar=("H", "W"),
            help="HR size of the synthetic pair used when no image is given (default: 96 128)",
        )
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic pair and random weights")


def build_parser() -> argparse.ArgumentParser:
    """The ``refsr-blocks`` argument parser."""
    from . import __version__
    from .registry import KINDS

    parser = argparse.ArgumentParser(
        prog="refsr-blocks",
        description="Reference-based super-resolution building blocks: list components, inspect "
        "specs, super-resolve images, draw pictures, train, evaluate and benchmark.",
        epilog="Run `refsr-blocks COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"refsr-blocks {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "list",
        help="list registered components and model presets",
        description="List registered components (by kind) and model presets, with a description. "
        "Exit status 1 when nothing matches.",
    )
    p.add_argument("kind", nargs="?", choices=[*KINDS, "preset"], metavar="KIND", help="one of: %(choices)s")
    p.add_argument("--pattern", default="*", help="shell-style wildcard on the name, e.g. 'crossnet*'")
    p.set_defaults(handler=cmd_list)

    override_help = "overrides: upscale=8, flow=flownets, flow.width=0.5 (values parse as JSON)"
    p = sub.add_parser(
        "spec",
        help="print the fully resolved spec of a model",
        description="Validate a preset or spec file with overrides and print the resolved spec, every "
        "default filled in. build_model() accepts the output as it is.",
    )
    p.add_argument("model", metavar="MODEL", help="a preset name (see `list preset`) or a .json/.yaml spec file")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=override_help)
    p.add_argument("--format", choices=("json", "yaml"), default="json", help="output format (default: json)")
    p.set_defaults(handler=cmd_spec)

    p = sub.add_parser(
        "summary",
        help="parameter count per component",
        description="Build a model and print the number of parameters of each component.",
    )
    p.add_argument("model", metavar="MODEL", help="a preset name or a .json/.yaml spec file")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=override_help)
    p.set_defaults(handler=cmd_summary)

    p = sub.add_parser(
        "sr",
        help="super-resolve an (LR, reference) pair with a checkpoint",
        description="Super-resolve one LR image with the help of a reference image "
        "(s times larger) and write the result. Freed memory is kept for reuse by this "
        "process (refsr_blocks.runtime.retain_freed_memory), which is faster on glibc.",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="a .safetensors file written by save_model")
    p.add_argument("--lr", type=Path, required=True, help="low-resolution image")
    p.add_argument("--ref", type=Path, required=True, help="reference image, s times the LR size")
    p.add_argument("--out", type=Path, required=True, help="output image (PNG)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    _add_window_options(p)
    p.set_defaults(handler=cmd_sr)

    p = sub.add_parser(
        "demo",
        help="super-resolve the shipped demo pair and compare with bicubic",
        description="Super-resolve the demo pair shipped with the package using the shipped weights "
        f"({SHIPPED_WEIGHTS}) or --checkpoint, print PSNRs (bicubic, the model with a grey "
        "reference, the model) and write a picture: LR | reference | bicubic | CrossNet | ground "
        "truth, with zoomed crops.",
    )
    p.add_argument("--checkpoint", type=Path, default=None, help="weights to use instead of the shipped ones")
    p.add_argument("--out", type=Path, default=Path("refsr-demo.png"), help="comparison picture (PNG)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    _add_window_options(p)
    _add_pair_options(p)
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser(
        "viz",
        help="draw flows, the warped reference, comparisons and error maps",
        description="Run a model once with return_intermediates=True and write flows.png (flow per "
        "level), warp.png (the reference warped onto the upsampled LR), comparison.png (bicubic | "
        "SISR | CrossNet | ground truth) and errors.png (absolute errors as heat maps). Without "
        "images, a synthetic pair is used.",
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides for --model")
    p.add_argument("--checkpoint", type=Path, default=None, help="trained weights (a save_model file)")
    p.add_argument("--model", default=None, help="a preset or spec file, random weights (default: crossnet_lite)")
    p.add_argument("--out-dir", type=Path, default=Path("refsr-viz"), help="output folder (default: refsr-viz)")
    _add_pair_options(p)
    p.set_defaults(handler=cmd_viz)

    p = sub.add_parser(
        "plugins",
        help="list installed plugins",
        description="List refsr_blocks plugins: distribution, version, entry point, components, status. "
        "Set REFSR_BLOCKS_DISABLE_PLUGINS=1 to skip loading them.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_plugins)

    passthrough_help = {
        "train": ("train a model from a config (= python -m refsr_blocks.train CONFIG ...)", "CONFIG ..."),
        "eval": ("evaluate a checkpoint (= python -m refsr_blocks.evaluation ...)", "..."),
        "bench": ("run the benchmarks (= python benchmarks/run.py ..., source checkouts)", "..."),
    }
    for name, (help_text, usage) in passthrough_help.items():
        p = sub.add_parser(
            name,
            help=help_text,
            add_help=False,
            usage=f"refsr-blocks {name} {usage}",
            description=f"{help_text[0].upper()}{help_text[1:]}. Every argument is passed on; "
            f"`refsr-blocks {name} --help` shows them.",
        )
        p.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 nothing found, 2 user error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in DELEGATES:
            return DELEGATES[argv[0]](argv[1:])
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:
            return _exit_status(exit_)
        return int(args.handler(args) or 0)
    except (RefSRError, ValueError, FileNotFoundError, OSError) as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
