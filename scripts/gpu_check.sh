#!/usr/bin/env bash
# GPU readiness check (issue 13): the `gpu` tests, training-step timings at the paper's recipe, and a tiny
# paper-recipe training run, in under 10 minutes on one CUDA GPU. Writes benchmarks/results_gpu.md (+ logs in
# benchmarks/gpu_check/). Runs blind: every stage has its own time limit, a failing stage is recorded and the
# script goes on, and without CUDA it records that and exits 0 after the (skipped) tests.
#
# Usage: scripts/gpu_check.sh [python]     (default: python on PATH; run from anywhere)
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${1:-python}"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
OUT="$ROOT/benchmarks/gpu_check"
RES="$ROOT/benchmarks/results_gpu.md"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ddspbench-gpu.XXXXXX")"
mkdir -p "$OUT"
START=$(date +%s)
BUDGET_S=${GPU_CHECK_BUDGET_S:-420}  # no stage starts past this, and none runs over 150 s: the whole check stays under 10 minutes
over_budget() { [ $(( $(date +%s) - START )) -gt "$BUDGET_S" ]; }
status() { # name, rc
  if [ "$2" -eq 0 ]; then echo "ok"; elif [ "$2" -eq 124 ]; then echo "TIMED OUT"; else echo "FAILED (exit $2)"; fi
}

{
  echo "# GPU check"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); host: $(hostname); commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
  echo "- GPU: ${gpu:-none found by nvidia-smi}"
  echo "- torch: $("$PY" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "available:", torch.cuda.is_available())' 2>&1 | tail -1)"
  echo "- CPU load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
  echo
} > "$RES"

HAVE_CUDA=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)

# 1. the gpu-marked tests (skip cleanly without CUDA)
timeout 240 "$PY" -m pytest tests/gpu -m gpu -q -p no:cacheprovider -rs --junitxml="$OUT/gpu_tests.xml" > "$OUT/gpu_tests.log" 2>&1
rc=$?
{
  echo "## gpu tests: $(status test $rc)"
  echo
  echo '```'
  tail -n 15 "$OUT/gpu_tests.log"
  echo '```'
  echo
} >> "$RES"

if [ "$HAVE_CUDA" != "1" ]; then
  echo "No CUDA device: the timing and training stages were not run." >> "$RES"
  rm -rf "$WORK"
  cat "$RES"
  exit 0
fi

# 2. one training step at the paper's recipe (batch 16 x 4 s), per family size, on the GPU
{
  echo "## Training step at the paper's recipe on the GPU (batch 16 x 4 s; forward + MSS + backward + AdamW)"
  echo
  echo "| model | median step (s) | min (s) | stage |"
  echo "|---|---|---|---|"
} >> "$RES"
for size in hpn/reduced hpn/full wavetable/reduced wavetable/full ddx7/reduced ddx7/full; do
  tag="${size//\//_}"
  if over_budget; then echo "| $size | – | – | skipped (time budget) |" >> "$RES"; continue; fi
  timeout 90 "$PY" benchmarks/bench_train.py --device cuda --size "$size" --repeats 5 --out "$OUT/step_$tag.json" \
    > "$OUT/step_$tag.log" 2>&1
  rc=$?
  line=$("$PY" - "$OUT/step_$tag.json" <<'PYEOF' 2>/dev/null
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{d['median_s']['tensor']:.4f} | {d['min_s']['tensor']:.4f}")
PYEOF
)
  echo "| $size | ${line:-– | –} | $(status step $rc) |" >> "$RES"
done
echo >> "$RES"

# 3. a tiny paper-recipe run: synthetic data, HpN full teacher and HpN reduced student, batch 16 x 4 s, 16 kHz,
#    250 frames/s, AdamW 1e-3, on CUDA, a few hundred steps with validation
timeout 120 "$PY" -m suite data --dataset synthetic --out "$WORK/data" --set recordings=6 --no-cache > "$OUT/data.log" 2>&1
rc_data=$?
{
  echo "## Tiny paper-recipe run (synthetic data; batch 16 x 4 s clips; AdamW 1e-3; CUDA)"
  echo
  echo "- data: $(status data $rc_data)"
} >> "$RES"
for spec in "hpn reduced 300" "hpn full 150" "ddx7 reduced 300"; do
  set -- $spec
  if over_budget; then echo "- $1 $2, $3 steps: skipped (time budget of ${BUDGET_S} s spent)" >> "$RES"; continue; fi
  t0=$(date +%s)
  timeout 150 "$PY" -m suite train --family "$1" --size "$2" --data "$WORK/data" --steps "$3" --batch-size 16 \
    --device cuda --valid-every 50 --checkpoint-every "$3" --out "$WORK/run_$1_$2" --no-progress > "$OUT/train_$1_$2.log" 2>&1
  rc=$?
  t1=$(date +%s)
  summary=$("$PY" - "$WORK/run_$1_$2/last.pt" <<'PYEOF' 2>/dev/null
import sys, torch
from ddspbench.suite.train import convergence, learning_curve
meta = torch.load(sys.argv[1], map_location="cpu", weights_only=True)["meta"]["train"]
curve = learning_curve(meta["history"])
v = convergence(curve, meta["step"])
print(f"step {meta['step']}, valid MSS {meta['last_valid']:.3f} (best {meta['best_valid']:.3f}), curve "
      + ", ".join(f"{int(s)}:{x:.2f}" for s, x in curve) + f"; converged: {v['converged']}")
PYEOF
)
  echo "- $1 $2, $3 steps: $(status train $rc) in $((t1 - t0)) s wall; ${summary:-no checkpoint summary (see benchmarks/gpu_check/train_$1_$2.log)}" >> "$RES"
done
{
  echo
  echo "Total wall time: $(( $(date +%s) - START )) s. Logs: benchmarks/gpu_check/."
} >> "$RES"
rm -rf "$WORK"
cat "$RES"
