"""Several references matched jointly, on real stereo pairs: does a second partial view help?

Usage::

    python benchmarks/multi_reference.py --checkpoint runs/ttsr_real_x4/model.safetensors
        [--data configs/real_x4/eval_stereo_test.yaml] [--keep 0.6]

For each pair of the split, the real reference (the right view) is cut into two partial
references: its left ``keep`` fraction of columns and its right ``keep`` fraction (they
overlap when ``keep`` > 0.5). An attention model is run whole (no tiling) with the left part
only, the right part only, and both (matched jointly), and with the whole reference; the
table gives PSNR (protocol ``rgb``) per pair and the mean.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from refsr_blocks import load_model
from refsr_blocks.evaluation.command import dataset_from_argument
from refsr_blocks.evaluation.protocols import get_protocol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", default="configs/real_x4/eval_stereo_test.yaml")
    parser.add_argument("--keep", type=float, default=0.6, help="fraction of the columns each partial reference keeps")
    args = parser.parse_args()
    model = load_model(args.checkpoint).eval()
    scale = int(model.spec["params"]["upscale"])
    dataset, _ = dataset_from_argument(args.data, scale)
    protocol = get_protocol("rgb")
    settings = ("left part", "right part", "both parts (joint)", "whole reference")
    scores: dict[str, list[float]] = {k: [] for k in settings}
    print(f"{protocol.describe()}; partial references keep {args.keep:.0%} of the columns")
    print("| pair | " + " | ".join(settings) + " |")
    print("| --- |" + " ---: |" * len(settings))
    for i in range(len(dataset)):
        item = dataset[i]
        lr, ref, hr = item["lr"][None], item["ref"][None], item["hr"][None]
        width = ref.shape[-1]
        cut = round(args.keep * width)
        left, right = ref[..., :cut], ref[..., width - cut :]
        refs = {settings[0]: [left], settings[1]: [right], settings[2]: [left, right], settings[3]: [ref]}
        row = []
        for name, r in refs.items():
            with torch.no_grad():
                value = float(protocol.measure(model(lr, r), hr)[0][0])
            scores[name].append(value)
            row.append(f"{value:.2f}")
        print(f"| {item.get('name', i)} | " + " | ".join(row) + " |", flush=True)
    print("| **mean** | " + " | ".join(f"**{statistics.fmean(scores[k]):.2f}**" for k in settings) + " |")


if __name__ == "__main__":
    main()
