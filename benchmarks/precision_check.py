"""How far does bf16 autocast move CrossNet's output from float32? Prints the figures for the docs.

Usage::

    python benchmarks/precision_check.py                      # paper CrossNet, 80×128 → 320×512, CPU bf16
    python benchmarks/precision_check.py --device cuda --dtype fp16
    python benchmarks/precision_check.py --preset crossnet_lite --lr-size 40 64
    python benchmarks/precision_check.py --fast-path   # optimize_for_inference + channels_last inputs

Weights are random (``torch.manual_seed(seed)`` before ``build_model``); the inputs are a
smooth random scene (:func:`refsr_blocks.tools.precision.smooth_pair`: bicubically upsampled
noise); ``ref`` is shifted by (5, 3) px from the HR target and ``lr`` is the target
area-downsampled, so the flow estimator has something to find.
The same model and inputs run once in float32 and once under autocast; the script prints
the max abs difference and PSNR (peak 1.0, and peak = the float32 output's range, which
is small with random weights) of the outputs, the same for the upsampled LR, and the flows'
end-point error. Timings are printed for information only. By default the model runs as
built (NCHW, PyTorch's own kernels); ``--fast-path`` runs it as
:func:`refsr_blocks.inference.runtime.run` does (``optimize_for_inference``, channels_last inputs), where
the layers' CPU inference paths (packed weights, the row-split few-output convolutions) apply.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from refsr_blocks import build_model
from refsr_blocks.evaluation.metrics import psnr
from refsr_blocks.inference.runtime import optimize_for_inference, to_channels_last
from refsr_blocks.ops.flow import end_point_error
from refsr_blocks.tools.precision import smooth_pair

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def compare(
    preset: str, lr_size: tuple[int, int], device: str, dtype: torch.dtype, seed: int, fast_path: bool = False
) -> dict[str, object]:
    """Run ``preset`` in float32 and under autocast(``dtype``); return the differences."""
    torch.manual_seed(seed)
    model = build_model(preset).to(device).eval()
    lr, ref, _ = smooth_pair(1, lr_size, model.upscale, seed, shift=(5, 3), device=device)
    if fast_path:
        model = optimize_for_inference(model)
        lr, ref = to_channels_last(lr), to_channels_last(ref)
    runs = {}
    for name, enabled in (("fp32", False), ("autocast", True)):
        with torch.inference_mode(), torch.autocast(device, dtype=dtype, enabled=enabled):
            start = time.perf_counter()
            out = model.forward_intermediates(lr, ref)
            if device == "cuda":
                torch.cuda.synchronize()
            runs[name] = (out, time.perf_counter() - start)
    (ref32, t32), (low, tlow) = runs["fp32"], runs["autocast"]
    sr32, srlow = ref32["sr"], low["sr"].float()
    up32, uplow = ref32["upsampled"], low["upsampled"].float()

    def db(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> float:
        # one pair (batch 1), raw outputs: no clamping to the image range
        return psnr(a, b, peak=peak, clamp=False).item()

    return {
        "preset": preset,
        "device": device,
        "fast_path": fast_path,
        "autocast_dtype": str(dtype).removeprefix("torch."),
        "lr_size": list(lr.shape[-2:]),
        "sr_size": list(sr32.shape[-2:]),
        "output_dtype_under_autocast": str(low["sr"].dtype).removeprefix("torch."),
        "sr_max_abs_diff": (srlow - sr32).abs().max().item(),
        "sr_mean_abs_diff": (srlow - sr32).abs().mean().item(),
        "sr_psnr_db": db(srlow, sr32),
        "sr_fp32_range": [sr32.min().item(), sr32.max().item()],
        # random weights give a small output range: PSNR with that range as the peak too
        "sr_psnr_db_range_peak": db(srlow, sr32, peak=(sr32.max() - sr32.min()).item()),
        "upsampled_max_abs_diff": (uplow - up32).abs().max().item(),
        "upsampled_psnr_db": db(uplow, up32),
        "upsampled_fp32_range": [up32.min().item(), up32.max().item()],
        "flow_epe_per_level": [end_point_error(a.float(), b).item() for a, b in zip(low["flows"], ref32["flows"])],
        "flow_max_abs_level0": ref32["flows"][0].abs().max().item(),
        "seconds_fp32": round(t32, 2),
        "seconds_autocast": round(tlow, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="crossnet")
    parser.add_argument("--lr-size", type=int, nargs=2, default=(80, 128), metavar=("H", "W"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast-path", action="store_true", help="optimize_for_inference + channels_last inputs")
    args = parser.parse_args()
    result = compare(args.preset, tuple(args.lr_size), args.device, DTYPES[args.dtype], args.seed, args.fast_path)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
