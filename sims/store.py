"""Result store of a sweep: one JSON file per (configuration, replicate), written atomically,
plus one tidy CSV table assembled from them.

Layout of a store directory:
    points/<hash>.json    one finished (configuration, replicate): config, metrics, metadata
    table.csv             one row per configuration x replicate x estimator x metric

A point file appears only once complete (write to a temporary file in the same directory, fsync,
then os.replace), so a killed run never leaves a partial point, and a restarted run skips every
point whose file exists. The table is rebuilt from the point files, also atomically.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

# Bump when the numbers a configuration produces change (cache invalidation).
RESULTS_SCHEMA = 5

CONFIG_COLUMNS = ("family", "p", "n", "k", "delta", "kappa", "lam", "lam_trak", "gamma", "sigma",
                  "n_proj", "projection", "covariance", "cov_param", "alignment", "design", "variants", "lds_subsets", "n_test", "seed", "top_m", "tol")
TABLE_COLUMNS = ("spec", *CONFIG_COLUMNS, "rep", "estimator", "metric", "value", "se", "n_values",
                 "config_hash", "wall_time_s", "code_version", "jax_version", "device")


def config_hash(config: dict, rep: int) -> str:
    """Content hash of everything that determines the numbers of one replicate."""
    key = {k: config[k] for k in CONFIG_COLUMNS}
    key.update(rep=rep, schema=RESULTS_SCHEMA)
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Store:
    """A directory of finished sweep points (see module docstring)."""

    def __init__(self, root):
        self.root = Path(root)
        self.points = self.root / "points"

    def path(self, h: str) -> Path:
        return self.points / f"{h}.json"

    def has(self, h: str) -> bool:
        return self.path(h).exists()

    def put(self, h: str, record: dict) -> None:
        atomic_write_text(self.path(h), json.dumps(record, indent=1, sort_keys=True))

    def records(self) -> list[dict]:
        """Every finished point, in a deterministic order (by configuration, then replicate)."""
        out = []
        if self.points.exists():
            for f in sorted(self.points.glob("*.json")):
                try:
                    out.append(json.loads(f.read_text()))
                except json.JSONDecodeError:   # cannot happen with atomic writes; be safe anyway
                    continue
        return sorted(out, key=lambda r: (json.dumps({k: r["config"][k] for k in CONFIG_COLUMNS},
                                                     sort_keys=True), r["rep"]))

    def write_table(self, spec_name: str = "") -> Path:
        """Rebuild table.csv from the point files; return its path."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=TABLE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for rec in self.records():
            for row in record_rows(rec, spec_name):
                writer.writerow(row)
        path = self.root / "table.csv"
        atomic_write_text(path, buf.getvalue())
        return path


def record_rows(rec: dict, spec_name: str = ""):
    """Tidy rows (estimator x metric) of one point record."""
    base = {k: rec["config"][k] for k in CONFIG_COLUMNS}
    meta = {k: rec["meta"][k] for k in ("wall_time_s", "code_version", "jax_version", "device")}
    for est, metrics in rec["metrics"].items():
        for metric, cell in metrics.items():
            yield {"spec": spec_name or rec.get("spec", ""), **base, "rep": rec["rep"],
                   "estimator": est, "metric": metric, "value": repr(cell["mean"]),
                   "se": repr(cell["se"]), "n_values": cell["n"], "config_hash": rec["hash"], **meta}


def read_table(path) -> list[dict]:
    """Rows of a table.csv with numeric columns converted (pandas users: pd.read_csv(path))."""
    numeric_int = {"p", "n", "k", "n_proj", "n_test", "seed", "top_m", "rep", "n_values", "lds_subsets"}
    booleans = {"variants"}
    numeric_float = {"delta", "kappa", "lam", "lam_trak", "gamma", "sigma", "tol", "value", "se",
                     "cov_param", "alignment",
                     "wall_time_s"}
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for k in numeric_int:
                row[k] = int(row[k])
            for k in numeric_float:
                row[k] = float(row[k])
            for k in booleans:
                row[k] = row[k] == "True"
            rows.append(row)
    return rows
