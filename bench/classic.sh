#!/usr/bin/env bash
# Classic-family benchmark in Microsoft Recommenders' protocol on MovieLens 100K: trains each model's
# configs/<model>-ml-100k.toml (stratified 75/25 split, top 10 with training items removed) and prints one row per
# model and split seed in the format of their benchmark tables (test stage, from each run folder's results.json),
# under Microsoft's published row for the same algorithm where one exists (their times are their machine's).
# Usage:
#   bench/classic.sh [model ...]
#   models: sar itemknn mf bpr bpr-sgd mf-softmax ncf ncf-pretrain rbm rlrmc (default: sar itemknn)
#   ncf-pretrain first trains configs/ncf-gmf-ml-100k.toml and configs/ncf-mlp-ml-100k.toml for the same seed.
# Env: BIN=build/embrec, RUNS=runs/bench, SEEDS="42" (split seeds; with several, a mean ± sd row per model follows:
# our split draws differ from numpy's, and one draw moves NDCG@10 by ~0.004), EXTRA="--set ..." (more overrides,
# applied to every model, e.g. --set data.split.stratify_by=item for the split of Microsoft's benchmark notebook),
# TAG=name (appended to run folder names, to keep runs with different EXTRA apart).
# Train seconds: count-based models learn in fit() (results.json fit_seconds); trained models add their epochs'
# seconds (train_seconds, evaluation excluded). Predict seconds: the test stage's evaluation (scoring, masking and
# top-K ranking of every test user, plus rating prediction for rating models), what Microsoft times around
# recommend_k_items (and predict).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/embrec}
RUNS=${RUNS:-runs/bench}
SEEDS=${SEEDS:-42}
TAG=${TAG:-}
DATA=../shared/data/ml-100k/u.data
if [ ! -f "$DATA" ]; then
  echo "SKIPPED classic: $DATA not found"
  exit 0
fi
mkdir -p "$RUNS"
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(sar itemknn)

# train CONFIG_NAME SEED [--set ...]: trains configs/CONFIG_NAME-ml-100k.toml afresh into $RUNS, prints the folder.
train() {
  local name=$1 seed=$2
  shift 2
  local out="$RUNS/$name-ml-100k$TAG-seed$seed"
  rm -rf "$out"
  # shellcheck disable=SC2086
  if ! $BIN train --config "configs/$name-ml-100k.toml" --out "$out" --set "data.split.seed=$seed" ${EXTRA:-} "$@" \
      > "$out.log" 2>&1; then
    echo "FAILED $out (see $out.log)" >&2
    return 1
  fi
  echo "$out"
}

echo "| Data | Algo | K | MAP | nDCG@k | Precision@k | Recall@k | RMSE | MAE | R² | Train time (s) | Predict time (s) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for model in "${models[@]}"; do
  runs=()
  for seed in $SEEDS; do
    if [ "$model" = ncf-pretrain ]; then
      gmf=$(train ncf-gmf "$seed") || continue
      mlp=$(train ncf-mlp "$seed") || continue
      out=$(train ncf-pretrain "$seed" --set "model.pretrain_gmf=$PWD/$gmf" --set "model.pretrain_mlp=$PWD/$mlp") ||
        continue
      runs+=("$out" "$gmf" "$mlp")
    else
      out=$(train "$model" "$seed") || continue
      runs+=("$out")
    fi
  done
  [ ${#runs[@]} -gt 0 ] || continue
  python3 - "$model" "${runs[@]}" <<'PY'
import json, statistics, sys
model, runs = sys.argv[1], sys.argv[2:]
# Microsoft Recommenders' published ML-100K rows: ranking figures from their README table, times from the notebook
# that produced each (see bench/RESULTS.md).
published = {
    "sar": ("SAR", [0.110591, 0.382461, 0.330753, 0.176385], None, "0.4895", "0.1144"),
    "bpr": ("BPR (cornac)", [0.105365, 0.389948, 0.349841, 0.181807], None, "0.4412", "1.3232"),
    "bpr-sgd": ("BPR (cornac)", [0.105365, 0.389948, 0.349841, 0.181807], None, "0.4412", "1.3232"),
    "ncf": ("NCF", [0.107720, 0.396118, 0.347296, 0.180775], None, "54.19", "2.66"),
    "ncf-pretrain": ("NCF", [0.107720, 0.396118, 0.347296, 0.180775], None, "54.19", "2.66"),
    "mf": ("SVD (Surprise)", [0.012873, 0.095930, 0.091198, 0.032783], [0.938681, 0.742690, 0.291967], "", ""),
}
keys = ["map@10", "ndcg@10", "precision@10", "recall@10"]
rating_keys = ["rmse", "mae", "r2"]
if model in published:
    name, ranking, rating, train, predict = published[model]
    rating_cells = [f"{v:.6f}" for v in rating] if rating else ["", "", ""]
    print(f"| 100k | {name} (Microsoft, published) | 10 | " + " | ".join(f"{v:.6f}" for v in ranking)
          + " | " + " | ".join(rating_cells) + f" | {train} | {predict} |")
values = []
# ncf-pretrain runs come in threes (NeuMF, then its GMF and MLP parts): the row's train time is all three.
step = 3 if model == "ncf-pretrain" else 1
for index in range(0, len(runs), step):
    group = [json.load(open(run + "/results.json")) for run in runs[index:index + step]]
    r = group[0]
    m = r["test"]["groups"]["all"]["metrics"]
    train = sum(x["fit_seconds"] + (x["train_seconds"] if x["epochs_run"] > 0 else 0.0) for x in group)
    seed = runs[index].rsplit("seed", 1)[1]
    row = [m[k] for k in keys] + [m.get(k) for k in rating_keys]
    values.append(row)
    cells = [f"{v:.6f}" if v is not None else "" for v in row]
    print(f"| 100k | {model} (embrec, split seed {seed}) | 10 | " + " | ".join(cells)
          + f" | {train:.4f} | {r['test']['seconds']:.4f} |")
if len(values) > 1:
    cells = []
    for column in zip(*values):
        present = [v for v in column if v is not None]
        cells.append(f"{statistics.mean(present):.4f} ± {statistics.stdev(present):.4f}" if len(present) > 1 else "")
    print(f"| 100k | {model} (embrec, mean ± sd of {len(values)} split seeds) | 10 | " + " | ".join(cells) + " | | |")
PY
done
