#!/usr/bin/env bash
# News benchmark (#21) on the generated MIND-format data (demo = "mind", data/mind_generator.h): trains popularity,
# NRMS and NPA (configs/*-mind-demo.toml, or the configs given) through bench/s4rec.sh (resumable; RUNS, SEEDS, BIN,
# EXTRA as there), prints their test rows (per-impression AUC, MRR, nDCG@5, nDCG@10 on the dev folder's day, and
# full-ranking NDCG@10 over that day's news), the evaluation speed (test impressions per second, users encoded and
# every candidate scored), then serves the first news model's export and times POST /v1/news: the latency of
# encoding one new article and adding it to the live index, over N_ARTICLES (200) requests, as the client sees it.
# Usage: bench/news.sh [CONFIG ...]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/embrec}
RUNS=${RUNS:-runs/news}
SEEDS=${SEEDS:-42}
N_ARTICLES=${N_ARTICLES:-200}
configs=("$@")
[ ${#configs[@]} -eq 0 ] && configs=(configs/pop-mind-demo.toml configs/nrms-mind-demo.toml configs/npa-mind-demo.toml)
export BIN RUNS SEEDS KEYS="auc impression_mrr impression_ndcg@5 impression_ndcg@10 ndcg@10" GROUP_KEY=ndcg@10
bench/s4rec.sh "${configs[@]}"

folders=()
for config in "${configs[@]}"; do
  for seed in $SEEDS; do folders+=("$RUNS/$(basename "$config" .toml)-seed$seed"); done
done
echo
echo "| run | test impressions | eval seconds | impressions / s |"
echo "|---|---|---|---|"
python3 - "${folders[@]}" <<'PY'
import json, os, sys
for folder in sys.argv[1:]:
    path = os.path.join(folder, "results.json")
    if not os.path.exists(path):
        continue
    test = json.load(open(path))["test"]
    count = test["groups"]["all"]["metrics"]["impressions"]
    print(f"| {os.path.basename(folder)} | {count:.0f} | {test['seconds']:.2f} | {count / test['seconds']:.0f} |")
PY

# POST /v1/news latency on the first news model's export (popularity has no vectors to export).
run=""
for folder in "${folders[@]}"; do
  if [ -f "$folder/results.json" ] && grep -q '"model": "n' "$folder/results.json"; then run=$folder; break; fi
done
[ -z "$run" ] && exit 0
[ -d "$run/export" ] || $BIN export "$run" > "$run.export.log" 2>&1
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$BIN serve "$run/export" --port "$port" > "$run.serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break; sleep 0.2; done
python3 - "$port" "$N_ARTICLES" "$(basename "$run")" <<'PY'
import json, statistics, sys, time, urllib.request
port, count, run = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
# Titles of the generator's common words (in every vocabulary), so that each encodes; ids never seen before.
words = "the of and to in a is that for it as was with be by on not he this are or his from at which".split()
latencies = []
for i in range(count):
    title = " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(8))
    body = json.dumps({"id": f"BENCH{i}", "title": title, "category": "news"}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/news", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        assert response.status == 201, response.status
        response.read()
    latencies.append((time.perf_counter() - start) * 1000)
latencies.sort()
print(f"\nPOST /v1/news on {run}: {count} articles, latency median {statistics.median(latencies):.2f} ms, "
      f"p90 {latencies[int(0.9 * count) - 1]:.2f} ms, max {latencies[-1]:.2f} ms (encode + add to the live index, "
      f"one client, loopback)")
PY
