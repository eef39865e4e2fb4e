"""Page faults and time of CrossNet forwards, with and without ``retain_freed_memory()``.

Usage::

    python benchmarks/page_faults.py [--precision fp32|bf16] [--passes 3]

Each setting runs in a fresh process (the allocator setting is process-wide): the paper
CrossNet without its upsampler at a 320×512 output, channels_last, one warm-up pass, then
``--passes`` passes, each printed with its minor page faults (4 KiB pages) and wall time.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import torch
from run import retain_freed_memory_or_exit  # benchmarks/run.py, next to this script


def child(precision: str, retain: bool, passes: int) -> None:
    from refsr_blocks import build_model
    from refsr_blocks.inference.runtime import inference_context, optimize_for_inference, to_channels_last

    if retain:
        retain_freed_memory_or_exit()
    torch.manual_seed(0)
    model = optimize_for_inference(build_model("crossnet"))
    up, ref = (to_channels_last(torch.rand(1, 3, 320, 512)) for _ in range(2))
    with inference_context("cpu", precision):
        model.fuse(up, ref)  # warm-up
        for _ in range(passes):
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            model.fuse(up, ref)
            seconds = time.perf_counter() - start
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            print(f"  {seconds * 1000:6.0f} ms, {faults:7d} minor faults ({faults * 4 / 1024:.0f} MiB)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--child", choices=("default", "retain"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.precision, args.child == "retain", args.passes)
        return
    for setting in ("default", "retain"):
        print(f"{args.precision}, {setting}:", flush=True)
        cmd = [sys.executable, __file__, "--precision", args.precision, "--passes", str(args.passes)]
        subprocess.run([*cmd, "--child", setting], check=True)


if __name__ == "__main__":
    main()
