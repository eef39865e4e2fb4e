"""Ship the small TTSR-style model trained next to the default CrossNet: weights and model card.

Usage (after training with configs/real_x4/ttsr_refsr.yaml and evaluating both models)::

    python scripts/make_ttsr_assets.py [--run runs/ttsr_real_x4] [--eval runs/ttsr_real_x4/eval]

- ``refsr_blocks/assets/ttsr_real_x4.safetensors``: the run's final weights (its newest
  checkpoint's when the run stopped before writing them; spec inside);
- ``refsr_blocks/assets/ttsr_real_x4.json``: the model card, its tables copied from the
  evaluation's ``summary.json`` files (test splits only; the rows of this model and bicubic).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from model_card import final_weights, headlines, rows_of  # scripts/model_card.py, next to this script

from refsr_blocks import load_model, save_model

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "refsr_blocks" / "assets"
NAME = "ttsr_real_x4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / NAME)
    parser.add_argument("--eval", type=Path, default=ROOT / "runs" / NAME / "eval")
    args = parser.parse_args()

    path, step = final_weights(args.run)
    model = load_model(path)
    save_model(model, ASSETS / f"{NAME}.safetensors", {"refsr_blocks.trained_by": "configs/real_x4/ttsr_refsr.yaml"})
    results = {}
    for split in ("stereo_test", "photos_test"):
        summary = args.eval / split / "summary.json"
        if summary.is_file():
            results[split] = rows_of(json.loads(summary.read_text(encoding="utf-8")), [NAME])
    card = {
        "task": "×4 reference-based super-resolution of real photos and stereo pairs (attention-based)",
        "architecture": "configs/real_x4/ttsr_model.yaml",
        "training_data": (
            "CrossNet's stage-2 data: the training split of the real photos with synthetic parallax, plus the "
            "7 OAK-D stereo pairs of the training split; the stage-1 MDSR upsampler of crossnet_real_x4, frozen"
        ),
        "steps": {"ttsr_refsr": step, "schedule": 2000},
        "command": (
            "OMP_NUM_THREADS=1 python -m refsr_blocks.train configs/real_x4/ttsr_refsr.yaml --out runs/ttsr_real_x4 "
            "--resume; then refsr-blocks eval on configs/real_x4/eval_{stereo,photos}_test.yaml"
        ),
        "held_out": "Middlebury images (refsr_blocks.data.real_photos.HELD_OUT) were never used",
        "selection": "none: the weights are those of the last step reached",
        "pretrained_vgg": "none: the texture extractor started at random (no network access), no perceptual loss",
        "results": results,
        "headline": headlines(
            results,
            NAME,
            [("stereo_test", "real stereo test pairs"), ("photos_test", "synthetic-parallax test pairs")],
            protocol=True,
        ),
    }
    (ASSETS / f"{NAME}.json").write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {ASSETS / NAME}.safetensors (step {step}) and {NAME}.json")


if __name__ == "__main__":
    main()
