#!/usr/bin/env bash
# The S4Rec paper's table layout from finished run folders: one row per test metric (all users), one column per
# model, each cell the mean over that model's seeds; the best cell of a row in bold, the second underlined; then
# "Improv.", the flagship's change over the strongest other column, and the paired tests between those two on the
# same users (`embrec compare`, one per seed the two columns share: the largest p of the paired t-test and of the
# Wilcoxon test over those seeds). Nothing is trained: train the runs first (bench/s4rec.sh).
# Usage:
#   bench/paper_table.sh "COLUMN=RUN_GLOB" ["COLUMN=RUN_GLOB" ...]
#   e.g. FLAGSHIP=S4Rec bench/paper_table.sh "SASRec=runs/b22/sasrec-beauty-seed*" "S4Rec=runs/b22/s4rec-beauty-seed*"
# Env: METRICS="hr@5 hr@10 hr@20 ndcg@5 ndcg@10 ndcg@20" (the rows), FLAGSHIP (default: the last column),
#      GROUP=all (or head / tail: the rows and the tests over that user group; head_items / tail_items: over
#      those targets, for runs with [eval] item_groups), BIN=build/embrec.
# A run's seed is the -seedN at the end of its folder name; runs without per-user-test.tsv (trained before embrec
# wrote it) get it from `embrec eval RUN`, which this script runs for them.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/embrec}
export BIN METRICS=${METRICS:-"hr@5 hr@10 hr@20 ndcg@5 ndcg@10 ndcg@20"} GROUP=${GROUP:-all} FLAGSHIP=${FLAGSHIP:-}
[ $# -ge 2 ] || { echo "usage: bench/paper_table.sh \"COLUMN=RUN_GLOB\" \"COLUMN=RUN_GLOB\" [...]" >&2; exit 2; }
python3 - "$@" <<'PY'
import glob, json, os, re, statistics, subprocess, sys

binary, metrics, group = os.environ["BIN"], os.environ["METRICS"].split(), os.environ["GROUP"]
columns = []  # (name, {seed: folder})
for argument in sys.argv[1:]:
    if "=" not in argument:
        sys.exit(f"paper_table: '{argument}' is not COLUMN=RUN_GLOB")
    name, pattern = argument.split("=", 1)
    runs = {}
    for folder in sorted(f for f in glob.glob(pattern) if os.path.isdir(f)):  # not the .log / .time beside a run
        if not os.path.exists(os.path.join(folder, "results.json")):
            sys.exit(f"paper_table: {folder} has not finished (no results.json)")
        found = re.search(r"-seed(\d+)$", folder.rstrip("/"))
        runs[int(found.group(1)) if found else 0] = folder
    if not runs:
        sys.exit(f"paper_table: column {name}: no run folder matches {pattern}")
    columns.append((name, runs))
names = [name for name, _ in columns]
flagship = os.environ["FLAGSHIP"] or names[-1]
if flagship not in names:
    sys.exit(f"paper_table: FLAGSHIP={flagship} is not a column ({', '.join(names)})")

def value(folder, metric):
    groups = json.load(open(os.path.join(folder, "results.json")))["test"]["groups"]
    if group not in groups:
        sys.exit(f"paper_table: {folder}: no user group '{group}' in results.json")
    return groups[group]["metrics"][metric]

means = {name: {m: statistics.mean(value(f, m) for f in runs.values()) for m in metrics} for name, runs in columns}
seeds = {name: sorted(runs) for name, runs in columns}
print("| metric | " + " | ".join(f"{n} ({len(seeds[n])} seed{'s' if len(seeds[n]) > 1 else ''})" for n in names)
      + " | Improv. | paired tests (seeds) |")
print("|---|" + "---|" * (len(names) + 2))
runs_of = dict(columns)
for m in metrics:
    ranked = sorted(names, key=lambda n: -means[n][m])
    cells = []
    for n in names:
        text = f"{means[n][m]:.4f}"
        if n == ranked[0]: text = f"**{text}**"
        elif len(ranked) > 1 and n == ranked[1]: text = f"<u>{text}</u>"
        cells.append(text)
    rival = max((n for n in names if n != flagship), key=lambda n: means[n][m])
    improvement = (means[flagship][m] / means[rival][m] - 1) * 100 if means[rival][m] > 0 else float("nan")
    shared = sorted(set(runs_of[flagship]) & set(runs_of[rival]))
    tests = []
    for seed in shared:
        pair = []
        for folder in (runs_of[rival][seed], runs_of[flagship][seed]):
            if not os.path.exists(os.path.join(folder, "per-user-test.tsv")):
                subprocess.run([binary, "eval", folder], check=True, stdout=subprocess.DEVNULL)
            pair.append(folder)
        # A user group (head, tail) filters the users; a target group (head_items, tail_items) is a column.
        header = open(os.path.join(pair[0], "per-user-test.tsv")).readline().rstrip("\n").split("\t")
        selection = ["--metric", f"{group}:{m}"] if f"{group}:{m}" in header else ["--metric", m, "--group", group]
        out = subprocess.run([binary, "compare", *pair, *selection, "--json"], check=True, capture_output=True,
                             text=True).stdout
        tests.append(json.loads(out))
    if tests:
        p_t = max(t["t_p"] for t in tests)
        p_w = max(t["wilcoxon_p"] for t in tests)
        test_text = f"vs {rival}: t-test p ≤ {p_t:.2g}, Wilcoxon p ≤ {p_w:.2g} ({len(tests)})"
    else:
        test_text = f"vs {rival}: no shared seed"
    print(f"| {m.upper()} | " + " | ".join(cells) + f" | {improvement:+.1f} % | {test_text} |")
print(f"\nUser group: {group}. Columns: " + "; ".join(f"{n} = {', '.join(runs_of[n][s] for s in seeds[n])}" for n in names))
PY
