"""Agreement metrics between an estimator and exact LOO, per test point (row), then aggregated.

For one test point with estimator values e_i and LOO values l_i over training points i = 1..n:
  pearson      corr(e, l)
  spearman     corr(rank(e), rank(l)), average ranks for ties
  rel_error    ||e - l||_2 / ||l||_2
  scale        sum_i e_i l_i / sum_i e_i^2  (least-squares slope of LOO on the estimator, through 0)
  top_overlap  |top_m(|e|) ∩ top_m(|l|)| / m, the most influential m points by magnitude
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
from .tiers import tiered_jit

METRICS = ("pearson", "spearman", "rel_error", "scale", "top_overlap")


def average_ranks(v):
    """1-based ranks along the last axis; tied values share the average of their ranks."""
    s = jnp.sort(v, axis=-1)
    search = jnp.vectorize(lambda a, x: (jnp.searchsorted(a, x, side="left"),
                                         jnp.searchsorted(a, x, side="right")),
                           signature="(n),(n)->(n),(n)")
    lo, hi = search(s, v)
    return (lo + hi + 1) / 2.0


def pearson(a, b):
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    return jnp.sum(a * b, axis=-1) / jnp.sqrt(jnp.sum(a * a, axis=-1) * jnp.sum(b * b, axis=-1))


def top_overlap(est, loo, m: int):
    """Fraction of the m largest-|loo| points that are also among the m largest-|est| points."""
    in_e = jnp.abs(est) >= jax.lax.top_k(jnp.abs(est), m)[0][..., -1:]
    in_l = jnp.abs(loo) >= jax.lax.top_k(jnp.abs(loo), m)[0][..., -1:]
    return jnp.sum(in_e & in_l, axis=-1) / m


@tiered_jit(static_argnames=("top_m",))
def row_metrics(est, loo, *, top_m: int):
    """Each metric of the module docstring for every row of (T, n) arrays `est` and `loo`."""
    return {
        "pearson": pearson(est, loo),
        "spearman": pearson(average_ranks(est), average_ranks(loo)),
        "rel_error": jnp.linalg.norm(est - loo, axis=-1) / jnp.linalg.norm(loo, axis=-1),
        "scale": jnp.sum(est * loo, axis=-1) / jnp.sum(est * est, axis=-1),
        "top_overlap": top_overlap(est, loo, top_m),
    }


def default_top_m(n: int) -> int:
    """m = 5% of the training points (at least 1)."""
    return max(1, int(round(0.05 * n)))


def mean_and_se(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of a (reps, T) array of per-test-point values.

    Test points that share a training set are not independent, so with reps >= 2 the variance
    of the grand mean is estimated from the replicate means (one-way random effects), floored
    by the within-replicate estimate: se^2 = max(s_between^2, s_within^2 / T) / reps. With one
    replicate it is s_within^2 / T (conditional on the training set).
    """
    values = np.asarray(values, dtype=float)
    reps, T = values.shape
    mean = float(values.mean())
    within = float(values.var(axis=1, ddof=1).mean()) if T > 1 else 0.0
    if reps == 1:
        return mean, float(np.sqrt(within / T))
    between = float(values.mean(axis=1).var(ddof=1))
    return mean, float(np.sqrt(max(between, within / T) / reps))
