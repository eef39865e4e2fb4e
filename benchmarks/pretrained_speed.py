"""Seconds for one 640×480 output per pretrained model, through ``Predictor``, and ratios to the first.

The input is the shipped demo pair (a 160×120 LR and its 640×480 stereo reference; ×8 models get
the LR reduced to 80×60). Each model is loaded once and warmed with one call; then the models
take turns, one call each per round, so a busy moment on a shared machine falls on all of them
alike. Printed per model: the median wall and CPU seconds of a call and the ratio of its median
wall time to the first model's, all from this run::

    python benchmarks/pretrained_speed.py crossnet_real_x4 ttsr_real_x4 new=runs/x/model.safetensors
    python benchmarks/pretrained_speed.py crossnet_real_x4 NAME=FILE --rounds 7 --threads 2 --json speed.json

Not part of the test run: timings are noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

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
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
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
    setting = f"{cpu_name()}, {args.threads} threads, {args.precision}, {args.rounds} rounds, 640×480 output"
    rows = {
        name: {
            "wall_s": statistics.median(wall[name]),
            "cpu_s": statistics.median(cpu[name]),
            "times_first": statistics.median(wall[name]) / first,
        }
        for name in predictors
    }
    print(setting)
    print(f"{'model':28s} {'wall s':>8s} {'CPU s':>8s} {'× first':>8s}")
    for name, row in rows.items():
        print(f"{name:28s} {row['wall_s']:8.2f} {row['cpu_s']:8.2f} {row['times_first']:8.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"setting": setting, "models": rows}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
