"""Evaluate a model against bicubic and its own SISR upsampler on a fixed synthetic set.

    python examples/evaluation.py --checkpoint runs/small_training/model.safetensors --out-dir runs/eval
    python examples/evaluation.py --tiny --out-dir /tmp/eval       # random weights, 2 small pairs (CI)

The harness is ``refsr_blocks.evaluation``: each method is a callable ``(lr, ref) -> sr``,
run through sliding-window inference and measured with PSNR and SSIM on RGB and on the luma
Y, over the whole image (as the CrossNet paper; ``border=scale`` crops as much of the
literature does). The set is fixed: ``seed=0`` makes item i a pure function of the seed, so
two runs, or two models, see the same pairs. ``refsr-blocks eval`` is the command-line form.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from refsr_blocks import build_model
from refsr_blocks.data import SyntheticParallaxDataset, builtin_images
from refsr_blocks.evaluation import (
    bicubic,
    evaluate,
    methods_from_checkpoint,
    refsr_model,
    sisr_upsampler,
    write_report,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="weights to evaluate (random if omitted)")
    parser.add_argument("--pairs", type=int, default=8, help="validation pairs")
    parser.add_argument("--crop", type=int, default=128, help="HR crop size")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/evaluation"), help="where the report goes")
    parser.add_argument("--tiny", action="store_true", help="2 small pairs, random weights, for CI")
    args = parser.parse_args(argv)
    if args.tiny:
        args.pairs, args.crop = 2, 32

    # The methods to compare: a checkpoint (with its upsampler alone as the SISR baseline),
    # or a randomly initialised model to show the mechanics.
    if args.checkpoint is not None:
        model, methods = methods_from_checkpoint(args.checkpoint, upsampler=True)
    else:
        torch.manual_seed(0)
        model = build_model("crossnet_lite").eval()
        methods = [refsr_model(model, "crossnet_lite"), sisr_upsampler(model, "crossnet_lite")]
        print("no --checkpoint: evaluating random weights (expect CrossNet below bicubic)")
    scale = model.spec["params"]["upscale"]

    # A fixed set: procedural pictures (distinct from training's: another seed), centre crops,
    # synthetic references with parallax.
    size = (2 * args.crop, 2 * args.crop)
    images = builtin_images("procedural", count=args.pairs, size=size, seed=100)
    dataset = SyntheticParallaxDataset(images, scale=scale, crop=args.crop, seed=0, crop_mode="center")

    result = evaluate([bicubic(scale), *methods], dataset, progress=False, settings={"data": "synthetic, procedural"})
    for method, means in result.summary().items():
        print(f"{method:>24}: PSNR {means['psnr']:6.2f} dB  SSIM {means['ssim']:.4f}  PSNR-Y {means['psnr_y']:6.2f} dB")
    paths = write_report(result, args.out_dir, title="Example evaluation")
    print(f"wrote {paths['markdown']}, {paths['csv']} and {paths['summary']}")


if __name__ == "__main__":
    main()
