#!/usr/bin/env bash
# Evaluate models on the fixed viewpoint sets, one kind at a time, with every control, and print
# one table per model (scripts/viewpoint_tables.py):
#
#   bash scripts/evaluate_viewpoint.sh SPLIT OUT [NAME=]CHECKPOINT ...
#
# SPLIT is val (model selection) or test (the final report only). CHECKPOINT is a
# model.safetensors or a shipped name (crossnet_real_x4, ttsr_real_x4). Kinds: the generated
# viewpoint changes of configs/viewpoint/, nearly aligned pairs (a few pixels of motion) and the
# real stereo pairs of the split. EVAL_ARGS adds options to every run, e.g.
# EVAL_ARGS="--baselines bicubic,upsampler,realesrgan" for the test tables.
set -euo pipefail
SPLIT="$1"; OUT="$2"; shift 2
PYTHON="${PYTHON:-python}"
[ -d data/real/photos/test ] || bash scripts/fetch_real_data.sh data/real
args=()
for checkpoint in "$@"; do args+=(--checkpoint "$checkpoint"); done
for kind in near_aligned shift2d unrectified homography scale rotation partial_overlap layers stereo; do
  "$PYTHON" -m refsr_blocks.evaluation "${args[@]}" --data "configs/viewpoint/eval_${kind}_${SPLIT}.yaml" \
    --out "$OUT/$kind" --title "viewpoint $SPLIT: $kind" --device cpu --force --no-progress ${EVAL_ARGS:-}
done
"$PYTHON" scripts/viewpoint_tables.py "$OUT"
