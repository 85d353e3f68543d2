"""embrec from Python, start to finish: MovieLens 100K into a DataFrame, SASRec trained on it, evaluated with full
ranking, recommendations for a user and for a fresh history, and the training curve as a picture.

    PYTHONPATH=build/python python3 examples/quickstart.py [--data DIR] [--out runs/quickstart] [--epochs 30]

The data comes from ../shared/data/ml-100k when present, else from `embrec.fetch("ml-100k")` (a download from
GroupLens, whose licence the fetch prints). About a minute on 2 cores.
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")  # writes a file; no display needed
import matplotlib.pyplot as plt
import pandas as pd

import embrec

HERE = os.path.dirname(os.path.abspath(__file__))

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data", "ml-100k"))
parser.add_argument("--out", default="runs/quickstart")
parser.add_argument("--epochs", type=int, default=30)
args = parser.parse_args()

# 1. The log as a DataFrame (u.data: user, item, rating, Unix time, tab-separated).
folder = args.data if os.path.exists(os.path.join(args.data, "u.data")) else embrec.fetch("ml-100k")["folder"]
ratings = pd.read_csv(os.path.join(folder, "u.data"), sep="\t", names=["user_id", "item_id", "rating", "timestamp"])
print(f"{len(ratings):,} ratings of {ratings.user_id.nunique()} users on {ratings.item_id.nunique()} movies")

# 2. Prepared as a sequential-recommendation benchmark: each user's last movie is the test target, the one before it
#    the validation target; every movie is ranked (full ranking, no sampled negatives).
data = embrec.Dataset.from_pandas(ratings, rating="rating").prepare(split="leave_one_out", user_core=5, item_core=5)
print(data)

# 3. SASRec, with the config keys of configs/sasrec-*.toml given as a dict (a TOML path works the same).
config = {
    "model": {"name": "sasrec", "dim": 64, "layers": 2, "heads": 2, "max_length": 50, "dropout": 0.2,
              "loss": "softmax"},
    "train": {"epochs": args.epochs, "batch_size": 128, "learning_rate": 0.001, "threads": 1, "patience": 5},
    "eval": {"ks": [10, 20], "metrics": ["hr", "ndcg"], "select": "ndcg@10"},
}
out = args.out
resume = os.path.exists(os.path.join(out, "checkpoint.pt")) and not os.path.exists(os.path.join(out, "results.json"))
run = embrec.train(config, data=data, out=out, resume=resume) if not os.path.exists(os.path.join(out, "results.json")) \
    else embrec.load_run(out)

# 4. Test metrics for all users and for head (longest 20 % of histories) and tail users.
print(run.evaluate(ks=[10, 20]).round(4))

# 5. Recommendations: a known user (whole history, seen movies left out) and a fresh history of movie ids.
titles = {}
items_file = os.path.join(folder, "u.item")
if os.path.exists(items_file):
    movies = pd.read_csv(items_file, sep="|", encoding="latin-1", header=None, usecols=[0, 1])
    titles = dict(zip(movies[0].astype(str), movies[1]))
for frame in (run.recommend(users=["1"], k=5), run.recommend(histories=[["50", "172", "181"]], k=5)):
    print(frame.assign(title=frame.item.map(titles)).to_string(index=False))

# 6. Item vectors for your own analysis, and the validation curve as a picture.
ids, vectors = run.item_vectors()
print(f"item vectors: {vectors.shape} {vectors.dtype}, first ids {list(ids[:3])}")
history = run.history()
figure, axis = plt.subplots(figsize=(6, 3.5))
axis.plot(history["epoch"], history["valid.ndcg@10"], marker="o")
axis.set_xlabel("epoch")
axis.set_ylabel("validation NDCG@10")
axis.set_title("SASRec on MovieLens 100K")
figure.tight_layout()
picture = os.path.join(out, "curve.png")
figure.savefig(picture, dpi=120)
print(f"training curve: {picture}")
