"""FewOutputConv2d's row-split float32 path vs F.conv2d, at the shapes CrossNet uses.

Usage::

    python benchmarks/few_output_conv.py

Prints, for each shape, both timings (best of 9, channels_last, inference mode), their ratio
and the largest difference relative to the output's range.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from run import timed  # benchmarks/run.py, next to this script

from refsr_blocks.layers import FewOutputConv2d

#: (in_channels, out_channels, kernel, height, width): the decoder's image output and
#: FlowNetS+'s flow heads at levels 0 and 1 for a 320×512 output.
SHAPES = ((64, 3, 5, 320, 512), (50, 2, 3, 320, 512), (98, 2, 3, 160, 256))


def best_ms(fn, repeats: int = 9) -> float:
    return min(timed(fn, "cpu", repeats, warmup=1)) * 1000


def main() -> None:
    torch.manual_seed(0)
    for cin, cout, k, h, w in SHAPES:
        layer = FewOutputConv2d(cin, cout, k, padding=k // 2)
        x = torch.randn(1, cin, h, w).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            direct = best_ms(lambda: F.conv2d(x, layer.weight, layer.bias, padding=k // 2))  # noqa: B023
            split = best_ms(lambda: layer(x))  # noqa: B023
            expected = F.conv2d(x, layer.weight, layer.bias, padding=k // 2)
            rel = ((layer(x) - expected).abs().max() / expected.abs().max()).item()
        print(
            f"{cin}->{cout} {k}x{k} at {h}x{w}: F.conv2d {direct:.1f} ms, row split {split:.1f} ms "
            f"({direct / split:.1f}x), max difference {rel:.1e} of the output range"
        )


if __name__ == "__main__":
    main()
