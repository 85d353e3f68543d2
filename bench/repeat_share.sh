#!/usr/bin/env bash
# Repeat share of a config's data: how many valid and test targets occur in their user's input history (the
# items the evaluator removes under exclude = "history", so that such a target is a miss). Fits the popularity
# model on the config's [data] tables (its split included) and reads the counts the evaluator writes to
# results.json. Usage:
#   bench/repeat_share.sh CONFIG [--set data.split.seed=43 ...]
#   e.g. bench/repeat_share.sh configs/sasrec-beauty.toml
# Env: BIN=build/embrec, RUNS=runs/repeat-share.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/embrec}
RUNS=${RUNS:-runs/repeat-share}
config=$1
shift
mkdir -p "$RUNS"
name=$(basename "$config" .toml)$(printf '%s' "$*" | tr -c 'A-Za-z0-9=.' '_')
out="$RUNS/$name"
# The config's tables before [model] are its data; a relative path is taken against the config's folder.
relative=$(sed -n 's/^path = "\(.*\)"$/\1/p' "$config" | head -1)
data_path=""
[ -n "$relative" ] && data_path=$(realpath -m "$(dirname "$config")/$relative")
{
  awk '/^\[model\]/ { exit } { print }' "$config" | sed "s|^path = .*|path = \"$data_path\"|; /^cache_dir = /d"
  printf '[model]\nname = "pop"\n[eval]\nks = [10]\nmetrics = ["hr"]\nselect = "hr@10"\n'
} > "$out.toml"
rm -rf "$out"
"$BIN" train --config "$out.toml" --out "$out" "$@" > "$out.log" 2>&1 || { echo "FAILED $config (see $out.log)"; exit 1; }
python3 - "$out/results.json" "$config $*" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))
cells = []
for stage in ("valid", "test"):
    r = results[stage]
    targets, repeats = r.get("targets", 0), r.get("repeat_targets", 0)
    share = 100.0 * repeats / targets if targets else 0.0
    cells.append(f"{stage}: {repeats} of {targets} targets ({share:.2f} %)")
print(f"{sys.argv[2].strip()} | {results['dataset']} | " + " | ".join(cells))
PY
