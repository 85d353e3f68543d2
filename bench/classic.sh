#!/usr/bin/env bash
# Classic-family benchmark in Microsoft Recommenders' protocol: fits SAR and ItemKNN on MovieLens 100K
# (configs/<model>-ml-100k.toml: per-user stratified 75/25, top 10) and prints one row per model and split seed in
# the format of their benchmark tables (test stage, from each run folder's results.json), under Microsoft's
# published SAR row (examples/02_model_collaborative_filtering/lightgcn_deep_dive.ipynb; their times are their
# machine's). Usage:
#   bench/classic.sh [model ...]        models: sar itemknn (default: both)
# Env: BIN=build/embrec, RUNS=runs/bench, SEEDS="42" (split seeds; with several, a mean ± sd row per model follows:
# our split draws differ from numpy's, and one draw moves NDCG@10 by ~0.004), EXTRA="--set ..." (more overrides,
# applied to every model).
# Train seconds are results.json's fit_seconds (count-based models learn in fit(), timed by the trainer); predict seconds are the test stage's evaluation seconds (scoring, masking and top-K ranking of
# every test user), what Microsoft times around recommend_k_items.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/embrec}
RUNS=${RUNS:-runs/bench}
SEEDS=${SEEDS:-42}
DATA=../shared/data/ml-100k/u.data
if [ ! -f "$DATA" ]; then
  echo "SKIPPED classic: $DATA not found"
  exit 0
fi
mkdir -p "$RUNS"
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(sar itemknn)
echo "| Data | Algo | K | MAP | nDCG@k | Precision@k | Recall@k | Train time (s) | Predict time (s) |"
echo "|---|---|---|---|---|---|---|---|---|"
echo "| 100k | SAR (Microsoft, published) | 10 | 0.110591 | 0.382461 | 0.330753 | 0.176385 | 0.4895 | 0.1144 |"
for model in "${models[@]}"; do
  runs=()
  for seed in $SEEDS; do
    out="$RUNS/$model-ml-100k-seed$seed"
    # A count-based run takes seconds: always refit, so the figures belong to the binary being measured.
    rm -rf "$out"
    $BIN train --config "configs/$model-ml-100k.toml" --out "$out" --set "data.split.seed=$seed" ${EXTRA:-} \
        > "$out.log" 2>&1 || { echo "FAILED $out (see $out.log)"; continue; }
    runs+=("$out")
  done
  [ ${#runs[@]} -gt 0 ] || continue
  python3 - "$model" "${runs[@]}" <<'PY'
import json, re, statistics, sys
model, runs = sys.argv[1], sys.argv[2:]
keys = ["map@10", "ndcg@10", "precision@10", "recall@10"]
values = []
for run in runs:
    r = json.load(open(run + "/results.json"))
    m = r["test"]["groups"]["all"]["metrics"]
    fit_seconds = f"{r['fit_seconds']:.4f}"
    seed = run.rsplit("seed", 1)[1]
    values.append([m[k] for k in keys])
    print(f"| 100k | {model} (embrec, split seed {seed}, {r['test']['groups']['all']['users']} users) | 10 | "
          + " | ".join(f"{m[k]:.6f}" for k in keys) + f" | {fit_seconds} | {r['test']['seconds']:.4f} |")
if len(values) > 1:
    cells = [f"{statistics.mean(c):.4f} ± {statistics.stdev(c):.4f}" for c in zip(*values)]
    print(f"| 100k | {model} (embrec, mean ± sd of {len(values)} split seeds) | 10 | " + " | ".join(cells) + " | | |")
PY
done
