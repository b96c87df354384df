"""Result store of a sweep: one JSON file per (configuration, replicate), written atomically,
plus one tidy CSV table assembled from them.

Layout of a store directory:
    points/<hash>.json    one finished (configuration, replicate): config, metrics, metadata
    table.csv             one row per configuration x replicate x estimator x metric

A point file appears only once complete (write to a temporary file in the same directory, fsync,
then os.replace), so a killed run never leaves a partial point, and a restarted run skips every
point whose file holds a valid record (an unreadable or incomplete file counts as absent and is
recomputed, then atomically overwritten). The table is rebuilt, also atomically, from the point
files of the sweep being run (`write_table(hashes=...)`); other point files in the folder stay on
disk as cache but are not part of that table.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import sys
import tempfile
from pathlib import Path

from theory.params import MODEL_KEYS

from ..engine.params import SIM_KEYS

# Bump when the numbers a configuration produces change (cache invalidation).
RESULTS_SCHEMA = 6

# The configuration of one replicate: the model parameters, the simulation's (less reps), and the sizes.
CONFIG_COLUMNS = (("family", "p", "n", "k") + MODEL_KEYS[1:]
                  + tuple(k for k in SIM_KEYS if k not in ("p", "reps")))
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

    def load(self, h: str) -> tuple[dict | None, str]:
        """(record, "") for a valid point file, else (None, why it is missing or unusable)."""
        try:
            rec = json.loads(self.path(h).read_text())
        except FileNotFoundError:
            return None, "missing"
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            return None, f"unreadable ({type(e).__name__})"
        problem = record_problem(rec)
        if problem is None and rec["hash"] != h:
            problem = f"its hash {rec['hash']!r} does not match the file name"
        return (None, problem) if problem else (rec, "")

    def has(self, h: str) -> bool:
        """Whether point `h` is finished: its file exists and holds a valid record."""
        return self.load(h)[0] is not None

    def put(self, h: str, record: dict) -> None:
        atomic_write_text(self.path(h), json.dumps(record, indent=1, sort_keys=True))

    def records(self, hashes=None) -> list[dict]:
        """Valid finished points (all of them, or those of `hashes`), by configuration then replicate.

        Point files that exist but do not hold a record of the current schema are skipped with a
        one-line warning on stderr."""
        if hashes is None:
            hashes = sorted(f.stem for f in self.points.glob("*.json")) if self.points.exists() else []
        out = []
        for h in dict.fromkeys(hashes):
            rec, why = self.load(h)
            if rec is not None:
                out.append(rec)
            elif why != "missing":
                print(f"warning: skipping point file {str(self.path(h))!r} in the table: {why}.",
                      file=sys.stderr)
        return sorted(out, key=lambda r: (json.dumps({k: r["config"][k] for k in CONFIG_COLUMNS},
                                                     sort_keys=True), r["rep"]))

    def write_table(self, spec_name: str = "", hashes=None) -> Path:
        """Rebuild table.csv from the point files (all, or only those of `hashes`); return its path."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=TABLE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for rec in self.records(hashes):
            for row in record_rows(rec, spec_name):
                writer.writerow(row)
        path = self.root / "table.csv"
        atomic_write_text(path, buf.getvalue())
        return path

    def remove_stale_temporaries(self) -> None:
        """Delete temporary files left by a run killed while writing a point or the table."""
        for stale in [*self.points.glob(".*.tmp"), *self.root.glob(".table.csv.*.tmp")]:
            stale.unlink(missing_ok=True)


META_KEYS = ("wall_time_s", "code_version", "jax_version", "device")


def record_problem(rec) -> str | None:
    """None if `rec` is a point record of the current schema, else what is wrong with it."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    missing = [k for k in ("hash", "config", "rep", "metrics", "meta") if k not in rec]
    if missing:
        return f"missing key {missing[0]!r} (older schema?)"
    if not isinstance(rec["config"], dict) or not isinstance(rec["meta"], dict):
        return "'config' and 'meta' must be objects"
    for section, keys in (("config", CONFIG_COLUMNS), ("meta", META_KEYS)):
        missing = [k for k in keys if k not in rec[section]]
        if missing:
            return f"missing {section} key {missing[0]!r} (older schema?)"
    if not isinstance(rec["hash"], str) or not isinstance(rec["rep"], int) or not isinstance(rec["metrics"], dict):
        return "'hash', 'rep' or 'metrics' has the wrong type"
    for metrics in rec["metrics"].values():
        if not isinstance(metrics, dict) or not all(
                isinstance(c, dict) and {"mean", "se", "n"} <= set(c) for c in metrics.values()):
            return "a metric cell lacks 'mean', 'se' or 'n'"
    return None


def record_rows(rec: dict, spec_name: str = ""):
    """Tidy rows (estimator x metric) of one point record."""
    base = {k: rec["config"][k] for k in CONFIG_COLUMNS}
    meta = {k: rec["meta"][k] for k in META_KEYS}
    for est, metrics in rec["metrics"].items():
        for metric, cell in metrics.items():
            yield {"spec": spec_name or rec.get("spec", ""), **base, "rep": rec["rep"],
                   "estimator": est, "metric": metric, "value": repr(cell["mean"]),
                   "se": repr(cell["se"]), "n_values": cell["n"], "config_hash": rec["hash"], **meta}


def read_table(path) -> list[dict]:
    """Rows of a table.csv with numeric columns converted (pandas users: pd.read_csv(path)).

    Raises ValueError naming the first bad row: a missing column or field, a number that does
    not parse or is not finite, p < 2, a negative standard error, or variants not True/False.
    """
    numeric_int = {"p", "n", "k", "n_proj", "n_test", "seed", "top_m", "rep", "n_values", "lds_subsets"}
    numeric_float = {"delta", "kappa", "lam", "lam_trak", "gamma", "sigma", "tol", "value", "se",
                     "cov_param", "alignment", "wall_time_s"}
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:          # an empty file: no rows
            return rows
        missing = [c for c in TABLE_COLUMNS if c not in reader.fieldnames]
        if missing:
            raise ValueError(f"column {missing[0]!r} is missing")
        for line, row in enumerate(reader, start=2):
            empty = [c for c in TABLE_COLUMNS if row.get(c) in (None, "")]
            if empty:
                raise ValueError(f"line {line} has no value for {empty[0]!r}")
            try:
                for k in numeric_int:
                    row[k] = int(row[k])
                for k in numeric_float:
                    row[k] = float(row[k])
            except ValueError:
                raise ValueError(f"line {line} has a value that is not a number") from None
            bad = [k for k in numeric_float if not math.isfinite(row[k])]
            if bad:
                raise ValueError(f"line {line} has a non-finite {bad[0]}")
            if row["p"] < 2 or row["n_values"] < 1 or row["se"] < 0:
                raise ValueError(f"line {line} needs p >= 2, n_values >= 1 and se >= 0")
            if row["variants"] not in ("True", "False"):
                raise ValueError(f"line {line} has variants {row['variants']!r} (True or False)")
            row["variants"] = row["variants"] == "True"
            rows.append(row)
    return rows
