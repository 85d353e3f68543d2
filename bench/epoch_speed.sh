#!/usr/bin/env bash
# Seconds per training epoch and peak memory of models on one machine, at each number of processes (--nproc, data-
# parallel) and torch thread count: trains every config for EPOCHS epochs into $RUNS/<config>-t<threads> (one
# process) or $RUNS/<config>-p<processes>t<threads> (validation only after the last), then prints one row per run:
# median seconds per epoch (training only; rank 0's wall clock) and peak RSS (of the largest process: load, train,
# evaluate).
# Usage: bench/epoch_speed.sh CONFIG [CONFIG ...]
# Env: EPOCHS=2, THREADS="1 2", NPROC="1" (e.g. "1 2"), EXTRA='--set model.loss="softmax"' (overrides),
# RUNS=runs/speed, BIN=build/embrec. Run it with nothing else training: the figures are wall clock.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/embrec}
RUNS=${RUNS:-runs/speed}
EPOCHS=${EPOCHS:-2}
THREADS=${THREADS:-"1 2"}
NPROC=${NPROC:-1}
mkdir -p "$RUNS"
echo "| config | processes × threads | s/epoch (median of $EPOCHS) | peak RSS |"
echo "|---|---|---|---|"
for config in "$@"; do
  for nproc in $NPROC; do
    for threads in $THREADS; do
      out="$RUNS/$(basename "$config" .toml)-t$threads"
      [ "$nproc" != 1 ] && out="$RUNS/$(basename "$config" .toml)-p${nproc}t$threads"
      rm -rf "$out"
      /usr/bin/time -v -o "$out.time" "$BIN" train --config "$config" --out "$out" --nproc "$nproc" \
        --set "train.threads=$threads" --set "train.epochs=$EPOCHS" --set "train.eval_every=$EPOCHS" ${EXTRA:-} \
        > "$out.log" 2>&1 || { echo "FAILED $out"; continue; }
      python3 - "$out" "$config" "$nproc" "$threads" <<'PY'
import json, re, statistics, sys
out, config, nproc, threads = sys.argv[1:]
seconds = [json.loads(line)["seconds"] for line in open(out + "/metrics.jsonl")]
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(out + ".time").read()).group(1)) / 1024
print(f"| {config} | {nproc} × {threads} | {statistics.median(seconds):.1f} | {rss:.0f} MiB |")
PY
    done
  done
done
