#!/usr/bin/env bash
# Evaluate the default model with every control on the held-out test splits (means over each split):
#
#   bash scripts/evaluate_default.sh [MODEL] [OUT]    (defaults: runs/default/stage2_refsr/model.safetensors, runs/default/eval)
#
# Rows: bicubic; the SISR upsampler alone; the model with the real reference; the model with
# no-information references (flat grey; the LR's own bicubic upsample); the oracle reference
# (warped by the ground-truth flow, synthetic pairs only). The reference gain is the real
# reference's PSNR minus the best no-information PSNR.
set -euo pipefail
MODEL="${1:-runs/default/stage2_refsr/model.safetensors}"
OUT="${2:-runs/default/eval}"
PYTHON="${PYTHON:-python}"
[ -d data/real/photos/test ] || bash scripts/fetch_real_data.sh data/real
for split in stereo_test photos_test; do
  "$PYTHON" -m refsr_blocks.evaluation --checkpoint "crossnet_real_x4=$MODEL" --data "configs/real_x4/eval_$split.yaml" \
    --out "$OUT/$split" --title "crossnet_real_x4: $split" --device cpu --force --no-progress
  cat "$OUT/$split/results.md"
done
