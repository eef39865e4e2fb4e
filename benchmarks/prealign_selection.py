"""Choose the pre-alignment on the validation split (never the test split).

For each candidate (``none``; phase correlation at downscale 1, 2, 4) it prints, over the
validation split:

- real stereo pairs: mean PSNR of the shifted reference against the target (higher = the
  reference is closer to aligned before any flow is estimated);
- real photos with synthetic parallax (configs/real_x4/eval_photos_val.yaml): mean
  end-point error between the constant shift and the ground-truth flow over valid pixels
  (the residual the flow network must still find), and the share of pixels left more than
  16 px away.

    python benchmarks/prealign_selection.py [--data data/real]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

from refsr_blocks.components.prealigns import phase_correlation_shift, shift_image
from refsr_blocks.data import PairFolderDataset, downsample
from refsr_blocks.data.entries import build_dataset
from refsr_blocks.evaluation.metrics import psnr
from refsr_blocks.tools.viz import bicubic_upsample

CANDIDATES = {"none": None, "phase_correlation/1": 1, "phase_correlation/2": 2, "phase_correlation/4": 4}


def _shift(target: torch.Tensor, ref: torch.Tensor, downscale: int | None) -> torch.Tensor:
    if downscale is None:
        return torch.zeros(target.shape[0], 2)
    return phase_correlation_shift(target, ref, max_shift=96, downscale=downscale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/real"))
    args = parser.parse_args()
    stereo = PairFolderDataset(args.data / "stereo" / "val", scale=4)
    entry = yaml.safe_load(Path("configs/real_x4/eval_photos_val.yaml").read_text())
    entry["images"] = str(args.data / "photos" / "val")
    photos = build_dataset(entry, scale=4, default_seed=0)
    print(f"validation split: {len(stereo)} stereo pairs, {len(photos)} synthetic-parallax pairs")
    print(f"{'candidate':<22} {'stereo ref PSNR':>16} {'photos residual EPE':>20} {'> 16 px':>8} {'ms/pair':>8}")
    for name, downscale in CANDIDATES.items():
        scores, epes, far, seconds = [], [], [], 0.0
        for item in stereo:
            # The model sees the upsampled LR, not the ground truth: align against that.
            up = bicubic_upsample(downsample(item["hr"], 4)[None], 4)
            ref = item["ref"][None]
            t0 = time.perf_counter()
            shift = _shift(up, ref, downscale)
            seconds += time.perf_counter() - t0
            scores.append(float(psnr(shift_image(ref, shift), item["hr"][None])))
        for item in photos:
            up = bicubic_upsample(item["lr"][None], 4)
            shift = _shift(up, item["ref"][None], downscale)
            residual = torch.linalg.vector_norm(item["flow"] - shift[0, :, None, None], dim=0)
            valid = item["valid"][0] > 0
            epes.append(float(residual[valid].mean()))
            far.append(float((residual[valid] > 16).float().mean()))
        n = len(stereo)
        print(
            f"{name:<22} {sum(scores) / n:>13.2f} dB {sum(epes) / len(epes):>17.2f} px {100 * sum(far) / len(far):>7.1f}%"
            f" {1000 * seconds / n:>8.1f}"
        )


if __name__ == "__main__":
    main()
