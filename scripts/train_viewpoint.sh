#!/usr/bin/env bash
# Train the viewpoint models of issue 22 on a 2-core CPU, one stage at a time. Every stage
# resumes where it stopped (the run folders' checkpoints are committed between sessions):
#
#   bash scripts/train_viewpoint.sh x4 stage1|stage2|stage3
#   bash scripts/train_viewpoint.sh x8 stage1|stage2
#
# x4 stage1: a larger MDSR (8 blocks x 48 channels) alone as SISR   (configs/default_x4/stage1_sisr.yaml)
# x4 stage2: CrossNet with the match_flow aligner, from crossnet_real_x4, its MDSR frozen, on
#            generated viewpoint pairs and the real stereo training pairs (stage2_refsr.yaml)
# x4 stage3: stage 2's fusion over stage 1's MDSR, frozen, fine-tuned (stage3_refsr.yaml)
# x8 stage1: the ×8 MDSR alone as SISR, from x4 stage 1's             (configs/default_x8/stage1_sisr.yaml)
# x8 stage2: x4 stage 2's fusion over it at ×8, upsampler frozen      (configs/default_x8/stage2_refsr.yaml)
# Each writes runs/default_<factor>/<config name>. THREADS=1 runs one intra-op thread (two
# stages side by side on two cores). Select checkpoints on the validation sets only:
# bash scripts/evaluate_viewpoint.sh val OUT ...
set -euo pipefail
FACTOR="${1:-}"; STAGE="${2:-}"
PYTHON="${PYTHON:-python}"
case "$STAGE" in
  stage1) name=stage1_sisr ;;
  stage2|stage3) name="${STAGE}_refsr" ;;
  *) name="" ;;
esac
config="configs/default_${FACTOR}/${name}.yaml"
if [ -z "$name" ] || [ ! -f "$config" ]; then
  echo "error: no stage '$STAGE' of '$FACTOR' (x4: stage1, stage2, stage3; x8: stage1, stage2)" >&2
  exit 2
fi
[ -d data/real/photos/train ] || bash scripts/fetch_real_data.sh data/real
if [ -n "${THREADS:-}" ]; then export OMP_NUM_THREADS="$THREADS"; fi
"$PYTHON" -m refsr_blocks.train "$config" --out "runs/default_${FACTOR}/${name}" --resume --no-progress
