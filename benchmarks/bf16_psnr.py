"""PSNR of bf16 autocast inference vs fp32 on the evaluation harness's held-out pairs.

Usage::

    python benchmarks/bf16_psnr.py [--checkpoint refsr_blocks/assets/crossnet_small_x4.safetensors]

Evaluates the checkpoint on the first-result config's ``data.test`` split twice, in fp32 and
under bf16 autocast (channels_last, inference mode), and prints both mean PSNRs and their
difference.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from refsr_blocks import load_model
from refsr_blocks.data.entries import build_dataset
from refsr_blocks.evaluation.metrics import psnr
from refsr_blocks.inference.runtime import optimize_for_inference, run
from refsr_blocks.train import load_config

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "refsr_blocks/assets/crossnet_small_x4.safetensors"))
    parser.add_argument("--config", default=str(ROOT / "configs/first_result.yaml"))
    args = parser.parse_args()
    model = optimize_for_inference(load_model(args.checkpoint))
    config = load_config(args.config)
    dataset = build_dataset(config.data.test, scale=model.upscale, default_seed=config.seed, path="data.test")
    scores: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for i in range(len(dataset)):
        item = dataset[i]
        lr, ref, hr = (item[k].unsqueeze(0) for k in ("lr", "ref", "hr"))
        for precision in scores:
            sr = run(model, lr, ref, precision).clamp(0, 1)
            scores[precision].append(psnr(sr, hr).item())
    mean = {k: sum(v) / len(v) for k, v in scores.items()}
    worst = max(abs(a - b) for a, b in zip(scores["fp32"], scores["bf16"]))
    print(
        f"{len(dataset)} pairs: PSNR fp32 {mean['fp32']:.3f} dB, bf16 {mean['bf16']:.3f} dB, "
        f"mean difference {mean['bf16'] - mean['fp32']:+.4f} dB, largest per-image |difference| {worst:.4f} dB"
    )


if __name__ == "__main__":
    main()
