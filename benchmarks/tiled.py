"""Tiled inference: total work against the whole image, peak memory, wall time and seams.

Usage::

    python benchmarks/tiled.py                                   # shipped weights, 1920×1080 and 3840×2160
    python benchmarks/tiled.py --sizes 1080x1920 --precision bf16
    python benchmarks/tiled.py --preset crossnet                 # random weights of a preset
    python benchmarks/tiled.py --window 512 --stride 256         # CrossNet's original windows, for comparison

For every output size (H×W, ×4), in a fresh subprocess so that its peak RSS is its own, it
runs the one-call path (``refsr_blocks.Predictor(...).predict``: the upsampler once, then
``fuse`` over evenly spaced windows with 64-pixel overlaps) on a random pair and prints:

- the FLOPs of the tiled run over those of one whole-image forward pass, both counted by
  ``torch.utils.flop_counter`` on fake tensors (no arithmetic is done to count them);
- the number of windows, the wall time and the process's peak RSS (``ru_maxrss``).

The seam check then super-resolves a synthetic parallax pair (procedural image, ground truth
known) of ``--seam-size`` both whole and tiled with the same settings, and prints the PSNR
between the two and the difference of their PSNRs to the ground truth (the figure the
tiling must keep under 0.05 dB).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from unittest import mock

import torch

SIZES = ("1080x1920", "2160x3840")


def _size(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.lower().split("x"))
    return h, w


def load_model(args: argparse.Namespace) -> torch.nn.Module:
    from refsr_blocks import build_model, load_model
    from refsr_blocks.assets import load_pretrained

    torch.manual_seed(0)
    if args.preset:
        return build_model(args.preset, upscale=args.upscale)
    return load_model(args.checkpoint) if args.checkpoint else load_pretrained()


def count_flops(fn) -> int:
    """FLOPs of ``fn()`` run on fake tensors (shapes only)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def flops_ratio(model: torch.nn.Module, h: int, w: int, window: int | None, stride: int | None) -> dict:
    """Tiled over whole-image FLOPs for an h×w output (plain layers: fake tensors cannot run packed ones)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from refsr_blocks.inference.tiling import super_resolve

    s = model.upscale
    with FakeTensorMode(allow_non_fake_inputs=True):
        lr, ref = torch.empty(1, 3, h // s, w // s), torch.empty(1, 3, h, w)
    whole = count_flops(lambda: model(lr, ref))
    # super_resolve checks the values of user input (finite, in [0, 1]); fake tensors have no values, and
    # the checks cost no FLOPs, so the count skips them.
    with mock.patch("refsr_blocks.inference.tiling.prepare_pair", lambda model, lr, ref, *args, **kwargs: (lr, ref)):
        tiled = count_flops(lambda: super_resolve(model, lr, ref, window, stride, progress=False))
    up = count_flops(lambda: model.upsampler(lr))
    return {"whole_gflop": whole / 1e9, "tiled_gflop": tiled / 1e9, "upsampler_gflop": up / 1e9, "ratio": tiled / whole}


def child(args: argparse.Namespace) -> None:
    """One output size: the FLOPs ratio (``--flops-only``) or a timed run (``--timed``); prints JSON.

    The two run in separate processes, so that the peak RSS of the timed run is inference's own
    (counting FLOPs on fake tensors imports and allocates more)."""
    from refsr_blocks import Predictor
    from refsr_blocks.inference.tiling import default_stride, default_windowing, model_size_multiple, plan_tiles

    h, w = args.size
    model = load_model(args).eval()
    s = model.upscale
    window = args.window or default_windowing(s)[0]
    stride = args.stride or default_stride(window, s)
    multiple = model_size_multiple(model)
    rows, cols = (plan_tiles(n, window, stride, multiple=multiple, align=s) for n in (h, w))
    if not args.timed:
        work = flops_ratio(model, h, w, args.window, args.stride)
        print(json.dumps({"size": [h, w], "windows": len(rows) * len(cols), **work}))
        return
    predictor = Predictor(
        model,
        device="cpu",
        precision=args.precision,
        window=args.window,
        stride=args.stride,
    )
    g = torch.Generator().manual_seed(0)
    lr, ref = torch.rand(1, 3, h // s, w // s, generator=g), torch.rand(1, 3, h, w, generator=g)
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    out = predictor.predict(lr, ref)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tiles = len(rows) * len(cols)
    print(
        json.dumps(
            {
                "size": [h, w],
                "shape": list(out.shape),
                "seconds": seconds,
                "peak_mb": peak,
                "model_mb": rss_model,
                "windows": tiles,
            }
        )
    )


def seams(args: argparse.Namespace) -> None:
    """Whole-image vs tiled on a synthetic pair with ground truth; prints JSON."""
    from refsr_blocks import Predictor
    from refsr_blocks.data import SyntheticParallaxDataset, builtin_images
    from refsr_blocks.evaluation.metrics import psnr

    model = load_model(args).eval()
    h, w = args.seam_size
    images = builtin_images("procedural", count=1, size=(h, w), seed=4242)
    item = SyntheticParallaxDataset(images, scale=model.upscale, seed=4242)[0]
    lr, ref, hr = (item[k].unsqueeze(0) for k in ("lr", "ref", "hr"))
    tiled_predictor = Predictor(model, device="cpu", precision=args.precision, window=args.window, stride=args.stride)
    tiled = tiled_predictor.predict(lr, ref)
    whole_predictor = Predictor(model, device="cpu", precision=args.precision, window=max(h, w) * 2)
    whole = whole_predictor.predict(lr, ref)
    p_whole, p_tiled = psnr(whole, hr).item(), psnr(tiled, hr).item()
    print(
        json.dumps(
            {
                "size": [h, w],
                "psnr_tiled_vs_whole": psnr(tiled, whole).item(),
                "psnr_whole": p_whole,
                "psnr_tiled": p_tiled,
                "difference_db": p_tiled - p_whole,
            }
        )
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
    parser.add_argument("--checkpoint", help="a save_model file (default: the shipped weights)")
    parser.add_argument("--preset", help="random weights of this preset instead of trained ones")
    parser.add_argument("--upscale", type=int, default=4)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--window", type=int, default=None, help="largest window side (default: 768)")
    parser.add_argument("--stride", type=int, default=None, help="largest step (default: a 64-pixel overlap)")
    parser.add_argument("--sizes", default=",".join(SIZES), help="output sizes HxW, comma-separated")
    parser.add_argument("--seam-size", type=_size, default=(768, 1280), help="size of the seam check (HxW)")
    parser.add_argument("--skip-seams", action="store_true")
    parser.add_argument("--flops-only", action="store_true", help="only count FLOPs (no timed run, no seam check)")
    parser.add_argument("--size", type=_size, help=argparse.SUPPRESS)
    parser.add_argument("--seams-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.size:
        child(args)
        return 0
    if args.seams_child:
        seams(args)
        return 0
    print(
        f"model={args.preset or args.checkpoint or 'shipped default'} precision={args.precision} "
        f"window={args.window or 'default'} stride={args.stride or 'default'} threads={torch.get_num_threads()}",
        flush=True,
    )
    base = _without_option(sys.argv[1:], "--sizes")
    results = []
    for size in filter(None, args.sizes.split(",")):
        r: dict = {}
        for extra in [[]] if args.flops_only else [["--timed"], []]:
            proc = subprocess.run(
                [sys.executable, __file__, *base, "--size", size, *extra], capture_output=True, text=True
            )
            if proc.returncode:
                print(f"{size}: FAILED\n{proc.stderr[-1500:]}", flush=True)
                break
            r.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        if "ratio" not in r:
            continue
        results.append(r)
        if args.flops_only:
            print(
                f"output {r['size'][0]}x{r['size'][1]}: {r['windows']} windows, FLOPs tiled/whole {r['ratio']:.3f} "
                f"({r['tiled_gflop']:.0f} / {r['whole_gflop']:.0f} GFLOP; upsampler {r['upsampler_gflop']:.0f})",
                flush=True,
            )
            continue
        print(
            f"output {r['size'][0]}x{r['size'][1]}: {r['windows']} windows, FLOPs tiled/whole {r['ratio']:.3f} "
            f"({r['tiled_gflop']:.0f} / {r['whole_gflop']:.0f} GFLOP; upsampler {r['upsampler_gflop']:.0f}), "
            f"{r['seconds']:.1f} s, peak RSS {r['peak_mb']:.0f} MB (model loaded: {r['model_mb']:.0f} MB)",
            flush=True,
        )
    if not (args.skip_seams or args.flops_only):
        proc = subprocess.run([sys.executable, __file__, *base, "--seams-child"], capture_output=True, text=True)
        if proc.returncode:
            print(f"seam check: FAILED\n{proc.stderr[-1500:]}")
        else:
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                f"seams at {r['size'][0]}x{r['size'][1]}: PSNR(tiled vs whole) {r['psnr_tiled_vs_whole']:.2f} dB; "
                f"PSNR to ground truth: whole {r['psnr_whole']:.3f} dB, tiled {r['psnr_tiled']:.3f} dB, "
                f"difference {r['difference_db']:+.3f} dB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
