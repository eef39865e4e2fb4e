"""Time of one output through `Predictor` for several checkpoints, and their ratios, in one run.

Usage::

    python benchmarks/checkpoint_speed.py crossnet_real_x4 runs/default_x4/stage2_refsr/model.safetensors
    python benchmarks/checkpoint_speed.py crossnet_real_x4 ttsr_real_x4 --size 480x640 --repeats 5 --threads 1

Each checkpoint (a shipped name or a file) is loaded into a `Predictor` (the default precision
for this CPU) and run on the shipped demo pair, or on a random pair of ``--size`` (H×W of the
output) if given. The checkpoints take turns, ``--repeats`` rounds after one warm-up each, so
that a busy machine slows them alike; the best wall time and the best CPU time (process time:
what a shared machine's other jobs disturb least) of each are printed with their ratio to the
first checkpoint, and the CPU model.
"""

from __future__ import annotations

import argparse
import time

import torch
from benchtools import cpu_name  # benchmarks/benchtools.py, next to this script


def main(argv: list[str] | None = None) -> int:
    from refsr_blocks import Predictor
    from refsr_blocks.assets import demo_pair_files
    from refsr_blocks.data import load_image

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="shipped names or checkpoint files; ratios are to the first")
    parser.add_argument("--size", default=None, help="output H×W of a random pair (default: the demo pair, 480×640)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    predictors = {name: Predictor(name, device="cpu") for name in args.checkpoints}
    scale = next(iter(predictors.values())).upscale
    if args.size:
        h, w = (int(v) for v in args.size.lower().split("x"))
        lr, ref = torch.rand(1, 3, h // scale, w // scale), torch.rand(1, 3, h, w)
    else:
        files = demo_pair_files()
        lr, ref = load_image(files["lr"])[None], load_image(files["ref"])[None]
    wall = {name: float("inf") for name in predictors}
    cpu = dict(wall)
    for predictor in predictors.values():
        predictor.predict(lr, ref)  # warm-up: weight packing, first-touch allocations
    for _ in range(args.repeats):
        for name, predictor in predictors.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            predictor.predict(lr, ref)
            wall[name] = min(wall[name], time.perf_counter() - start_wall)
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
    first = args.checkpoints[0]
    out_h, out_w = lr.shape[-2] * scale, lr.shape[-1] * scale
    print(f"{out_w}×{out_h} output, {torch.get_num_threads()} threads, {cpu_name()}")
    for name in predictors:
        print(
            f"{name}: best wall {wall[name]:.2f} s ({wall[name] / wall[first]:.2f}×), "
            f"best CPU {cpu[name]:.2f} s ({cpu[name] / cpu[first]:.2f}×), precision {predictors[name].precision}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
