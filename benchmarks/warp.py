"""The exact pixel-space warp vs ``grid_sample``: speed and identity error, in one run.

Usage::

    python benchmarks/warp.py [--channels 64 --height 320 --width 512]
"""

from __future__ import annotations

import statistics

import torch
import torch.nn.functional as F
from benchtools import size_parser, timed  # benchmarks/benchtools.py, next to this script

from refsr_blocks.ops.warp import backward_warp, pixel_grid


def grid_sample_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    coords = pixel_grid(h, w) + flow
    scale = coords.new_tensor([2.0 / (w - 1), 2.0 / (h - 1)]).view(1, 2, 1, 1)
    grid = (coords * scale - 1).permute(0, 2, 3, 1)
    # In float32, as CPU autocast runs it: with a bf16 image and grid, PyTorch 2.15's CPU
    # grid_sample crashed this benchmark (segmentation fault) at 64×320×512.
    return F.grid_sample(x.float(), grid, padding_mode="border", align_corners=True).to(x.dtype)


def median_ms(fn, repeats: int = 7) -> float:
    return statistics.median(timed(fn, "cpu", repeats, warmup=1)) * 1000


def main() -> None:
    parser = size_parser(__doc__)
    parser.add_argument("--channels", type=int, default=64)
    args = parser.parse_args()
    shape = (1, args.channels, args.height, args.width)
    flow = torch.randn(1, 2, args.height, args.width) * 3
    for layout, dtype in (
        (torch.contiguous_format, torch.float32),
        (torch.channels_last, torch.float32),
        (torch.channels_last, torch.bfloat16),
    ):
        x = torch.rand(shape, dtype=dtype).contiguous(memory_format=layout)
        with torch.inference_mode():
            ours = median_ms(lambda: backward_warp(x, flow))  # noqa: B023
            theirs = median_ms(lambda: grid_sample_warp(x, flow))  # noqa: B023
            zero = torch.zeros_like(flow)
            err_ours = (backward_warp(x, zero) - x).abs().max().item()
            err_theirs = (grid_sample_warp(x, zero) - x).abs().max().item()
        name = ("channels_last" if layout is torch.channels_last else "NCHW") + f" {str(dtype).split('.')[-1]}"
        print(
            f"{name:<22} {shape}: backward_warp {ours:.1f} ms (zero-flow error {err_ours:.1e}), "
            f"grid_sample {theirs:.1f} ms (zero-flow error {err_theirs:.1e}), ratio {ours / theirs:.2f}"
        )


if __name__ == "__main__":
    main()
