"""The GPU check: CUDA tests, half-precision warp checks beyond 512 px, and the GPU benchmark table, in one JSON.

Usage (``scripts/gpu_check.sh`` runs it with a time budget)::

    python benchmarks/gpu_check.py --out gpu_check.json               # on a CUDA machine, < 8 minutes
    python benchmarks/gpu_check.py --dry-run --out /tmp/dry.json       # the same code on the CPU, tiny sizes

Sections, each recorded in the JSON with its status and seconds (a section that would start
after ``--budget`` seconds is recorded as ``skipped`` rather than run):

1. ``tests``: ``pytest -m cuda tests/tools/test_cuda.py`` (in a subprocess; counts and failures);
2. ``warp``: :func:`refsr_blocks.ops.backward_warp` under fp16 and bf16 autocast at 1080×1920
   and 2160×3840 (beyond 512 px, where half-precision positions would be whole pixels): zero
   flow and integer flow exact, sub-pixel flows against the float64 definition, in units of
   the half dtype's rounding;
3. ``bench``: the paper's CrossNet with its upsampler at 320×512 and 1920×1080 outputs, fp32
   (TF32 allowed, PyTorch's default), bf16 and fp16 autocast, eager and ``torch.compile``:
   median latency, FLOPs (``torch.utils.flop_counter``), achieved TFLOP/s, and the fraction of
   the GPU's peak measured in the same run (the best of large matmuls in that dtype).

With ``--dry-run`` everything runs on the CPU with ``crossnet_lite``, 64×96 and 96×128
outputs, 256-pixel warps, fp32 and bf16, compile for one case; the tests section only
collects the CUDA tests (they skip without a GPU). It checks the script, not the GPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from benchtools import sync, timed  # benchmarks/benchtools.py, next to this script

ROOT = Path(__file__).resolve().parents[1]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Budget:
    """Seconds left of the whole check; sections ask before they start."""

    def __init__(self, seconds: float) -> None:
        self.start, self.seconds = time.perf_counter(), seconds

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)


def run_section(report: dict[str, Any], name: str, budget: Budget, need: float, fn, *args: Any) -> None:
    """Run ``fn(*args)`` into ``report[name]`` unless fewer than ``need`` seconds are left; never raise."""
    if budget.left() < need:
        report[name] = {"status": "skipped", "reason": f"{budget.left():.0f} s left of the budget, needs ~{need:.0f} s"}
        return
    start = time.perf_counter()
    try:
        report[name] = {"status": "ok", **fn(*args)}
    except Exception as err:  # recorded, so that the other sections still run and the JSON is written
        report[name] = {"status": "error", "error": f"{type(err).__name__}: {err}"}
    report[name]["seconds"] = round(time.perf_counter() - start, 1)
    print(f"[gpu_check] {name}: {report[name]['status']} ({report[name]['seconds']} s)", flush=True)


# -- 1. the CUDA tests ---------------------------------------------------------------------------
def cuda_tests(dry_run: bool, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests/tools/test_cuda.py", "-p", "no:cacheprovider"]
    if dry_run:
        cmd.append("--collect-only")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    return {
        "returncode": proc.returncode,
        "summary": lines[-1] if lines else proc.stderr[-500:],
        "failures": [line for line in lines if line.startswith(("FAILED", "ERROR"))],
        "passed": proc.returncode == 0,
    }


# -- 2. half-precision warps beyond 512 px ------------------------------------------------------------
def warp_checks(device: str, sizes: list[tuple[int, int]], precisions: list[str]) -> dict[str, Any]:
    from refsr_blocks.ops.warp import backward_warp
    from refsr_blocks.testing import bilinear_reference

    rows = []
    for h, w in sizes:
        g = torch.Generator().manual_seed(h + w)
        x = torch.rand(1, 3, h, w, generator=g)
        sub = torch.randint(-63 * 4, 64 * 4, (1, 2, h, w), generator=g) / 64.0  # up to ±4 px, 1/64 steps
        integer = torch.randint(-3, 4, (1, 2, h, w), generator=g).float()
        for name in precisions:
            dtype = DTYPES[name]
            xh = x.to(dtype)
            eps = torch.finfo(dtype).eps
            with torch.inference_mode(), torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
                zero = backward_warp(xh.to(device), torch.zeros(1, 2, h, w, device=device, dtype=dtype))
                shifted = backward_warp(xh.to(device), integer.to(device, dtype))
                blended = backward_warp(xh.to(device), sub.to(device, dtype))
            exact_shift = bilinear_reference(xh.float(), integer).to(dtype)
            # the float64 definition on the same half-precision image, far right columns (x > 512)
            cols = slice(max(0, w - 256), w)
            expected = bilinear_reference(xh.float(), sub.to(dtype).float())[..., cols]
            err = (blended[..., cols].cpu().double() - expected).abs()
            rows.append(
                {
                    "size": [h, w],
                    "precision": name,
                    "zero_flow_exact": bool(torch.equal(zero.cpu(), xh)),
                    "integer_flow_exact": bool(torch.equal(shifted.cpu(), exact_shift)),
                    "max_error_in_roundings": float((err / (expected.abs() * eps + 1e-6)).max()),
                    "max_abs_error": float(err.max()),
                    "out_dtype": str(blended.dtype),
                }
            )
    ok = all(r["zero_flow_exact"] and r["integer_flow_exact"] and r["max_error_in_roundings"] <= 1.01 for r in rows)
    return {"rows": rows, "passed": ok}


# -- 3. the benchmark table ------------------------------------------------------------------------------
def median_seconds(fn, device: str, repeats: int, warmup: int = 2) -> tuple[float, float]:
    times = timed(fn, device, repeats, warmup)
    return statistics.median(times), min(times)


def matmul_peak(device: str, precision: str, n: int, repeats: int) -> float:
    """The best TFLOP/s of an n×n matmul in ``precision`` (fp32 with TF32 allowed, PyTorch's default for convs)."""
    a = torch.randn(n, n, device=device, dtype=DTYPES[precision])
    b = torch.randn(n, n, device=device, dtype=DTYPES[precision])
    with torch.inference_mode():
        _, best = median_seconds(lambda: a @ b, device, repeats)
    return 2 * n**3 / best / 1e12


def bench(
    device: str,
    preset: str,
    sizes: list[tuple[int, int]],
    precisions: list[str],
    compile_cases: int,
    repeats: int,
    budget: Budget,
) -> dict[str, Any]:
    """Eager then compiled cases; a case is skipped (and listed) once less than a minute is left."""
    n = 8192 if device == "cuda" else 512
    peaks = {p: matmul_peak(device, p, n, repeats) for p in precisions}
    rows = []
    compiled_done = 0
    for compiled in (False, True):
        for h, w in sizes:
            for precision in precisions:
                if compiled and compiled_done >= compile_cases:
                    continue
                if budget.left() < 60:
                    rows.append({"size": [h, w], "precision": precision, "compiled": compiled, "skipped": "budget"})
                    continue
                row = bench_case(device, preset, h, w, precision, compiled, repeats)
                row["fraction_of_peak"] = row["tflops"] / peaks[precision]
                rows.append(row)
                print(
                    f"[gpu_check] {preset} {h}x{w} {precision} {'compiled' if compiled else 'eager'}: "
                    f"{row['median_ms']:.1f} ms, {row['tflops']:.2f} TFLOP/s, {row['fraction_of_peak']:.0%} of peak",
                    flush=True,
                )
                compiled_done += compiled
                if device == "cuda":
                    torch.cuda.empty_cache()
    return {"matmul_peak_tflops": peaks, "matmul_n": n, "rows": rows}


def bench_case(device: str, preset: str, h: int, w: int, precision: str, compiled: bool, repeats: int) -> dict:
    """One model forward (×4, upsampler included) timed at an h×w output."""
    from torch.utils.flop_counter import FlopCounterMode

    from refsr_blocks import build_model
    from refsr_blocks.inference.runtime import inference_context, optimize_for_inference, to_channels_last

    torch.manual_seed(0)
    model = optimize_for_inference(build_model(preset).to(device))
    runner = torch.compile(model) if compiled else model
    lr = to_channels_last(torch.rand(1, 3, h // 4, w // 4, device=device))
    ref = to_channels_last(torch.rand(1, 3, h, w, device=device))

    def call() -> torch.Tensor:
        with inference_context(device, precision):
            return runner(lr, ref)

    start = time.perf_counter()
    call()
    sync(device)
    first_s = time.perf_counter() - start
    with (
        FlopCounterMode(display=False, custom_mapping=_flop_formulas()) as counter,
        inference_context(device, precision),
    ):
        model(lr, ref)
    flops = counter.get_total_flops()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    median, best = median_seconds(call, device, repeats)
    row = {
        "size": [h, w],
        "precision": precision,
        "compiled": compiled,
        "median_ms": median * 1000,
        "best_ms": best * 1000,
        "first_call_s": first_s,
        "gflop": flops / 1e9,
        "tflops": flops / median / 1e12,
        "peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
    }
    return row  # the model is freed on return; bench() empties the CUDA cache


def _flop_formulas() -> dict:
    from refsr_blocks.layers import flop_formulas

    return flop_formulas()


def environment(device: str) -> dict[str, Any]:
    env = {"torch": torch.__version__, "python": platform.python_version(), "device": device}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(
            gpu=props.name,
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            capability=f"{props.major}.{props.minor}",
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    else:
        env.update(cpu_threads=torch.get_num_threads())
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--dry-run", action="store_true", help="the same code on the CPU at tiny sizes")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for the whole check (default 450)")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("[gpu_check] no CUDA device: run with --dry-run to check the script on the CPU", file=sys.stderr)
        return 2
    device = "cpu" if args.dry_run else "cuda"
    budget = Budget(args.budget)
    report: dict[str, Any] = {"dry_run": args.dry_run, "environment": environment(device)}
    if args.dry_run:
        warp_sizes, precisions, preset = [(64, 640)], ["fp32", "bf16"], "crossnet_lite"
        sizes, compile_cases, repeats = [(64, 96), (96, 128)], 1, min(args.repeats, 2)
    else:
        warp_sizes, precisions, preset = [(1080, 1920), (2160, 3840)], ["fp32", "bf16", "fp16"], "crossnet"
        sizes, compile_cases, repeats = [(320, 512), (1080, 1920)], 6, args.repeats
    run_section(report, "tests", budget, 60, cuda_tests, args.dry_run, max(30.0, budget.left() * 0.4))
    run_section(report, "warp", budget, 20, warp_checks, device, warp_sizes, [p for p in precisions if p != "fp32"])
    run_section(report, "bench", budget, 60, bench, device, preset, sizes, precisions, compile_cases, repeats, budget)
    report["total_seconds"] = round(time.perf_counter() - budget.start, 1)
    report["passed"] = all(report.get(k, {}).get("status") == "ok" for k in ("tests", "warp", "bench")) and bool(
        report["tests"].get("passed") and report["warp"].get("passed")
    )
    args.out.write_text(json.dumps(report, indent=1))
    print(f"[gpu_check] wrote {args.out} (passed: {report['passed']}, {report['total_seconds']} s)")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
