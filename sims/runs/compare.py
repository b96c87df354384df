"""Theory versus simulation: join a sweep table with `theory.predict` and test the agreement.

For each configuration, estimator and metric the simulated value is the mean over replicates and
test points, with the standard error of `metrics.mean_and_se` (replicate means, floored by the
within-replicate spread). A comparison passes when

    |simulation - theory| <= n_se * se + allowance * sqrt(400 / p),

a finite-size allowance shrinking like p^{-1/2} (the order of the NS-LOO gap and of the
fluctuations of the fitted law; docs/theory.md §6). Allowances at p = 400: 0.01 for Pearson and
Spearman, 0.02 for relative errors (0.1 for NS, whose predicted 0 is only first order: the
NS-LOO gap is 0.01-0.08 at p = 400), 3% of the predicted value for the best-fit scale.
top_overlap has no prediction and is skipped. The LDS ("lds", isotropic covariance only) is
predicted for the simulated subset fraction and number of subsets (`theory.predict(lds_alpha=,
lds_subsets=)`), with an allowance of 0.02 at p = 400.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from theory.errors import InvalidParameterError

from theory.params import MODEL_KEYS

from ..engine.estimators import PREDICTED
from .store import CONFIG_COLUMNS, read_table

PREDICTED_METRICS = ("pearson", "spearman", "rel_error", "scale", "lds")
ALL_ESTIMATORS = ("loo",) + PREDICTED
DEFAULT_N_SE = 3.0
DEFAULT_ALLOWANCE = {"pearson": 0.01, "spearman": 0.01, "rel_error": 0.02, "scale": 0.03, "lds": 0.02}
NS_REL_ERROR_ALLOWANCE = 0.1


def allowance_for(estimator: str, metric: str, theory_value: float, p: int, allowance: dict) -> float:
    """The finite-size part of the tolerance (see the module docstring)."""
    a = allowance[metric]
    if metric == "scale":
        a *= abs(theory_value)
    elif metric == "rel_error" and estimator == "ns":
        a = max(a, NS_REL_ERROR_ALLOWANCE)
    return a * math.sqrt(400.0 / p)


@dataclass
class Comparison:
    config: dict
    estimator: str
    metric: str
    simulation: float
    se: float
    theory: float
    tolerance: float

    @property
    def diff(self) -> float:
        return self.simulation - self.theory

    @property
    def z(self) -> float:
        if self.se > 0:
            return self.diff / self.se
        return 0.0 if self.diff == 0 else math.copysign(math.inf, self.diff)

    @property
    def ok(self) -> bool:
        return abs(self.diff) <= self.tolerance

    def asdict(self) -> dict:
        return {**self.config, "estimator": self.estimator, "metric": self.metric,
                "simulation": self.simulation, "se": self.se, "theory": self.theory,
                "diff": self.diff, "z": self.z, "tolerance": self.tolerance, "ok": self.ok}


def load_rows(path) -> list[dict]:
    """Rows of a sweep table, given the table.csv or the store directory holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / "table.csv"
    if not path.is_file():
        raise InvalidParameterError(f"no results table at {str(path)!r} (run 'trak-sim sweep' first).")
    try:
        rows = read_table(path)
    except (KeyError, ValueError, csv.Error) as e:
        raise InvalidParameterError(f"{str(path)!r} is not a sweep table ({e}).") from None
    if not rows:
        raise InvalidParameterError(f"the table {str(path)!r} has no rows, so there is nothing to compare.")
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Aggregate replicates: one entry per configuration with mean/se per estimator x metric."""
    groups = defaultdict(lambda: defaultdict(list))
    configs = {}
    for r in rows:
        key = tuple(r[c] for c in CONFIG_COLUMNS)
        configs[key] = {c: r[c] for c in CONFIG_COLUMNS}
        groups[key][(r["estimator"], r["metric"])].append((r["value"], r["se"], r["n_values"]))
    out = []
    for key, cells in groups.items():
        est = defaultdict(dict)
        for (e, m), vals in cells.items():
            means = np.array([v[0] for v in vals])
            within = np.array([(v[1] ** 2) * v[2] for v in vals])     # s_within^2 per replicate
            T = np.array([v[2] for v in vals])
            reps = len(vals)
            if reps == 1:
                se = math.sqrt(within[0] / T[0])
            else:
                se = math.sqrt(max(means.var(ddof=1), float(np.mean(within / T))) / reps)
            est[e][m] = {"mean": float(means.mean()), "se": se, "reps": reps}
        out.append({"config": configs[key], "estimators": dict(est)})
    return out


def compare(summaries: list[dict], *, n_se: float = DEFAULT_N_SE, allowance=None,
            estimators=ALL_ESTIMATORS, metrics=PREDICTED_METRICS, predictor=None) -> list[Comparison]:
    """Compare every summarized configuration with `theory.predict` (or `predictor(**model)`).

    Raises InvalidParameterError when nothing is comparable (no configuration simulates any of
    `estimators` with any of `metrics`): comparing nothing is not a pass."""
    from theory import predict

    predictor = predictor or predict
    allowance = {**DEFAULT_ALLOWANCE, **(allowance or {})}
    cache = {}
    out = []
    for s in summaries:
        cfg = s["config"]
        model = {k: cfg[k] for k in MODEL_KEYS}
        if cfg.get("variants"):
            model["variants"] = True
        if model["covariance"] != "isotropic":
            model["p"] = cfg["p"]            # such spectra depend on p
        elif "lds" in metrics and any("lds" in row for row in s["estimators"].values()):
            model.update(lds_alpha=cfg.get("lds_alpha", 0.5), lds_subsets=cfg["lds_subsets"])
        key = tuple(sorted(model.items()))
        if key not in cache:
            cache[key] = predictor(**model)
        th = cache[key]["estimators"]
        for e in estimators:
            for m in metrics:
                if e not in s["estimators"] or m not in s["estimators"][e] or e not in th:
                    continue
                cell = s["estimators"][e][m]
                tol = n_se * cell["se"] + allowance_for(e, m, th[e][m], cfg["p"], allowance)
                out.append(Comparison(cfg, e, m, cell["mean"], cell["se"], th[e][m], tol))
    if not out:
        simulated = sorted({e for s in summaries for e in s["estimators"]})
        raise InvalidParameterError(
            f"nothing to compare: no configuration has a prediction and a simulation of estimators "
            f"{', '.join(estimators) or '(none)'} with metrics {', '.join(metrics) or '(none)'} "
            f"(the table has estimators: {', '.join(simulated) or 'none'}).")
    return out


def default_allowance_text() -> str:
    """The default finite-size allowances at p = 400, in words (for help texts)."""
    a = DEFAULT_ALLOWANCE
    return (f"pearson {a['pearson']:g}, spearman {a['spearman']:g}, rel_error {a['rel_error']:g} "
            f"(NS at least {NS_REL_ERROR_ALLOWANCE:g}), scale {a['scale']:.0%} of the prediction")


def format_comparisons(comps: list[Comparison]) -> str:
    """Plain-text table: one line per configuration x estimator x metric."""
    head = (f"{'family':<9}{'p':>5}{'delta':>7}{'kappa':>7}{'lam':>7}{'lamT':>6}{'M':>3}  "
            f"{'est':<10}{'metric':<10}{'theory':>9}{'sim':>9}{'se':>8}{'z':>7}{'tol':>8}  ok")
    lines = [head, "-" * len(head)]
    for c in comps:
        g = c.config
        lines.append(f"{g['family']:<9}{g['p']:>5}{g['delta']:>7.3g}{g['kappa']:>7.3g}{g['lam']:>7.3g}"
                     f"{g['lam_trak']:>6.2g}{g['n_proj']:>3}  {c.estimator:<10}{c.metric:<10}"
                     f"{c.theory:>9.4f}{c.simulation:>9.4f}{c.se:>8.4f}{c.z:>7.1f}{c.tolerance:>8.4f}"
                     f"  {'yes' if c.ok else 'NO'}")
    n_bad = sum(not c.ok for c in comps)
    lines.append(f"{len(comps) - n_bad}/{len(comps)} within tolerance "
                 f"(|sim - theory| <= n_se * se + allowance * sqrt(400/p)).")
    return "\n".join(lines)
