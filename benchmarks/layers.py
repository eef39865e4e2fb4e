"""Time and GFLOP/s of every convolution in one CrossNet forward (without the upsampler).

Usage::

    python benchmarks/layers.py [--precision fp32|bf16] [--top 14] [--retain]

Hooks time each Conv2d / ConvTranspose2d call of ``model.fuse`` at a 320×512 output
(channels_last, inference mode); everything that is not a convolution is reported as "other".
The fastest of ``--repeats`` passes is reported, beside the convolution floor of
``benchmarks/run.py`` measured in the same run: how far the convolutions alone are from it,
and how much the rest adds. ``--retain`` first calls
:func:`refsr_blocks.inference.runtime.retain_freed_memory`, as the ``_retain`` modes of ``run.py`` do.
"""

from __future__ import annotations

import argparse
import time

import torch
from run import conv_peak, retain_freed_memory_or_exit  # benchmarks/run.py, next to this script
from torch import nn

from refsr_blocks import build_model
from refsr_blocks.inference.runtime import inference_context, optimize_for_inference, to_channels_last


def conv_flops(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> float:
    kh, kw = module.kernel_size
    # A transposed conv does its multiply-adds per *input* pixel, a conv per output pixel.
    pixels = x.shape[2] * x.shape[3] if isinstance(module, nn.ConvTranspose2d) else out.shape[2] * out.shape[3]
    return 2.0 * x.shape[1] * out.shape[1] * kh * kw * pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--top", type=int, default=14)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--retain", action="store_true", help="call retain_freed_memory() first")
    args = parser.parse_args()
    if args.retain:
        retain_freed_memory_or_exit()
    variant = f"{args.precision}_cl"
    floor = conv_peak("cpu", 5, variant)
    model = optimize_for_inference(build_model("crossnet"))
    up, ref = (to_channels_last(torch.rand(1, 3, 320, 512)) for _ in range(2))
    rows: list[tuple[str, tuple, tuple, float, float]] = []
    started: dict[nn.Module, float] = {}
    names = {m: n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))}
    for module in names:
        module.register_forward_pre_hook(lambda m, a: started.__setitem__(m, time.perf_counter()))
        module.register_forward_hook(
            lambda m, a, o: rows.append(
                (
                    names[m],
                    tuple(a[0].shape[1:]),
                    tuple(o.shape[1:]),
                    time.perf_counter() - started[m],
                    conv_flops(m, a[0], o),
                )
            )
        )
    best: tuple[float, list] = (float("inf"), [])
    with inference_context("cpu", args.precision):
        model.fuse(up, ref)  # warm-up
        for _ in range(args.repeats):
            rows.clear()
            start = time.perf_counter()
            model.fuse(up, ref)
            best = min(best, (time.perf_counter() - start, list(rows)), key=lambda b: b[0])
    total, rows = best
    # The floor is a best-observed rate: measure it again after the passes and keep the better.
    floor = max(floor, conv_peak("cpu", 5, variant))
    conv_s, conv_gflop = sum(r[3] for r in rows), sum(r[4] for r in rows) / 1e9
    floor_s = conv_gflop / floor
    print(
        f"{args.precision}{' retain' if args.retain else ''}: floor {floor:.0f} GFLOP/s, floor time {floor_s * 1000:.0f} ms; "
        f"fastest pass {total * 1000:.0f} ms ({total / floor_s:.2f}x floor): convolutions {conv_s * 1000:.0f} ms "
        f"({conv_gflop:.0f} GFLOP, {conv_gflop / conv_s:.0f} GFLOP/s, {conv_s / floor_s:.2f}x floor), "
        f"other {(total - conv_s) * 1000:.0f} ms"
    )
    for name, shape_in, shape_out, seconds, flops in sorted(rows, key=lambda r: -r[3])[: args.top]:
        print(
            f"{name:<34} {shape_in!s:<17} -> {shape_out!s:<17} {seconds * 1000:7.1f} ms "
            f"{flops / 1e9:6.1f} GFLOP {flops / 1e9 / seconds:5.0f} GFLOP/s"
        )


if __name__ == "__main__":
    main()
