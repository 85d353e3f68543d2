"""embrec from Python: the same engine as the `embrec` command, for notebooks and scripts.

    import embrec
    data = embrec.Dataset.from_pandas(df, user="user_id", item="item_id", time="timestamp").prepare(split="leave_one_out")
    run = embrec.train("configs/sasrec-beauty.toml", data=data, out="runs/x")
    run.evaluate(ks=[10, 20])            # DataFrame: metric@k x all / head / tail users
    ids, vectors = run.item_vectors()    # external ids, NumPy [items x dim]
    run.recommend(users=["42"], k=10)    # DataFrame: user, rank, item, score

This layer only converts between pandas / NumPy and the engine (embrec._embrec); every check, every error message
and every number comes from the C++ library, exactly as the command line gets them. The engine's errors are raised
as embrec.Error (a ValueError).
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from . import _embrec
from ._embrec import Error

__all__ = ["Dataset", "PreparedDataset", "Run", "Error", "train", "load_run", "fetch"]

# The columns a DataFrame-sourced run keeps its log in (written into the run folder so the CLI can use it too).
_RUN_LOG_FILE = "interactions.tsv"


def _column(df: pd.DataFrame, name: str, role: str) -> pd.Series:
    if name not in df.columns:
        raise Error(f"DataFrame: no column '{name}' for the {role} (columns: {', '.join(map(str, df.columns))})")
    column = df[name]
    missing = column.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise Error(f"DataFrame: column '{name}', row {row} (index {df.index[row]!r}): missing value")
    return column


def _ids(column: pd.Series) -> list:
    return column.astype(str).tolist()


def _timestamps(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(column):
        return (column.astype("int64") // 1_000_000_000).to_numpy(np.int64)  # Unix seconds, as the readers keep them
    if not pd.api.types.is_numeric_dtype(column):
        raise Error(f"DataFrame: column '{column.name}' (the time) must be numeric or datetime, not {column.dtype}")
    return column.to_numpy(np.int64)


class Dataset:
    """An interaction log, read but not yet filtered or split: from a DataFrame or a file."""

    def __init__(self, log, table: dict, from_dataframe: bool):
        self._log = log
        self._table = table  # the [data] keys that say how the log is read
        self._from_dataframe = from_dataframe

    @classmethod
    def from_pandas(cls, df: pd.DataFrame, user: str = "user_id", item: str = "item_id",
                    time: Optional[str] = "timestamp", rating: Optional[str] = None) -> "Dataset":
        """One row per interaction. time=None: row order is time order; rating=None: implicit feedback."""
        users = _ids(_column(df, user, "users"))
        items = _ids(_column(df, item, "items"))
        ratings = _column(df, rating, "ratings").to_numpy(np.float32) if rating is not None else None
        times = _timestamps(_column(df, time, "time")) if time is not None else None
        log = _embrec.raw_log_from_columns("DataFrame", users, items, ratings, times)
        return cls(log, log.read_table(), from_dataframe=True)

    @classmethod
    def from_file(cls, path: str, format: str = "seq", user: str = "user_id", item: str = "item_id",
                  time: Optional[str] = None, rating: Optional[str] = None,
                  delimiter: Optional[str] = None) -> "Dataset":
        """format: seq | movielens | udata | csv | tsv (user/item/time/rating name csv and tsv columns)."""
        table = {"path": os.path.abspath(path), "format": format, "user_column": user, "item_column": item,
                 "timestamp_column": time or "", "rating_column": rating or "", "delimiter": delimiter or ""}
        return cls(_embrec.read_log(table), table, from_dataframe=False)

    @property
    def rows(self) -> int:
        return self._log.rows

    def prepare(self, split: str = "leave_one_out", user_core: int = 0, item_core: int = 0,
                min_rating: Optional[float] = None, dedup: str = "keep", seed: int = 42,
                **split_options) -> "PreparedDataset":
        """Filters and splits as `embrec data prepare` and a config's [data] table do. split: leave_one_out | chrono |
        stratified | random | user; split_options: the other [data.split] keys (train_ratio, valid_ratio, ...)."""
        prepare = {"user_core": user_core, "item_core": item_core, "min_rating": min_rating, "dedup": dedup,
                   "split": {"method": split, "seed": seed, **split_options}}
        table = {**self._table, **prepare}
        if self._from_dataframe:
            table["path"] = "DataFrame"  # a stand-in for the checks; train() writes the log and names that file
        return PreparedDataset(self, prepare, _embrec.prepare(self._log, table))


class PreparedDataset:
    """A log filtered and split: its sizes, its interactions as a DataFrame, and what train() needs."""

    def __init__(self, source: Dataset, prepare: dict, prepared):
        self._source = source
        self._prepare = prepare
        self._prepared = prepared

    name = property(lambda self: self._prepared.name)
    users = property(lambda self: self._prepared.users)
    items = property(lambda self: self._prepared.items)
    interactions = property(lambda self: self._prepared.interactions)
    split_method = property(lambda self: self._prepared.split_method)

    @property
    def split_sizes(self) -> dict:
        train_size, valid_size, test_size = self._prepared.split_sizes
        return {"train": train_size, "valid": valid_size, "test": test_size}

    def to_pandas(self) -> pd.DataFrame:
        """The prepared interactions (original ids as strings), each user's in time order."""
        return pd.DataFrame(self._prepared.columns())

    def __repr__(self) -> str:
        return (f"PreparedDataset({self.name!r}: {self.users} users, {self.items} items, {self.interactions} "
                f"interactions, {self.split_method} split {self.split_sizes})")

    def _data_table(self, run_dir: str, resume: bool) -> dict:
        table = {**self._source._table, **self._prepare}
        if self._source._from_dataframe:
            path = os.path.join(os.path.abspath(run_dir), _RUN_LOG_FILE)
            os.makedirs(run_dir, exist_ok=True)
            _embrec.write_run_log(self._source._log, path, resume)
            table["path"] = path
        return table


ConfigLike = Union[str, os.PathLike, Mapping]


def train(config: ConfigLike, data: Optional[PreparedDataset] = None, out: Optional[str] = None,
          resume: bool = False, overrides: Sequence[str] = ()) -> "Run":
    """Trains as `embrec train` does and returns the finished run. config: a TOML file or a dict of its tables;
    data replaces the config's [data] table (a DataFrame's log is written into the run folder as interactions.tsv);
    overrides are `--set` assignments ("model.dim=32"). Ctrl-C stops at the next batch and raises KeyboardInterrupt;
    the run folder keeps the last finished epoch, and resume=True continues it."""
    if out is None:
        if isinstance(config, Mapping):
            raise Error("train: out= is needed when the config is a dict")
        out = os.path.join("runs", os.path.splitext(os.path.basename(os.fspath(config)))[0])
    if not isinstance(config, Mapping):
        config = os.fspath(config)
    else:
        config = dict(config)
    table = data._data_table(out, resume) if data is not None else None
    _embrec.train(config, table, out, resume, list(overrides))
    return Run(out)


def load_run(path: str) -> "Run":
    """A finished run folder (written by train() or `embrec train`), with its best checkpoint loaded."""
    return Run(path)


class Run:
    """A trained run: evaluation, vectors, recommendations and export, from its best checkpoint."""

    def __init__(self, path: str):
        self._run = _embrec.Run(os.fspath(path))

    path = property(lambda self: self._run.dir)
    model = property(lambda self: self._run.model)
    config = property(lambda self: self._run.config_toml, doc="the resolved config (TOML text)")

    def __repr__(self) -> str:
        return f"Run({self.path!r}, model={self.model!r})"

    @property
    def results(self) -> dict:
        """results.json: the valid and test results written when training ended."""
        with open(os.path.join(self.path, "results.json")) as f:
            return json.load(f)

    def history(self) -> pd.DataFrame:
        """metrics.jsonl: one row per epoch (loss, its parts, seconds, validation metrics)."""
        with open(os.path.join(self.path, "metrics.jsonl")) as f:
            return pd.json_normalize([json.loads(line) for line in f if line.strip()])

    def evaluate(self, ks: Optional[Iterable[int]] = None, metrics: Optional[Iterable[str]] = None,
                 stage: str = "test") -> pd.DataFrame:
        """Full-ranking metrics of the best checkpoint on stage test, valid or cold (the held-out cold items of a
        split with cold_item_ratio): rows metric@k, columns all / head / tail users (and head / tail items)."""
        result = self._run.evaluate(list(ks or []), list(metrics or []), stage)
        groups = result["groups"]
        frame = pd.DataFrame({name: groups[name]["metrics"] for name in result["group_order"]}).reindex(result["rows"])
        frame.attrs["users"] = {name: groups[name]["users"] for name in result["group_order"]}
        frame.attrs["stage"] = stage
        return frame

    def item_vectors(self):
        """(ids, vectors): the original item ids and a float32 array [items x dim], row i for ids[i]."""
        ids, vectors = self._run.item_vectors()
        return np.asarray(ids, dtype=object), vectors

    def user_vectors(self):
        """(ids, vectors): every user's vector from the whole known history, as `embrec export` stores it."""
        ids, vectors = self._run.user_vectors()
        return np.asarray(ids, dtype=object), vectors

    def recommend(self, users: Optional[Iterable] = None, histories: Optional[Iterable[Iterable]] = None,
                  k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """Top-k for known users (their whole known history, as the service) or for fresh histories of item ids
        (oldest first). Returns user (or history index), rank, item, score."""
        if (users is None) == (histories is None):
            raise Error("recommend: give either users= or histories=")
        if users is not None:
            columns = self._run.recommend_users([str(u) for u in users], int(k), bool(exclude_seen))
            key = "user"
        else:
            columns = self._run.recommend_histories([[str(i) for i in h] for h in histories], int(k),
                                                    bool(exclude_seen))
            key = "history"
        frame = pd.DataFrame(columns).rename(columns={"query": key})
        if key == "history":
            frame[key] = frame[key].astype(int)
        return frame

    def export(self, out: Optional[str] = None, index: str = "flat", metric: str = "ip", cold_items: bool = False,
               shards: int = 1) -> dict:
        """`embrec export`: the item index, user store and encoder for `embrec serve`; returns the manifest. Items
        never trained on are left out of the index unless cold_items (models that place them by features); shards > 1
        splits the index into that many Faiss files by item-id range (`embrec export --shards`)."""
        return self._run.export(out or os.path.join(self.path, "export"), index, metric, cold_items, shards)


def fetch(name: str, to: Optional[str] = None, from_: Optional[str] = None, accept_unverified: bool = False) -> dict:
    """`embrec data fetch NAME`: shows the licence, downloads (or takes from_, a file or folder downloaded by hand),
    verifies against the published digest and unpacks a public dataset into `to` (default data/NAME). Returns the
    folder, the log, the ready `embrec data prepare` command and the same as a [data] TOML table."""
    return _embrec.fetch(name, to or "", from_ or "", accept_unverified)
