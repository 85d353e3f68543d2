#!/usr/bin/env bash
# Grid search on the validation stage: trains CONFIG once per combination of the given values (each a --set
# override) and prints one row per run with the valid-stage selection metric at the best epoch, sorted best first.
# The test stage is never looked at, so the chosen values can then be written into the config honestly.
# Usage:
#   bench/sweep.sh CONFIG OUT_DIR KEY=V1,V2,... [KEY=V1,V2,...]
#   e.g. bench/sweep.sh configs/bpr-ml-100k.toml runs/sweep/bpr model.reg=0.0005,0.005 train.learning_rate=0.01,0.001
# Env: FIXED="--set data.split.valid_ratio=0.15 --set train.eval_every=5" (overrides shared by every run),
#      SELECT=ndcg@10 (the valid metric to rank by; rmse and mae rank smallest first), BIN=build/embrec.
# Runs that already have results.json are not retrained; a run folder with checkpoint.pt and no results.json (a run
# that was stopped) is resumed (`--resume`, which refuses a config that differs from the run's).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/embrec}
SELECT=${SELECT:-ndcg@10}
config=$1 out=$2
shift 2
combos=("")
for grid in "$@"; do
  key=${grid%%=*} values=${grid#*=}
  next=()
  for combo in "${combos[@]}"; do
    IFS=, read -ra list <<< "$values"
    for value in "${list[@]}"; do next+=("$combo $key=$value"); done
  done
  combos=("${next[@]}")
done
mkdir -p "$out"
folders=()
for combo in "${combos[@]}"; do
  name=$(echo "$combo" | sed 's/^ //; s/[^A-Za-z0-9_.=-]\+/_/g')
  folder="$out/$name"
  sets=()
  for pair in $combo; do sets+=(--set "$pair"); done
  if [ ! -f "$folder/results.json" ]; then
    resume=""
    if [ -f "$folder/checkpoint.pt" ]; then resume="--resume"; else rm -rf "$folder"; fi
    # shellcheck disable=SC2086
    if ! $BIN train --config "$config" --out "$folder" $resume ${FIXED:-} "${sets[@]}" > "$folder.log" 2>&1; then
      echo "FAILED $folder (see $folder.log)"
      continue
    fi
  fi
  folders+=("$folder")
done
[ ${#folders[@]} -eq 0 ] && exit 1
python3 - "$SELECT" "${folders[@]}" <<'PY'
import json, os, sys
select, rows = sys.argv[1], []
for folder in sys.argv[2:]:
    r = json.load(open(os.path.join(folder, "results.json")))
    valid = r["valid"]["groups"]["all"]["metrics"]
    if select not in valid or r["valid"]["targets"] == 0:
        sys.exit(f"{folder}: no valid '{select}' (is there a valid stage? set data.split.valid_ratio)")
    rows.append((valid[select], os.path.basename(folder), r["best_epoch"], r["epochs_run"], r["train_seconds"]))
rows.sort(reverse=select not in ("rmse", "mae"))
print(f"| run | valid {select} | best / run epochs | train s |")
print("|---|---|---|---|")
for value, name, best, run, seconds in rows:
    print(f"| {name} | {value:.4f} | {best} / {run} | {seconds:.0f} |")
PY
