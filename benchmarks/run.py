"""CrossNet benchmarks: latency, FLOPs, achieved GFLOP/s, peak memory, as ratios to this machine's floor.

Usage::

    python benchmarks/run.py                 # the default matrix, table + benchmarks/results.json
    python benchmarks/run.py --full          # every size × scale × mode
    python benchmarks/run.py --device cuda   # on a GPU

The floor is measured in the same run: the best GFLOP/s of 3×3 convolutions (64 and 128
channels, 160×256 and 320×512) in each precision/memory format, once at the start (printed)
and again inside each case's process just before it is timed. A peak rate is a
best-observed figure, and a busy moment during a measurement would otherwise flatter the
ratios, so the table and the JSON use the best of all of these measurements in the run
(printed as "run-wide conv floor"; the per-case lines use the best so far); "floor time" of a case is
its FLOPs divided by the matching peak GFLOP/s. "× floor" is the median latency over floor
time, "× floor (best)" the fastest repeat over it (the floor itself is a best-of-N figure,
so this compares like with like and is less sensitive to a busy machine). Every case also
times the upsampler alone (``upsampler_ms``), so the cost the no-upsampler cases leave out
is reported beside them. Each case runs in a fresh subprocess so that its peak RSS (CPU) or
peak allocated memory (CUDA) is its own.
Not part of the test run: timings are noisy on a shared machine; run it on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from benchtools import timed  # benchmarks/benchtools.py, next to this script
from torch.utils.flop_counter import FlopCounterMode

#: ``precision_format[_compile][_predict][_retain|_thp]``: ``_predict`` times the one-call path,
#: ``refsr_blocks.Predictor(model, precision=...).predict(lr, ref)`` on plain CPU tensors (input
#: conversion, fast layers and clamping included; the Predictor leaves the allocator alone);
#: ``_retain`` calls
#: :func:`refsr_blocks.inference.runtime.retain_freed_memory` first (CPU: freed buffers are reused
#: instead of page-faulted back in on every pass); ``_thp`` runs the case's process with
#: PyTorch's ``THP_MEM_ALLOC_ENABLE=1`` (CPU tensors of 2 MB and more on transparent huge
#: pages: a 512th of the page faults).
MODES = (
    "fp32_nchw",
    "fp32_cl",
    "bf16_cl",
    "fp16_cl",
    "fp32_cl_compile",
    "bf16_cl_compile",
    "fp32_cl_retain",
    "bf16_cl_retain",
    "bf16_cl_compile_retain",
    "fp32_cl_thp",
    "bf16_cl_thp",
    "fp32_cl_predict",
    "bf16_cl_predict",
    "fp32_cl_predict_retain",
    "bf16_cl_predict_retain",
)

#: The issue-16 targets for the one-call path at 320×512 on the CPU (× the floor of the same run).
TARGETS = {"fp32": 1.2, "bf16": 1.3}

#: Flags that only mean something for the CPU's host memory.
HOST_MEMORY_FLAGS = ("retain", "thp")


@dataclass
class Case:
    height: int  # output (HR) size
    width: int
    upscale: int
    upsampler: bool  # include the MDSR stage
    mode: str
    preset: str = "crossnet"

    @property
    def label(self) -> str:
        part = "full" if self.upsampler else "no-upsampler"
        return f"{self.preset} {self.height}x{self.width} x{self.upscale} {part} {self.mode}"


def best_ms(fn, repeats: int = 9, warmup: int = 2) -> float:
    """The fastest of ``repeats`` CPU calls of ``fn``, in milliseconds."""
    return min(timed(fn, "cpu", repeats, warmup)) * 1000


def retain_freed_memory_or_exit() -> None:
    """:func:`refsr_blocks.inference.runtime.retain_freed_memory`, or exit where it cannot apply."""
    from refsr_blocks.inference.runtime import retain_freed_memory

    if not retain_freed_memory():
        raise SystemExit("retain_freed_memory() is not available here (glibc only)")


#: Convolutions whose best GFLOP/s defines the floor: (channels, height, width), 3×3 kernels.
FLOOR_SHAPES = ((64, 320, 512), (64, 160, 256), (128, 160, 256))


def conv_floor(device: str, repeats: int) -> dict[str, float]:
    """Peak GFLOP/s of 3×3 convs (the best over :data:`FLOOR_SHAPES`) per precision and format."""
    return {
        name: conv_peak(device, repeats, name)
        for name in ("fp32_nchw", "fp32_cl", "bf16_cl", *(("fp16_cl",) if device == "cuda" else ()))
    }


def conv_peak(device: str, repeats: int, variant: str) -> float:
    """The best GFLOP/s over :data:`FLOOR_SHAPES` for one precision/format ``variant``."""
    return max(_conv_gflops(device, repeats, c, h, w, variant) for c, h, w in FLOOR_SHAPES)


def _conv_gflops(device: str, repeats: int, channels: int, height: int, width: int, variant: str) -> float:
    weight = torch.randn(channels, channels, 3, 3, device=device)
    x = torch.randn(1, channels, height, width, device=device)
    flops = 2 * channels * channels * 9 * height * width
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[variant.split("_")[0]]
    fmt = torch.contiguous_format if variant.endswith("nchw") else torch.channels_last
    xx = x.to(dtype).contiguous(memory_format=fmt)
    ww = weight.to(dtype).contiguous(memory_format=fmt)
    with torch.inference_mode():
        best = min(timed(lambda: F.conv2d(xx, ww, padding=1), device, max(repeats, 5), 2))
    return flops / best / 1e9


def run_case(case: Case, device: str, repeats: int) -> dict:
    """Build, count FLOPs, time, and report peak memory for one case (in this process)."""
    from refsr_blocks import build_model
    from refsr_blocks.inference.runtime import inference_context, optimize_for_inference, to_channels_last

    flags = set(case.mode.split("_")[1:])
    if "retain" in flags:
        retain_freed_memory_or_exit()
    if "predict" in flags:
        return run_predictor_case(case, device, repeats)
    compiled = "compile" in flags
    if "thp" in flags and os.environ.get("THP_MEM_ALLOC_ENABLE") != "1":
        raise RuntimeError("_thp cases need THP_MEM_ALLOC_ENABLE=1 in their environment (main() sets it)")
    torch.manual_seed(0)
    model = build_model(case.preset, upscale=case.upscale).to(device)
    channels_last = "nchw" not in flags
    model = optimize_for_inference(model, channels_last=channels_last, compile=compiled)
    precision = case.mode.split("_")[0]
    h, w = case.height, case.width
    lr = torch.rand(1, 3, h // case.upscale, w // case.upscale, device=device)
    ref = torch.rand(1, 3, h, w, device=device)
    if channels_last:
        lr, ref = to_channels_last(lr), to_channels_last(ref)
    inner = getattr(model, "_orig_mod", model)
    upsample = torch.compile(inner.upsampler) if compiled else inner.upsampler
    with inference_context(device, precision):
        up = upsample(lr)
    if case.upsampler:
        fn = lambda: model(lr, ref)  # noqa: E731
    else:
        fuse = torch.compile(inner.fuse) if compiled else inner.fuse
        fn = lambda: fuse(up, ref)  # noqa: E731

    def call():
        with inference_context(device, precision):
            return fn()

    compile_s = None
    if compiled:
        start = time.perf_counter()
        call()
        compile_s = time.perf_counter() - start

    def call_upsampler():
        with inference_context(device, precision):
            return upsample(lr)

    return measure(case, device, repeats, call, call_upsampler, compile_s)


def run_predictor_case(case: Case, device: str, repeats: int) -> dict:
    """One full-model case through the one-call path, :class:`refsr_blocks.Predictor` (in this process)."""
    from refsr_blocks import Predictor, build_model

    if not case.upsampler:
        raise ValueError("the _predict modes time the whole model (upsampler included)")
    torch.manual_seed(0)
    precision = case.mode.split("_")[0]
    model = build_model(case.preset, upscale=case.upscale)
    predictor = Predictor(model, device=device, precision=precision)
    h, w = case.height, case.width
    lr = torch.rand(1, 3, h // case.upscale, w // case.upscale)  # plain NCHW CPU tensors, as a user has them
    ref = torch.rand(1, 3, h, w)
    call = lambda: predictor.predict(lr, ref)  # noqa: E731
    call()
    model = predictor.model

    def call_upsampler():
        from refsr_blocks.inference.runtime import inference_context, to_channels_last

        with inference_context(device, precision):
            return model.upsampler(to_channels_last(lr.to(device)))

    return measure(case, device, repeats, call, call_upsampler)


def measure(case: Case, device: str, repeats: int, call, call_upsampler, compile_s: float | None = None) -> dict:
    """Count the FLOPs of ``call``, time it and ``call_upsampler``, and read the peak memory: one result row."""
    from refsr_blocks.layers import flop_formulas

    # custom_mapping: the flow estimator's packed-weight convolutions are oneDNN operators
    with FlopCounterMode(display=False, custom_mapping=flop_formulas()) as counter:
        call()
    flops = counter.get_total_flops()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    floor = conv_peak(device, repeats, floor_key(case.mode))
    times = timed(call, device, repeats, warmup=1)
    upsampler_times = timed(call_upsampler, device, repeats, warmup=1)
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        **asdict(case),
        "label": case.label,
        "gflop": flops / 1e9,
        "latency_s": statistics.median(times),
        "min_s": min(times),
        "upsampler_ms": statistics.median(upsampler_times) * 1000,
        "compile_s": compile_s,
        "peak_mb": peak,
        "rss_before_mb": rss_before,
        "floor_gflops": floor,
    }


def matrix(full: bool, device: str) -> list[Case]:
    # fp16 autocast is a CUDA mode; host memory settings matter on the CPU only.
    def host_memory(mode: str) -> bool:
        return any(flag in mode.split("_") for flag in HOST_MEMORY_FLAGS)

    modes = [
        m
        for m in MODES
        if "predict" not in m
        and ((not m.startswith("fp16") and not host_memory(m)) or (device == "cuda") == m.startswith("fp16"))
    ]
    predict = [Case(320, 512, 4, True, m) for m in MODES if "predict" in m]
    if full:
        return [
            Case(h, w, s, up, m)
            for (h, w) in ((320, 512), (512, 512))
            for s in (4, 8)
            for up in (False, True)
            for m in modes
        ] + predict
    cases = [Case(320, 512, 4, False, m) for m in modes]
    retained = ("fp32_cl_retain", "bf16_cl_retain") if device == "cpu" else ()
    cases += [Case(320, 512, 4, True, m) for m in ("fp32_cl", "bf16_cl", *retained)]
    cases += [Case(512, 512, 4, False, m) for m in ("fp32_cl", "bf16_cl")]
    cases += [Case(320, 512, 8, False, m) for m in ("fp32_cl", "bf16_cl")]
    return cases + predict


def set_floor(r: dict, floor: float) -> None:
    """Fill ``r``'s floor and the ratios to it."""
    r["floor_gflops"] = floor
    r["achieved_gflops"] = r["gflop"] / r["latency_s"]
    r["x_floor"] = r["latency_s"] / (r["gflop"] / floor) if floor else None
    r["x_floor_best"] = r["min_s"] / (r["gflop"] / floor) if floor else None


def floor_key(mode: str) -> str:
    precision, layout = mode.split("_")[:2]
    return f"{precision}_{layout}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="every size × scale × upsampler × mode")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path(__file__).with_name("results.json"))
    parser.add_argument("--only", default="", help="run only cases whose label contains this text")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case as JSON
    args = parser.parse_args(argv)

    if args.case:  # child process: run one case, print its JSON
        print(json.dumps(run_case(Case(**json.loads(args.case)), args.device, args.repeats)))
        return 0

    threads = torch.get_num_threads()
    print(f"device={args.device} torch={torch.__version__} threads={threads}", flush=True)
    floors = conv_floor(args.device, args.repeats)
    print("conv floor (best 3x3 conv GFLOP/s): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in floors.items()))
    results = []
    for case in matrix(args.full, args.device):
        if args.only not in case.label:
            continue
        cmd = [sys.executable, __file__, "--case", json.dumps(asdict(case)), "--device", args.device]
        cmd += ["--repeats", str(args.repeats)]
        env = os.environ.copy()
        if "thp" in case.mode.split("_"):
            env["THP_MEM_ALLOC_ENABLE"] = "1"  # read once by PyTorch's CPU allocator, at start-up
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(f"{case.label}: FAILED\n{proc.stderr[-2000:]}", flush=True)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        key = floor_key(case.mode)
        r["floor_case_gflops"] = r["floor_gflops"]
        floors[key] = max(floors.get(key, 0.0), r["floor_case_gflops"])
        set_floor(r, floors[key])
        results.append(r)
        print(
            f"{r['label']:<52} {r['latency_s'] * 1000:8.0f} ms (best {r['min_s'] * 1000:.0f})  "
            f"{r['gflop']:6.0f} GFLOP  {r['achieved_gflops']:5.0f} GFLOP/s (floor so far {floors[key]:.0f})  "
            f"x{r['x_floor'] or float('nan'):.2f} floor (best x{r['x_floor_best'] or float('nan'):.2f})  "
            f"upsampler {r['upsampler_ms']:.0f} ms  peak {r['peak_mb']:6.0f} MB"
            + (f"  compile {r['compile_s']:.0f}s" if r["compile_s"] else ""),
            flush=True,
        )
    # The floor is a best-observed rate: the table uses the best seen anywhere in this run.
    for r in results:
        set_floor(r, floors[floor_key(r["mode"])])
    print("run-wide conv floor: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in floors.items()))
    for r in results:
        if "_predict" in r["mode"]:
            target = TARGETS.get(r["mode"].split("_")[0])
            print(
                f"one-call path (Predictor), {r['preset']} {r['height']}x{r['width']} x{r['upscale']} with its upsampler, "
                f"{r['mode']}: x{r['x_floor']:.2f} the floor (best repeat x{r['x_floor_best']:.2f})"
                + (f", target <= {target}" if target else "")
            )
    args.json.write_text(json.dumps({"floors_gflops": floors, "threads": threads, "results": results}, indent=1))
    print(f"\nwrote {args.json}")
    print(
        "\n| case | latency (ms) | best (ms) | GFLOP | GFLOP/s | floor GFLOP/s | × floor | × floor (best) "
        "| upsampler (ms) | peak MB |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    for r in results:
        print(
            f"| {r['label']} | {r['latency_s'] * 1000:.0f} | {r['min_s'] * 1000:.0f} | {r['gflop']:.0f} | "
            f"{r['achieved_gflops']:.0f} | {r['floor_gflops']:.0f} | {r['x_floor'] or float('nan'):.2f} | "
            f"{r['x_floor_best'] or float('nan'):.2f} | {r['upsampler_ms']:.0f} | {r['peak_mb']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
