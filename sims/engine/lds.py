"""Linear datamodeling score (LDS), the metric TRAK's users report.

For J random subsets S_j of the training set (each of size round(alpha n), alpha = 1/2 by default)
the model is refitted on S_j, giving the actual output f_0(S_j) = x_0^T beta_hat(S_j); an
attribution tau (one of the (T, n) influence matrices) predicts sum_{i in S_j} tau_i. The LDS of a
test point is the Spearman correlation across j of prediction and actual output. The refits are
sample-weighted damped Newton fits warm-started at beta_hat (`sims.engine.fit.newton_fit`), batched with
vmap over chunks of subsets; cost J (n p^2 + p^3/3) per Newton step.

Removing half of the training set is not a small perturbation: the theory (`theory.lds`,
docs/theory.md §10) describes two overlapping refits by a two-replica fixed point.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from theory.errors import NotConvergedError
from theory.families import Family

from .fit import OK, newton_fit
from .metrics import average_ranks, pearson

SUBSET_CHUNK = 16


def subset_masks(key, n: int, n_subsets: int, fraction: float = 0.5):
    """(J, n) 0/1 masks of J uniformly random subsets of size round(fraction n)."""
    size = max(1, int(round(fraction * n)))
    keys = jax.random.split(key, n_subsets)
    ranks = jax.vmap(lambda k: jnp.argsort(jax.random.uniform(k, (n,))))(keys)
    return (jnp.argsort(ranks, axis=1) < size).astype(jnp.float64)


@partial(jax.jit, static_argnames=("family",))
def _refit_outputs(masks, X, y, X0, lam, beta0, tol, *, family: Family):
    def one(mask):
        fit = newton_fit(X, y, lam, family=family, tol=tol, beta0=beta0, weights=mask)
        return X0 @ fit.beta, fit.status

    return jax.vmap(one)(masks)


def subset_outputs(key, X, y, X0, lam, beta_hat, *, family: Family, n_subsets: int,
                   fraction: float = 0.5, tol: float = 1e-10):
    """(masks (J, n), actual outputs (T, J)) of refits on random subsets. Beyond SUBSET_CHUNK
    subsets the last chunk is padded with copies of its last mask, so that every chunk runs one
    compiled program (a vmapped refit does not depend on the other rows of its batch)."""
    masks = subset_masks(key, X.shape[0], n_subsets, fraction)
    size, rows = min(n_subsets, SUBSET_CHUNK), np.asarray(masks)    # (numpy: no program per slice)
    outs = []
    for start in range(0, n_subsets, size):
        idx = np.minimum(np.arange(start, start + size), n_subsets - 1)
        out, status = _refit_outputs(rows[idx], X, y, X0, lam, beta_hat, tol, family=family)
        if np.any(np.asarray(status) != OK):
            raise NotConvergedError("a subset refit for the LDS did not converge; use a larger lam.")
        outs.append(np.asarray(out))
    return masks, np.concatenate(outs, axis=0)[:n_subsets].T


@jax.jit
def lds(influence, masks, outputs):
    """Per test point: Spearman across subsets of sum_{i in S_j} influence_i and the actual output."""
    predicted = influence @ masks.T                       # (T, J)
    return pearson(average_ranks(predicted), average_ranks(outputs))
