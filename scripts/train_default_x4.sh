#!/usr/bin/env bash
# Train the next default ×4 model (issue 22) on a 2-core CPU; every stage resumes where it stopped
# (the run folders' checkpoints are committed between sessions), so re-running continues:
#
#   bash scripts/train_default_x4.sh [stage2|stage1|stage3]      (default: stage2)
#
# stage2: CrossNet with the match_flow aligner, warm-started from crossnet_real_x4 (its MDSR
#         frozen), on generated viewpoint pairs of the training photos plus the real stereo
#         training pairs (configs/default_x4/stage2_refsr.yaml) -> runs/default_x4/stage2_refsr
# stage1: a larger MDSR (8 blocks x 48 channels) trained alone as SISR, to replace the
#         upsampler later (configs/default_x4/stage1_sisr.yaml) -> runs/default_x4/stage1_sisr
# stage3: stage 2's fusion over stage 1's upsampler (frozen), fine-tuned on the same pairs plus
#         more of the hardest kinds (configs/default_x4/stage3_refsr.yaml); needs both finished
#         -> runs/default_x4/stage3_refsr
# Select checkpoints on the validation sets only: bash scripts/evaluate_viewpoint.sh val OUT ...
# THREADS=1 runs one intra-op thread (two stages side by side on two cores).
set -euo pipefail
STAGE="${1:-stage2}"
PYTHON="${PYTHON:-python}"
[ -d data/real/photos/train ] || bash scripts/fetch_real_data.sh data/real
[ -n "${THREADS:-}" ] && export OMP_NUM_THREADS="$THREADS"
case "$STAGE" in
  stage2) "$PYTHON" -m refsr_blocks.train configs/default_x4/stage2_refsr.yaml --out runs/default_x4/stage2_refsr --resume --no-progress ;;
  stage1) "$PYTHON" -m refsr_blocks.train configs/default_x4/stage1_sisr.yaml --out runs/default_x4/stage1_sisr --resume --no-progress ;;
  stage3) "$PYTHON" -m refsr_blocks.train configs/default_x4/stage3_refsr.yaml --out runs/default_x4/stage3_refsr --resume --no-progress ;;
  *) echo "error: unknown stage '$STAGE' (stage1, stage2 or stage3)" >&2; exit 2 ;;
esac
