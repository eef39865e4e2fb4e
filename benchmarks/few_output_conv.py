"""FewOutputConv2d's row-split path vs F.conv2d, at the shapes CrossNet uses.

Usage::

    python benchmarks/few_output_conv.py [--precision fp32|bf16]

Prints, for each shape, both timings (best of 9, channels_last, inference mode, under bf16
autocast with ``--precision bf16``), their ratio and each one's error. In fp32 the error is
the row split's largest difference to F.conv2d relative to the output's range; in bf16 it is
each path's mean and largest difference to the exact (float64) convolution of the same bf16
inputs and weights, since both round.
"""

from __future__ import annotations

import argparse
import contextlib

import torch
import torch.nn.functional as F
from run import best_ms  # benchmarks/run.py, next to this script

from refsr_blocks.layers import FewOutputConv2d

#: (in_channels, out_channels, kernel, height, width): the decoder's image output and
#: FlowNetS+'s flow heads at levels 0 and 1 for a 320×512 output.
SHAPES = ((64, 3, 5, 320, 512), (50, 2, 3, 320, 512), (98, 2, 3, 160, 256))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    args = parser.parse_args()
    bf16 = args.precision == "bf16"
    torch.manual_seed(0)
    for cin, cout, k, h, w in SHAPES:
        layer = FewOutputConv2d(cin, cout, k, padding=k // 2)
        # Non-negative inputs, as after the ReLU / LeakyReLU that precede these layers.
        x = torch.rand(1, cin, h, w).contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast("cpu", torch.bfloat16) if bf16 else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            direct = best_ms(lambda: F.conv2d(x, layer.weight, layer.bias, padding=k // 2))  # noqa: B023
            split = best_ms(lambda: layer(x))  # noqa: B023
            out_direct = F.conv2d(x, layer.weight, layer.bias, padding=k // 2).double()
            out_split = layer(x).double()
        timing = f"{cin}->{cout} {k}x{k} at {h}x{w}: F.conv2d {direct:.1f} ms, row split {split:.1f} ms ({direct / split:.1f}x)"
        if not bf16:
            rel = ((out_split - out_direct).abs().max() / out_direct.abs().max()).item()
            print(f"{timing}, max difference {rel:.1e} of the output range")
            continue
        with torch.inference_mode():
            exact = F.conv2d(
                x.bfloat16().double(), layer.weight.bfloat16().double(), layer.bias.double(), padding=k // 2
            )
        err_d, err_s = (out_direct - exact).abs(), (out_split - exact).abs()
        print(
            f"{timing}; error to the exact conv of the bf16 inputs: F.conv2d mean {err_d.mean():.2e} "
            f"max {err_d.max():.2e}, row split mean {err_s.mean():.2e} max {err_s.max():.2e}"
        )


if __name__ == "__main__":
    main()
