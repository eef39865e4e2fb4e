"""Every FlowNetS+ convolution of CrossNet, with its weight packed once vs as plain nn layers.

Usage::

    python benchmarks/prepacked_conv.py [--precision fp32|bf16] [--retain]

Runs the paper CrossNet's flow estimator once at a 320×512 output (channels_last, inference
mode, bf16 autocast with ``--precision bf16``) to capture each layer's input, then times
each ``PrepackedConv2d`` / ``PrepackedConvTranspose2d`` (best of 9) as ``nn.Conv2d.forward``
(the weight reordered, and under autocast cast, on every call) and through its packed path,
checks that both outputs are equal, and prints the per-layer and total times.
``--retain`` first calls :func:`refsr_blocks.inference.runtime.retain_freed_memory`.
"""

from __future__ import annotations

import argparse

import torch
from run import best_ms, retain_freed_memory_or_exit  # benchmarks/run.py, next to this script
from torch import Tensor, nn

from refsr_blocks import build_model
from refsr_blocks.inference.runtime import inference_context, optimize_for_inference, to_channels_last
from refsr_blocks.layers import PrepackedConv2d, PrepackedConvTranspose2d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--retain", action="store_true", help="call retain_freed_memory() first")
    args = parser.parse_args()
    if args.retain:
        retain_freed_memory_or_exit()
    model = optimize_for_inference(build_model("crossnet"))
    inputs: dict[str, Tensor] = {}
    layers = {
        name: m
        for name, m in model.aligner.flow.named_modules()
        if isinstance(m, (PrepackedConv2d, PrepackedConvTranspose2d))
    }
    for name, module in layers.items():
        module.register_forward_pre_hook(lambda m, a, name=name: inputs.__setitem__(name, a[0]))
    up, ref = (to_channels_last(torch.rand(1, 3, 320, 512)) for _ in range(2))
    totals = [0.0, 0.0]
    with inference_context("cpu", args.precision):
        model.aligner.flow(up, ref)
        for name, module in layers.items():
            x = inputs[name]
            plain_forward = nn.ConvTranspose2d.forward if isinstance(module, nn.ConvTranspose2d) else nn.Conv2d.forward
            plain = best_ms(lambda: plain_forward(module, x))  # noqa: B023
            packed = best_ms(lambda: module(x))  # noqa: B023
            equal = torch.equal(plain_forward(module, x), module(x))
            totals[0] += plain
            totals[1] += packed
            print(
                f"{name:<22} {tuple(x.shape[1:])!s:<17} {module.weight.numel() / 1e6:5.2f} M weights: "
                f"plain {plain:6.2f} ms, packed {packed:6.2f} ms ({plain / packed:4.1f}x){'' if equal else '  OUTPUTS DIFFER'}"
            )
    mode = args.precision + (" retain" if args.retain else "")
    print(f"{mode}: all {len(layers)} layers: plain {totals[0]:.1f} ms, packed {totals[1]:.1f} ms")


if __name__ == "__main__":
    main()
