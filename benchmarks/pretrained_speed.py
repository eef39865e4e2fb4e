"""Seconds for one 640×480 output per pretrained model, through ``Predictor``, and ratios to the first.

The input is the shipped demo pair (a 160×120 LR and its 640×480 stereo reference; ×8 models get
the LR reduced to 80×60). Each model is loaded once and warmed with one call; then the models
take turns, one call each per round, so a busy moment on a shared machine falls on all of them
alike. Printed per model: the median wall and CPU seconds of a call and the ratio of its median
wall time to the first model's, all from this run::

    python benchmarks/pretrained_speed.py crossnet_real_x4 ttsr_real_x4 new=runs/x/model.safetensors
    python benchmarks/pretrained_speed.py crossnet_real_x4 NAME=FILE --rounds 7 --threads 2

Not part of the test run: timings are noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from benchtools import cpu_name  # benchmarks/benchtools.py, next to this script

from refsr_blocks import Predictor
from refsr_blocks.assets import load_demo_pair
from refsr_blocks.data import downsample


def _named(argument: str) -> tuple[str, str]:
    name, _, source = argument.rpartition("=")
    return (name or source), source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="shipped names or model files, optionally NAME=FILE")
    parser.add_argument("--rounds", type=int, default=5, help="timed calls per model (default 5)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--precision", default="fp32", help="Predictor precision (default fp32)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pair = load_demo_pair()
    predictors, inputs = {}, {}
    for argument in args.models:
        name, source = _named(argument)
        predictor = Predictor(source, device="cpu", precision=args.precision)
        scale = predictor.upscale
        lr = pair["lr"] if scale == 4 else downsample(pair["hr"], scale)  # the demo's LR is downsample(hr, 4)
        predictors[name], inputs[name] = predictor, (lr, pair["ref"])
        predictor.predict(*inputs[name])  # warm: weights, allocator, one-time checks

    wall: dict[str, list[float]] = {name: [] for name in predictors}
    cpu: dict[str, list[float]] = {name: [] for name in predictors}
    for _ in range(args.rounds):
        for name, predictor in predictors.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            predictor.predict(*inputs[name])
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)

    first = statistics.median(wall[next(iter(wall))])
    print(f"{cpu_name()}, {args.threads} threads, {args.precision}, {args.rounds} rounds, 640×480 output")
    print(f"{'model':28s} {'wall s':>8s} {'CPU s':>8s} {'× first':>8s}")
    for name in predictors:
        median = statistics.median(wall[name])
        print(f"{name:28s} {median:8.2f} {statistics.median(cpu[name]):8.2f} {median / first:8.2f}")


if __name__ == "__main__":
    main()
