#!/usr/bin/env bash
# Train the ×8 model (issue 22) on a 2-core CPU; every stage resumes where it stopped (the run
# folders' checkpoints are committed between sessions), so re-running continues:
#
#   bash scripts/train_default_x8.sh stage1|stage2
#
# stage1: the ×8 MDSR alone as SISR, from the ×4 default's stage-1 MDSR
#         (configs/default_x8/stage1_sisr.yaml) -> runs/default_x8/stage1_sisr
# stage2: the ×4 stage-2 fusion over it at ×8, upsampler frozen
#         (configs/default_x8/stage2_refsr.yaml) -> runs/default_x8/stage2_refsr
# THREADS=1 runs one intra-op thread (two stages side by side on two cores).
# Select checkpoints on the validation sets only: bash scripts/evaluate_viewpoint.sh val OUT ...
set -euo pipefail
STAGE="${1:-}"
PYTHON="${PYTHON:-python}"
[ -d data/real/photos/train ] || bash scripts/fetch_real_data.sh data/real
[ -n "${THREADS:-}" ] && export OMP_NUM_THREADS="$THREADS"
case "$STAGE" in
  stage1) "$PYTHON" -m refsr_blocks.train configs/default_x8/stage1_sisr.yaml --out runs/default_x8/stage1_sisr --resume --no-progress ;;
  stage2) "$PYTHON" -m refsr_blocks.train configs/default_x8/stage2_refsr.yaml --out runs/default_x8/stage2_refsr --resume --no-progress ;;
  *) echo "error: unknown stage '$STAGE' (stage1 or stage2)" >&2; exit 2 ;;
esac
