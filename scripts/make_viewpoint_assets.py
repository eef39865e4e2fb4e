"""Ship a viewpoint model of issue 22 (``crossnet_viewpoint_x4`` or ``_x8``): weights and model card.

Usage, after its training stages, the test evaluation and the speed benchmark::

    EVAL_ARGS="--baselines bicubic,upsampler,realesrgan" bash scripts/evaluate_viewpoint.sh test \\
        runs/eval_viewpoint_test_x4 crossnet_viewpoint_x4=runs/default_x4/stage3_refsr/model.safetensors \\
        crossnet_real_x4 ttsr_real_x4
    python benchmarks/pretrained_speed.py crossnet_real_x4 ttsr_real_x4 \\
        crossnet_viewpoint_x4=runs/default_x4/stage3_refsr/model.safetensors --json runs/speed_x4.json
    python scripts/make_viewpoint_assets.py crossnet_viewpoint_x4 --eval runs/eval_viewpoint_test_x4 \\
        --speed runs/speed_x4.json [--model FILE]

- ``refsr_blocks/assets/<name>.safetensors``: the last stage's final weights (``--model``: a
  checkpoint chosen on the validation sets instead; spec inside);
- ``refsr_blocks/assets/<name>.json``: the model card; its tables are copied from the
  evaluation's per-kind ``summary.json`` files (test sets only: this model's rows, its
  controls and bicubic), its timing from the benchmark's JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from model_card import final_weights, headlines, rows_of  # scripts/model_card.py, next to this script

from refsr_blocks import load_model, save_model

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "refsr_blocks" / "assets"
#: The sets of scripts/evaluate_viewpoint.sh, with what their pairs are.
SETS = {
    "near_aligned": "nearly aligned generated pairs (a few pixels of motion)",
    "shift2d": "generated 2-D shift pairs",
    "unrectified": "generated unrectified stereo pairs",
    "homography": "generated perspective (homography) pairs",
    "scale": "generated scale-change pairs (0.6-1.6×)",
    "rotation": "generated rotation pairs",
    "partial_overlap": "generated partial-overlap pairs",
    "layers": "generated depth-layer pairs with occlusion",
    "stereo": "real stereo test pairs",
}
TRAINING_DATA = (
    "the training split of the real photos (refsr_blocks.data.real_photos.PHOTOS): as SISR for the upsampler; "
    "as generated viewpoint pairs of every kind (2-D shifts, unrectified stereo, homographies, scale 0.6-1.6×, "
    "rotation ±15°, partial overlap, depth layers; photometric, blur, noise and JPEG differences), plus the 7 "
    "OAK-D stereo pairs of the training split, for the fusion"
)
MODELS = {
    "crossnet_viewpoint_x4": {
        "task": "×4 reference-based super-resolution with a reference from another viewpoint",
        "architecture": "configs/default_x4/stage3_model.yaml",
        "stages": ["default_x4/stage1_sisr", "default_x4/stage2_refsr", "default_x4/stage3_refsr"],
        "command": "for s in stage1 stage2 stage3; do bash scripts/train_viewpoint.sh x4 $s; done",
    },
    "crossnet_viewpoint_x8": {
        "task": "×8 reference-based super-resolution with a reference from another viewpoint",
        "architecture": "configs/default_x8/model.yaml",
        "stages": [
            "default_x4/stage1_sisr",
            "default_x4/stage2_refsr",
            "default_x8/stage1_sisr",
            "default_x8/stage2_refsr",
        ],
        "command": (
            "for s in stage1 stage2; do bash scripts/train_viewpoint.sh x4 $s; done; "
            "for s in stage1 stage2; do bash scripts/train_viewpoint.sh x8 $s; done"
        ),
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(MODELS))
    parser.add_argument("--eval", type=Path, required=True, help="scripts/evaluate_viewpoint.sh's OUT (test)")
    parser.add_argument("--speed", type=Path, default=None, help="benchmarks/pretrained_speed.py --json output")
    parser.add_argument("--model", type=Path, default=None, help="the weights (default: the last stage's final)")
    parser.add_argument("--selection", default="none: the weights of the last step of the last stage")
    args = parser.parse_args()
    about = MODELS[args.name]
    runs = [ROOT / "runs" / stage for stage in about["stages"]]

    path, _ = final_weights(runs[-1]) if args.model is None else (args.model, None)
    save_model(load_model(path), ASSETS / f"{args.name}.safetensors", {"refsr_blocks.trained_by": about["command"]})
    results = {}
    for kind in SETS:
        summary = args.eval / kind / "summary.json"
        if summary.is_file():
            results[f"{kind}_test"] = rows_of(json.loads(summary.read_text(encoding="utf-8")), [args.name])
    card = {
        "task": about["task"],
        "architecture": about["architecture"],
        "training_data": TRAINING_DATA,
        "steps": {stage: final_weights(run)[1] for stage, run in zip(about["stages"], runs)},
        "command": about["command"],
        "evaluation": "scripts/evaluate_viewpoint.sh test (configs/viewpoint/eval_<kind>_test.yaml)",
        "held_out": "Middlebury images (refsr_blocks.data.real_photos.HELD_OUT) were never used",
        "selection": args.selection,
        "results": results,
        "headline": headlines(results, args.name, [(f"{kind}_test", what) for kind, what in SETS.items()]),
    }
    if args.speed is not None:
        card["speed_640x480"] = json.loads(args.speed.read_text(encoding="utf-8"))
    (ASSETS / f"{args.name}.json").write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {ASSETS / args.name}.safetensors (from {path}) and {args.name}.json ({len(results)} test sets)")


if __name__ == "__main__":
    main()
