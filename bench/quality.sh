#!/usr/bin/env bash
# Quality benchmark: trains SASRec with the papers' protocol on each dataset present in ../shared/data and prints
# test HR/NDCG@5/10/20 (from each run folder's results.json). Usage:
#   bench/quality.sh [dataset ...]        datasets: beauty sports ml-1m (default: all present)
# Env: LOSS=bce|softmax (default both), SEED=42, EXTRA="--set train.epochs=50" (more overrides), RUNS=runs/bench
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/embrec}
RUNS=${RUNS:-runs/bench}
SEED=${SEED:-42}
mkdir -p "$RUNS"
declare -A FILES=([beauty]=amazon-beauty/Beauty.txt [sports]=amazon-sports/Sports_and_Outdoors.txt [ml-1m]=ml-1m/ml-1m.txt)
datasets=("$@")
[ ${#datasets[@]} -eq 0 ] && datasets=(beauty sports ml-1m)
losses=(${LOSS:-bce softmax})
for dataset in "${datasets[@]}"; do
  if [ ! -f "../shared/data/${FILES[$dataset]}" ]; then
    echo "SKIPPED $dataset: ../shared/data/${FILES[$dataset]} not found"
    continue
  fi
  for loss in "${losses[@]}"; do
    out="$RUNS/sasrec-$dataset-$loss-seed$SEED"
    resume=""
    [ -f "$out/checkpoint.pt" ] && resume="--resume"
    [ -f "$out/results.json" ] || $BIN train --config "configs/sasrec-$dataset.toml" --out "$out" $resume \
        --set "model.loss=$loss" --set "train.seed=$SEED" ${EXTRA:-} > "$out.log" 2>&1 || { echo "FAILED $out (see $out.log)"; continue; }
    python3 - "$out/results.json" "$dataset" "$loss" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = r["test"]["groups"]["all"]["metrics"]
keys = ["hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20"]
print(f"| {sys.argv[2]} | sasrec ({sys.argv[3]}) | " + " | ".join(f"{m[k]:.4f}" for k in keys) +
      f" | {r['best_epoch']}/{r['epochs_run']} | {r['train_seconds']:.0f} |")
PY
  done
done
