#!/usr/bin/env bash
# The first result: CrossNet vs the same network with a blank reference vs bicubic, at ×4.
#
#   bash scripts/first_result.sh [OUT_DIR] [trainer options...]
#
# 1. trains CrossNet (configs/first_result.yaml) and the same network with a grey reference
#    (--set reference=blank) side by side, one CPU thread each, so both see the same machine;
# 2. evaluates both, and bicubic, on pairs from held-out images with fixed seeds (data.test);
# 3. prints the PSNR table and whether CrossNet beats both (exit status 1 if it does not).
#
# Output (default runs/first_result): crossnet/ and blank_ref/ (run directories with
# model.safetensors, checkpoints, metrics.jsonl), *.log, and eval/results.{md,csv} +
# summary.json. Runs resume where they stopped, so re-running the script after an
# interruption continues; trainer options are passed on, e.g. `--max-steps 40` for a
# quick check of the pipeline (then use another OUT_DIR for the real run).
set -euo pipefail

OUT="${1:-runs/first_result}"
shift $(( $# > 0 ? 1 : 0 ))
CONFIG="${CONFIG:-configs/first_result.yaml}"
PYTHON="${PYTHON:-python}"
mkdir -p "$OUT"

train() {  # NAME [trainer options...]
  local name="$1"
  shift
  "$PYTHON" -m refsr_blocks.train "$CONFIG" --out "$OUT/$name" --resume --no-progress \
    --set runtime.threads=1 "$@" >"$OUT/$name.log" 2>&1
}

start=$(date +%s)
echo "training crossnet and blank_ref in parallel (logs: $OUT/crossnet.log, $OUT/blank_ref.log)"
train crossnet "$@" &
crossnet_pid=$!
train blank_ref --set reference=blank "$@" &
blank_pid=$!
status=0
wait "$crossnet_pid" || status=$?
wait "$blank_pid" || status=$?
tail -n 1 "$OUT/crossnet.log" "$OUT/blank_ref.log"
if [ "$status" -ne 0 ]; then
  echo "training failed (exit status $status); see the logs above" >&2
  exit "$status"
fi
echo "trained in $(( $(date +%s) - start )) s"

"$PYTHON" -m refsr_blocks.evaluation \
  --checkpoint "crossnet=$OUT/crossnet/model.safetensors" \
  --checkpoint "blank_ref=$OUT/blank_ref/model.safetensors" \
  --data "$CONFIG" --split test --baselines bicubic \
  --out "$OUT/eval" --force --no-progress \
  --title "First result: CrossNet vs blank reference vs bicubic (×4, synthetic parallax, held-out images)"
echo "total $(( $(date +%s) - start )) s"

"$PYTHON" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
summary = json.loads((out / "eval" / "summary.json").read_text())["methods"]
steps = {}
for name in ("crossnet", "blank_ref"):
    ends = [json.loads(l) for l in (out / name / "metrics.jsonl").read_text().splitlines() if '"end"' in l]
    steps[name] = ends[-1]["step"]
print(f"steps trained: {steps}")
if len(set(steps.values())) > 1:
    print("warning: the two networks trained for different numbers of steps (a time limit was hit)")
psnr = {m: v["psnr"] for m, v in summary.items()}
print("PSNR (RGB, dB): " + ", ".join(f"{m} {p:.3f}" for m, p in psnr.items()))
gain_ref = psnr["crossnet"] - psnr["blank_ref"]
gain_bic = psnr["crossnet"] - psnr["bicubic"]
print(f"crossnet - blank_ref = {gain_ref:+.3f} dB (what the warped reference adds); crossnet - bicubic = {gain_bic:+.3f} dB")
sys.exit(0 if gain_ref > 0 and gain_bic > 0 else 1)
EOF
