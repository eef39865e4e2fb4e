#!/usr/bin/env bash
# Reproduce the default pretrained weights (crossnet_real_x4) on a 2-core CPU in under 2 hours:
#
#   bash scripts/train_default.sh [OUT_DIR]          (default: runs/default)
#
# 1. gathers the real-photo collection into data/real (scripts/fetch_real_data.sh) if needed;
# 2. stage 1: trains the MDSR upsampler alone as SISR   (configs/real_x4/stage1_sisr.yaml);
# 3. stage 2: trains CrossNet with that upsampler frozen (configs/real_x4/stage2_refsr.yaml),
#    stopped by its time limit (70 minutes) if the 4500 steps take longer.
# Every stage resumes where it stopped, so re-running the script after an interruption
# continues. Evaluate the result with scripts/evaluate_default.sh.
set -euo pipefail
OUT="${1:-runs/default}"
PYTHON="${PYTHON:-python}"
[ -d data/real/photos/train ] || bash scripts/fetch_real_data.sh data/real

"$PYTHON" -m refsr_blocks.train configs/real_x4/stage1_sisr.yaml --out "$OUT/stage1_sisr" --resume --no-progress
"$PYTHON" -m refsr_blocks.train configs/real_x4/stage2_refsr.yaml --out "$OUT/stage2_refsr" --resume --no-progress \
  --set "init.path=$OUT/stage1_sisr/model.safetensors"
echo "weights: $OUT/stage2_refsr/model.safetensors"
