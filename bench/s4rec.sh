#!/usr/bin/env bash
# S4Rec table benchmark: trains each config (S4Rec, CL4SRec, ICLRec, ablations: all switches of one model) for each
# seed, resuming unfinished runs, and prints one row per run and the mean and spread over seeds per config:
# test HR/NDCG@5/10/20 (all users), NDCG@20 for head / tail users, best / run epochs, median seconds per epoch,
# total training seconds, peak RSS. Usage:
#   bench/s4rec.sh CONFIG [CONFIG ...]      e.g. bench/s4rec.sh configs/s4rec-beauty.toml configs/iclrec-beauty.toml
# Env: SEEDS="42 43 44" (default 42), RUNS=runs/bench, BIN=build/embrec, EXTRA="--set train.threads=1" (overrides),
# TAG=-mask (appended to each run folder's name, so runs of one config with different EXTRA keep apart),
# KEYS="recall@20 recall@50 ndcg@20" (the test columns), GROUP_KEY=ndcg@20 (the metric of the head / tail users,
# head / tail items (runs with [eval] item_groups) and cold-start (cold_item_ratio) columns), STAGE=valid (print the
# validation stage's figures of the best checkpoint instead of the test stage's; the cold column stays the test's).
# A config whose data file is absent (e.g. ML-1M) is reported as SKIPPED.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/embrec}
RUNS=${RUNS:-runs/bench}
SEEDS=${SEEDS:-42}
mkdir -p "$RUNS"
folders=()
for config in "$@"; do
  for seed in $SEEDS; do
    out="$RUNS/$(basename "$config" .toml)${TAG:-}-seed$seed"
    if [ ! -f "$out/results.json" ]; then
      resume=""
      [ -f "$out/checkpoint.pt" ] && resume="--resume"
      timer=()
      [ -x /usr/bin/time ] && timer=(/usr/bin/time -v -o "$out.time")
      mkdir -p "$(dirname "$out")"
      if ! "${timer[@]}" $BIN train --config "$config" --out "$out" $resume --set "train.seed=$seed" ${EXTRA:-} \
          > "$out.log" 2>&1; then
        if grep -q "no such file" "$out.log"; then echo "SKIPPED $config: $(grep -m1 'error' "$out.log")"; else
          echo "FAILED $out (see $out.log)"; fi
        continue
      fi
    fi
    folders+=("$out")
  done
done
[ ${#folders[@]} -eq 0 ] && exit 0
python3 - "${folders[@]}" <<'PY'
import json, os, re, statistics, sys
keys = os.environ.get("KEYS", "hr@5 hr@10 hr@20 ndcg@5 ndcg@10 ndcg@20").split()
group_key = os.environ.get("GROUP_KEY", "ndcg@20")
stage = os.environ.get("STAGE", "test")
first = json.load(open(os.path.join(sys.argv[1], "results.json")))
item_groups = "head_items" in first[stage]["groups"]
cold = "cold" in first
rows = {}
extra = (f" | head / tail items {group_key.upper()}" if item_groups else "") + (f" | cold {group_key.upper()}" if cold else "")
print(f"| run ({stage}) | " + " | ".join(k.upper() for k in keys) + f" | head / tail {group_key.upper()}{extra} | best / run epochs | s/epoch | train s | peak RSS |")
print("|---|" + "---|" * (len(keys) + 5 + item_groups + cold))
for folder in sys.argv[1:]:
    r = json.load(open(os.path.join(folder, "results.json")))
    groups = r[stage]["groups"]
    m = groups["all"]["metrics"]
    metrics = os.path.join(folder, "metrics.jsonl")  # count-based models (pop) train no epochs and write none
    seconds = [json.loads(line)["seconds"] for line in open(metrics)] if os.path.exists(metrics) else [0.0]
    rss = ""
    if os.path.exists(folder + ".time"):
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(folder + ".time").read())
        if found: rss = f"{int(found.group(1)) / 1024:.0f} MiB"
    cells = f" | {groups['head']['metrics'][group_key]:.4f} / {groups['tail']['metrics'][group_key]:.4f}"
    if item_groups:
        cells += f" | {groups['head_items']['metrics'][group_key]:.4f} / {groups['tail_items']['metrics'][group_key]:.4f}"
    if cold:
        cells += f" | {r['cold']['groups']['all']['metrics'][group_key]:.4f}" if "cold" in r else " | "
    print(f"| {os.path.basename(folder)} | " + " | ".join(f"{m[k]:.4f}" for k in keys) + cells +
          f" | {r['best_epoch']} / {r['epochs_run']} | {statistics.median(seconds):.1f} | {r['train_seconds']:.0f} | {rss} |")
    rows.setdefault(re.sub(r"-seed\d+$", "", os.path.basename(folder)), []).append(m)
multi = {name: runs for name, runs in rows.items() if len(runs) > 1}
if multi:
    print("\n| config (mean ± std over seeds) | " + " | ".join(k.upper() for k in keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, runs in multi.items():
        cells = [f"{statistics.mean(x[k] for x in runs):.4f} ± {statistics.stdev(x[k] for x in runs):.4f}" for k in keys]
        print(f"| {name} ({len(runs)} seeds) | " + " | ".join(cells) + " |")
PY
