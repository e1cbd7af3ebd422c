#!/usr/bin/env bash
# GPU readiness check (issue 13): the `gpu` tests, training-step timings at the paper's recipe, a tiny sweep of the
# `paper` preset on CUDA (teachers, students, KD, evaluation of CPU copies), and a tiny paper-recipe training run, in
# under 10 minutes on one CUDA GPU. Writes benchmarks/results_gpu.md (+ logs in benchmarks/gpu_check/). Runs blind:
# every stage has its own time limit, a failing stage is recorded and the script goes on, and without CUDA it records
# that and exits 0 after the (skipped) tests.
#
# Usage: scripts/gpu_check.sh [python]     (default: python on PATH; run from anywhere)
#   GPU_CHECK_DEVICE=cpu scripts/gpu_check.sh   dry-runs every stage on the CPU at toy sizes (checks this script's own
#                                               code on a machine without a GPU; its figures mean nothing)
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
BUDGET_S=${GPU_CHECK_BUDGET_S:-280}  # no stage starts past this, and none runs over 300 s: the whole check stays under 10 minutes
DEV="${GPU_CHECK_DEVICE:-cuda}"
STAGES=" ${GPU_CHECK_STAGES:-tests steps sweep train} "  # e.g. GPU_CHECK_STAGES="tests sweep" for a rerun
want() { [[ "$STAGES" == *" $1 "* ]]; }
over_budget() { [ $(( $(date +%s) - START )) -gt "$BUDGET_S" ]; }
status() { # name, rc
  if [ "$2" -eq 0 ]; then echo "ok"; elif [ "$2" -eq 124 ]; then echo "TIMED OUT"; else echo "FAILED (exit $2)"; fi
}

{
  echo "# GPU check"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); host: $(hostname); commit: $(git rev-parse --short HEAD 2>/dev/null || echo "${GPU_CHECK_COMMIT:-unknown}")"
  gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
  echo "- GPU: ${gpu:-none found by nvidia-smi}"
  echo "- torch: $("$PY" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "available:", torch.cuda.is_available())' 2>&1 | tail -1)"
  echo "- CPU: $(grep -m1 "model name" /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//') ($(nproc) cores); load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
  echo "- device of the run: $DEV$([ "$DEV" = cpu ] && echo ' (DRY RUN: toy sizes, figures mean nothing)')"
  echo
} > "$RES"

if [ "$DEV" = cpu ]; then
  HAVE_CUDA=1; export DDSPBENCH_GPU_TEST_DEVICE=cpu
  REPEATS=1; BATCH=2; FRAMES=100; SWEEP_STEPS=3; SWEEP_CLIPS=6; TRAIN_STEPS=4; RECORDINGS=2
else
  HAVE_CUDA=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
  REPEATS=5; BATCH=16; FRAMES=1000; SWEEP_STEPS=40; SWEEP_CLIPS=32; TRAIN_STEPS=300; RECORDINGS=6
fi

# 1. the gpu-marked tests (skip cleanly without CUDA); -s keeps their CPU-vs-device loss lines in the log
timeout 200 "$PY" -m pytest tests/gpu -m gpu -q -s -p no:cacheprovider -rs --junitxml="$OUT/gpu_tests.xml" \
  > "$OUT/gpu_tests.log" 2>&1
rc=$?
{
  echo "## gpu tests: $(status test $rc)"
  echo
  echo '```'
  grep "first loss" "$OUT/gpu_tests.log" | sed 's/^[.F]*//'
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

# 2. one training step at the paper's recipe (batch 16 x 4 s), per family size, and what 120k steps of it take
want steps && {
  echo "## Training step at the paper's recipe on $DEV (batch $BATCH x $FRAMES frames; forward + MSS + backward + clip + AdamW)"
  echo
  echo "| model | median step (s) | min (s) | 120k steps at the median (h) | stage |"
  echo "|---|---|---|---|---|"
} >> "$RES"
want steps && for size in hpn/reduced hpn/full wavetable/reduced wavetable/full ddx7/reduced ddx7/full; do
  tag="${size//\//_}"
  if over_budget; then echo "| $size | – | – | – | skipped (time budget) |" >> "$RES"; continue; fi
  timeout 90 "$PY" benchmarks/bench_train.py --device "$DEV" --size "$size" --repeats "$REPEATS" --batch "$BATCH" \
    --frames "$FRAMES" --out "$OUT/step_$tag.json" > "$OUT/step_$tag.log" 2>&1
  rc=$?
  line=$("$PY" - "$OUT/step_$tag.json" <<'PYEOF' 2>/dev/null
import json, sys
d = json.load(open(sys.argv[1]))
med, mn = d["median_s"]["tensor"], d["min_s"]["tensor"]
print(f"{med:.4f} | {mn:.4f} | {med * 120_000 / 3600:.1f}")
PYEOF
)
  echo "| $size | ${line:-– | – | –} | $(status step $rc) |" >> "$RES"
done
want steps && echo >> "$RES"

# 3. a tiny sweep of the `paper` preset on the device: the real grid (full teacher, reduced student from scratch, KD on
#    audio, KD on controls) for HpN and DDX7 at the paper's clip length and batch, a few steps each, evaluated as the
#    preset evaluates (aisfx FAD, native engine timing a CPU copy). Synthetic data (no fluidsynth needed).
"$PY" -m ddspbench data --dataset synthetic --out "$WORK/data" --set recordings=$RECORDINGS --no-cache --no-progress \
  > "$OUT/data.log" 2>&1
rc_data=$?
cat > "$WORK/tiny_paper.yaml" <<YAMLEOF
preset: paper
study: gpu-check
data: {max_train: $SWEEP_CLIPS, max_valid: 2, max_test: 2}
teacher: {steps: $SWEEP_STEPS}
student: {steps: $SWEEP_STEPS}
evaluation: {stream_buffers: [64], n_audio_examples: 1}
YAMLEOF
{
  echo "## Tiny \`paper\` sweep on $DEV (HpN + DDX7 grid, $SWEEP_STEPS steps per teacher and student, batch 16, synthetic data)"
  echo
  echo "- data: $(status data $rc_data)"
} >> "$RES"
if ! want sweep; then
  echo "- sweep: not asked for (GPU_CHECK_STAGES)" >> "$RES"
elif over_budget; then
  echo "- sweep: skipped (time budget of ${BUDGET_S} s spent)" >> "$RES"
else
  t0=$(date +%s)
  timeout 300 "$PY" -m ddspbench sweep --preset paper --config "$WORK/tiny_paper.yaml" --families hpn,ddx7 --trials 6 \
    --device "$DEV" --data-path "$WORK/data" --out "$WORK/sweep" --no-progress > "$OUT/sweep.log" 2>&1
  rc=$?
  echo "- sweep: $(status sweep $rc) in $(( $(date +%s) - t0 )) s wall" >> "$RES"
  "$PY" - "$WORK/sweep" >> "$RES" 2>> "$OUT/sweep.log" <<'PYEOF'
import sys
import ddspbench
recs = ddspbench.load_results(sys.argv[1])
print(f"- records: {len(recs)}; status: {recs['status'].value_counts().to_dict()}")
print()
cols = [c for c in ("trial", "family", "method", "status", "device", "mss", "rtf_stream_64", "train_s", "error") if c in recs]
print("| " + " | ".join(cols) + " |")
print("|" + "---|" * len(cols))
def cell(v):
    if isinstance(v, float):
        return "" if v != v else (str(int(v)) if v.is_integer() and abs(v) < 1e6 else f"{v:.4g}")
    return str(v)[:80]
for _, r in recs[cols].iterrows():
    print("| " + " | ".join(cell(r[c]) for c in cols) + " |")
PYEOF
fi
echo >> "$RES"

# 4. a tiny paper-recipe training run with validation: HpN reduced, batch 16 x 4 s clips, AdamW 1e-3, on the device
echo "## Paper-recipe training run on $DEV (synthetic data; batch $BATCH x 4 s clips; AdamW 1e-3)" >> "$RES"
echo >> "$RES"
for spec in "hpn reduced $TRAIN_STEPS"; do
  set -- $spec
  if ! want train; then echo "- not asked for (GPU_CHECK_STAGES)" >> "$RES"; continue; fi
  if over_budget; then echo "- $1 $2, $3 steps: skipped (time budget of ${BUDGET_S} s spent)" >> "$RES"; continue; fi
  t0=$(date +%s)
  timeout 120 "$PY" -m ddspbench train --family "$1" --size "$2" --data "$WORK/data" --steps "$3" --batch-size "$BATCH" \
    --device "$DEV" --valid-every $(( $3 / 6 > 0 ? $3 / 6 : 1 )) --checkpoint-every "$3" --out "$WORK/run_$1_$2" \
    --no-progress > "$OUT/train_$1_$2.log" 2>&1
  rc=$?
  t1=$(date +%s)
  summary=$("$PY" - "$WORK/run_$1_$2/last.pt" <<'PYEOF' 2>>"$OUT/train_$1_$2.log"
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
