"""The conditional theory's ground truth on a user's own data: the fit, exact LOO (or the Newton
step) on every training point, and TRAK computed with real sketches (Monte Carlo over P).

`theory.conditional` predicts TRAK's metrics against a truth on fixed data, the projection being
the only randomness; this module measures them: `fit_and_truth` gives g, w and the truth,
`sketch_monte_carlo` averages the metrics of `reps` independent TRAK scores (each an average of M
sketches, exactly as `sims.engine.estimators` computes TRAK in a simulation). Both work on the
user's scale: lam and lam_T enter the objective and the Gram as they are.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import numpy as np

from theory.errors import InvalidParameterError, NotConvergedError
from theory.numerics import enable_float64

TRUTHS = ("loo", "ns")


class FitTruth(NamedTuple):
    """A ridge GLM fitted on (X, y) and its influences on the test rows X0 (each T x n)."""

    beta: np.ndarray
    g: np.ndarray
    w: np.ndarray
    influence: dict          # "if", "ns" and, when computed, "loo"


def fit_and_truth(X, y, X0, *, family: str, lam: float, truth: str = "loo", tol: float = 1e-10,
                  offset=None, progress=None) -> FitTruth:
    """Fit the ridge GLM (damped Newton, `sims.engine.fit`), then IF and NS exactly and, with
    truth = "loo", exact leave-one-out for every training point (`sims.engine.loo.exact_loo`,
    agreeing with refits to 1e-8). `offset` (n,): a GLM with eta = X beta + offset (the linearized
    network). `progress(count)` is called as LOO points finish."""
    from ..engine.estimators import if_ns_influence, if_ns_influence_kernel
    from ..engine.fit import check_fit, newton_fit
    from ..engine.loo import exact_loo
    from ..engine.simulate import _inverse_and_product

    enable_float64()
    if truth not in TRUTHS:
        raise InvalidParameterError(f"truth must be one of {', '.join(TRUTHS)}, got {truth!r}.")
    if not lam > 0:
        raise InvalidParameterError(f"lam must be > 0, got {lam!r}.")
    Xd, yd, X0d = (jax.device_put(np.asarray(a, dtype=np.float64)) for a in (X, y, X0))
    od = None if offset is None else jax.device_put(np.asarray(offset, dtype=np.float64))
    fit = check_fit(newton_fit(Xd, yd, lam, family=family, tol=min(tol, 1e-10), offset=od), Xd, yd, lam, family)
    n, p = Xd.shape
    A, XA, finite = _inverse_and_product(Xd, fit.w, lam)
    if not bool(finite):
        raise NotConvergedError("the Hessian at the fitted coefficients is numerically singular; use a larger lam.")
    if n < p:
        IF, NS, _ = if_ns_influence_kernel(Xd, X0d, fit.g, fit.w, lam)
    else:
        IF, NS, _ = if_ns_influence(Xd, X0d, fit.g, fit.w, A, XA)
    influence = {"if": np.asarray(IF), "ns": np.asarray(NS)}
    if truth == "loo":
        influence["loo"] = np.asarray(exact_loo(family, Xd, yd, X0d, fit, A, lam, XA=XA, tol=tol,
                                                progress=progress, offset=od).values)
    return FitTruth(np.asarray(fit.beta), np.asarray(fit.g), np.asarray(fit.w), influence)


def sketch_monte_carlo(X, X0, g, w, truth, *, k: int, lam_trak: float, n_proj: int = 1, reps: int = 32,
                       seed: int = 0, projection: str = "gaussian", variants: bool = False) -> dict:
    """Metrics of TRAK (and, with variants, trak_lev, trak_w, trak_wlev) against `truth` (T x n)
    over `reps` independent draws of M = n_proj sketches each: {estimator: {metric: {"mean", "se",
    "rows"}}}, the mean over draws and test rows, its standard error from the spread of the
    per-draw row means (the draws are independent; the rows share them), and the per-row means."""
    from ..engine.estimators import trak_influence, trak_variants
    from ..engine.metrics import row_metrics

    enable_float64()
    if reps < 2:
        raise InvalidParameterError(f"reps must be >= 2 for a standard error, got {reps}.")
    Xd, X0d, gd, wd = (jax.device_put(np.asarray(a, dtype=np.float64)) for a in (X, X0, g, w))
    L = jax.device_put(np.asarray(truth, dtype=np.float64))
    top_m = max(1, int(round(0.05 * Xd.shape[0])))
    per = {}
    for rep in range(reps):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), rep)
        if variants:
            scores = trak_variants(key, Xd, X0d, gd, wd, lam_trak, k=k, n_proj=n_proj, projection=projection)
        else:
            scores = {"trak": trak_influence(key, Xd, X0d, gd, lam_trak, k=k, n_proj=n_proj, projection=projection)}
        for name, S in scores.items():
            S = jax.device_put(np.asarray(S))
            met = row_metrics(S, L, top_m=top_m)
            for m in ("pearson", "spearman", "rel_error", "scale"):
                per.setdefault(name, {}).setdefault(m, []).append(np.asarray(met[m]))
    out = {}
    for name, mets in per.items():
        out[name] = {}
        for m, vals in mets.items():
            vals = np.stack(vals)                        # reps x T
            if not np.all(np.isfinite(vals)):
                raise NotConvergedError(f"{name}'s {m} is not finite for some sketch (singular Gram; use lam_trak > 0).")
            draw_means = vals.mean(axis=1)
            out[name][m] = {"mean": float(vals.mean()), "se": float(draw_means.std(ddof=1) / math.sqrt(reps)),
                            "rows": vals.mean(axis=0).tolist()}
    return out
