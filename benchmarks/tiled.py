"""Tiled inference: peak memory that does not grow with the image, and no seams.

Usage::

    python benchmarks/tiled.py                       # paper CrossNet, random weights
    python benchmarks/tiled.py --checkpoint refsr_blocks/assets/crossnet_small_x4.safetensors

Part 1 runs ``refsr_blocks.inference.tiling.super_resolve`` (512 window, 256 stride) at several output
sizes up to 3840×2160 (×4), each in a fresh subprocess, and prints its peak RSS; part 2
compares tiled with whole-image inference at a size where both fit: the PSNR between the
two, and the difference of their PSNRs to the ground truth of a synthetic pair.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

SIZES = ((512, 512), (1080, 1920), (2160, 3840))


def load(args: argparse.Namespace) -> torch.nn.Module:
    from refsr_blocks import build_model, load_model
    from refsr_blocks.inference.runtime import optimize_for_inference

    torch.manual_seed(0)
    model = load_model(args.checkpoint) if args.checkpoint else build_model(args.preset, upscale=args.upscale)
    return optimize_for_inference(model)


def child(args: argparse.Namespace) -> None:
    """Tile one output size; print JSON with the peak RSS."""
    from refsr_blocks.inference.runtime import inference_context, retain_freed_memory
    from refsr_blocks.inference.tiling import super_resolve

    if args.retain:
        retain_freed_memory()
    model = load(args)
    h, w = args.size
    s = model.upscale
    lr, ref = torch.rand(1, 3, h // s, w // s), torch.rand(1, 3, h, w)
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    with inference_context("cpu", args.precision):
        out = super_resolve(model, lr, ref, window=args.window, stride=args.stride, progress=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {"size": [h, w], "shape": list(out.shape), "seconds": seconds, "peak_mb": peak, "model_mb": rss_model}
        )
    )


def seams(args: argparse.Namespace) -> None:
    from refsr_blocks.data import SyntheticParallaxDataset, builtin_images
    from refsr_blocks.evaluation.metrics import psnr
    from refsr_blocks.inference.runtime import run
    from refsr_blocks.inference.tiling import super_resolve

    model = load(args)
    images = builtin_images("procedural", count=1, size=(768, 1024), seed=4242)
    item = SyntheticParallaxDataset(images, scale=model.upscale, seed=4242)[0]
    lr, ref, hr = (item[k].unsqueeze(0) for k in ("lr", "ref", "hr"))
    whole = run(model, lr, ref, args.precision).clamp(0, 1)
    tiled = super_resolve(model, lr, ref, window=args.window, stride=args.stride, progress=False).clamp(0, 1)
    p_whole, p_tiled = psnr(whole, hr).item(), psnr(tiled, hr).item()
    print(
        f"seams at {tuple(hr.shape[-2:])}: PSNR(tiled vs whole) {psnr(tiled, whole).item():.2f} dB; "
        f"PSNR to ground truth: whole {p_whole:.3f} dB, tiled {p_tiled:.3f} dB, difference {p_tiled - p_whole:+.3f} dB"
    )


def _without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option VALUE`` / ``option=VALUE``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint")
    parser.add_argument("--preset", default="crossnet")
    parser.add_argument("--upscale", type=int, default=4)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--stride", type=int, default=256)
    parser.add_argument("--sizes", default=",".join(f"{h}x{w}" for h, w in SIZES))
    parser.add_argument("--skip-seams", action="store_true")
    parser.add_argument(
        "--retain",
        action="store_true",
        help="call refsr_blocks.inference.runtime.retain_freed_memory() first (as `sr` does)",
    )
    parser.add_argument("--size", type=lambda t: [int(v) for v in t.split("x")], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.size:
        child(args)
        return 0
    print(
        f"model={args.checkpoint or args.preset} precision={args.precision} window={args.window} "
        f"stride={args.stride} retain={args.retain}"
    )
    base = _without_option(sys.argv[1:], "--sizes")
    for size in filter(None, args.sizes.split(",")):
        proc = subprocess.run([sys.executable, __file__, *base, "--size", size], capture_output=True, text=True)
        if proc.returncode:
            print(f"{size}: FAILED\n{proc.stderr[-1500:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"output {r['size'][0]}x{r['size'][1]}: peak RSS {r['peak_mb']:.0f} MB "
            f"(model loaded: {r['model_mb']:.0f} MB), {r['seconds']:.1f} s",
            flush=True,
        )
    if not args.skip_seams:
        seams(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
