"""Parameters and forward time of every registered flow estimator at a 320×512 input.

Usage::

    python benchmarks/flow_estimators.py [--height 320 --width 512 --repeats 5]

All estimators are timed in the same run (fp32, channels_last, inference mode, median of
``--repeats`` after a warm-up), so their ratios are comparable.
"""

from __future__ import annotations

import statistics

import torch
from benchtools import size_parser, timed  # benchmarks/benchtools.py, next to this script

from refsr_blocks import get_component, list_components
from refsr_blocks.inference.runtime import inference_context, optimize_for_inference, to_channels_last


def main() -> None:
    parser = size_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    target, ref = (to_channels_last(torch.rand(1, 3, args.height, args.width)) for _ in range(2))
    print(f"| flow estimator | parameters | forward at {args.height}×{args.width} (ms) |\n| --- | ---: | ---: |")
    for name in list_components("flow"):
        torch.manual_seed(0)
        net = optimize_for_inference(get_component("flow", name).factory(scales=4))
        with inference_context("cpu"):
            times = timed(lambda: net(target, ref), "cpu", args.repeats, warmup=1)  # noqa: B023
        params = sum(p.numel() for p in net.parameters())
        print(f"| {name} | {params:,} | {statistics.median(times) * 1000:.0f} |")


if __name__ == "__main__":
    main()
