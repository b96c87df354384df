"""The simulation of the influence estimators, each a (T, n) matrix: test point x training point
(docs/conventions.md). Which estimators exist, and each one's formula, is the registry
`theory.estimators.REGISTRY` (re-exported here); this module runs its three engines:

    ridge       IF_i = -x_0^T A x_i g_i, NS_i = IF_i / (1 - w_i h_i) from A = H^{-1} (`if_ns_influence`)
    projected   -(1/M) sum_m e.projected(X P_m, X_0 P_m, lamT) g   (TRAK, gradient similarity; `projected_influence`)
    variant     (1/M) sum_m e.variant(parts of X P_m, g, w)       (every sketched one; `variant_influence`)

TRAK is evaluated as Phi_0 G^{-1} Phi^T with Phi = X P: cost n p k + n k^2 + k^3/3 + T k n flops
and O((n + p) k) memory per projection; the M projections are generated one at a time inside a
loop, so P never occupies p x k x M memory, and every estimator of a step shares its P_m and Phi.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from theory.estimators import PREDICTED, REGISTRY, SKETCHED, Parts, estimator_group  # noqa: F401  (re-exported)

from .data import flat_draw, take
from .tiers import tiered_jit


@tiered_jit
def if_ns_influence(X, X0, g, w, A, XA):
    """(IF, NS, leverage h) from A = H^{-1} and XA = X A."""
    U = (X0 @ A) @ X.T
    h = jnp.sum(XA * X, axis=1)
    IF = -U * g
    return IF, IF / (1.0 - w * h), h


@tiered_jit
def if_ns_influence_kernel(X, X0, g, w, lam):
    """(IF, NS, leverage h) in the n x n kernel form, for n < p and lam > 0.

    With Q = X X^T and M = W Q + lam I: A X^T = X^T M^{-1}, so x_0^T A x_i = [X_0 X^T M^{-1}]_{0i},
    h_i = [Q M^{-1}]_ii and, since W Q M^{-1} = I - lam M^{-1}, 1 - w_i h_i = lam [M^{-1}]_ii
    without cancellation. Near interpolation (tiny lam) H is ill-conditioned (its p - n smallest
    eigenvalues are lam) and 1 - w_i h_i ~ lam, so the p x p form loses about log10(1/lam^2)
    digits where this one loses none (gaussian, n/p = 0.5, lam = 1e-8: NS off by 26% there).
    """
    n = X.shape[0]
    Q = X @ X.T
    M = w[:, None] * Q + lam * jnp.eye(n, dtype=X.dtype)
    Minv = jnp.linalg.solve(M, jnp.eye(n, dtype=X.dtype))
    U = (X0 @ X.T) @ Minv
    h = jnp.sum(Q * Minv.T, axis=1)
    IF = -U * g
    return IF, IF / (lam * jnp.diagonal(Minv)), h


def projection_matrix(key, p: int, k: int, projection: str):
    """P (p x k): iid N(0, 1/k) ("gaussian") or +-1/sqrt(k) ("rademacher")."""
    if projection == "gaussian":
        return jax.random.normal(key, (p, k), dtype=jnp.float64) / jnp.sqrt(k)
    if projection == "rademacher":
        return jax.random.rademacher(key, (p, k), dtype=jnp.float64) / jnp.sqrt(k)
    raise ValueError(f"unknown projection {projection!r}")


def projected_influence(key, X, X0, g, lam_trak, *, k: int, n_proj: int, projection: str, names) -> dict:
    """{name: (T, n)} for the sketched estimators `names` whose engine is "projected" (TRAK, the gradient similarity):
    -(1/M) sum_m e.projected(Phi_m, Phi_0,m, lamT) g with Phi_m = X P_m, P_m =
    `projection_matrix(fold_in(key, m), p, k, projection)` (up to the rounding of its 1/sqrt(k)
    scaling, done after the draw here); projection "identity" uses P = I (k and n_proj ignored).
    One compiled step per projection serves every name: the draws are `data.flat_draw`s, so no
    program is compiled per (p, k) for the random numbers."""
    names = tuple(names)
    if projection == "identity":
        return _identity_projected(X, X0, g, lam_trak, names=names)
    zero = np.zeros((X0.shape[0], X.shape[0]), X.dtype)     # numpy: no program compiled per shape
    acc = {name: zero for name in names}
    for m in range(n_proj):
        acc = _add_projected(acc, _projection_draw(key, m, X.shape[1], k, projection), X, X0, lam_trak, k=k,
                             names=names)
    return _average_scores(acc, g, n_proj)


def trak_influence(key, X, X0, g, lam_trak, *, k: int, n_proj: int, projection: str):
    """TRAK scores (T, n), -(1/M) sum_m Phi_0,m (Phi_m^T Phi_m + lamT I)^{-1} Phi_m^T g
    (`projected_influence` of TRAK alone)."""
    return projected_influence(key, X, X0, g, lam_trak, k=k, n_proj=n_proj, projection=projection,
                               names=("trak",))["trak"]


def _identity_projected(X, X0, g, lam_trak, *, names):
    return {name: _identity_one(X, X0, g, lam_trak, name=name) for name in names}


@tiered_jit(static_argnames=("name",))
def _identity_one(X, X0, g, lam_trak, *, name):
    return -REGISTRY[name].projected(X, X0, lam_trak) * g


def _projection_draw(key, m, p, k, projection):
    """The draws of P_m as a `flat_draw` (entries [:p k] are P_m sqrt(k), row-major)."""
    return flat_draw(_fold_in(key, m), p * k, projection)


@tiered_jit
def _fold_in(key, m):
    return jax.random.fold_in(key, m)


def _projection_from_draw(flat, p, k):
    return take(flat, (p, k)) / jnp.sqrt(k)


def _add_projected(acc, flat, X, X0, lam_trak, *, k, names):
    """One projection, each estimator in its own program (P, X P and its piece): adding an
    estimator leaves the others' programs, and so their rounding, unchanged; the price is one
    n p k product X P per estimator (TRAK's own cost is n p k + n k^2 + k^3/3)."""
    return {name: _add_one(acc[name], flat, X, X0, lam_trak, k=k, name=name) for name in names}


@tiered_jit(static_argnames=("k", "name"))
def _add_one(acc, flat, X, X0, lam_trak, *, k, name):
    P = _projection_from_draw(flat, X.shape[1], k)
    return acc + REGISTRY[name].projected(X @ P, X0 @ P, lam_trak)


def _average_scores(acc, g, n_proj):
    return {name: _average_one(a, g, n_proj) for name, a in acc.items()}


@tiered_jit
def _average_one(acc, g, n_proj):
    return -(acc / n_proj) * g


def variant_influence(key, X, X0, g, w, lam_trak, *, k: int, n_proj: int, projection: str, names) -> dict:
    """{name: (T, n)} for sketched estimators `names`, each the average over M projections of its
    `Estimator.variant(parts, g, w)` on (Phi_m, Phi_0,m) (`theory.estimators.Parts`: the kernels and
    leverages of the plain and the Hessian-weighted Gram, the gradient similarity). The corrected
    variants (docs/theory.md §5):

        trak_lev   trak_i / (1 - h_i),       h_i = phi_i^T (Phi^T Phi + lamT)^{-1} phi_i
        trak_w     -phi_0^T (Phi^T W Phi + lamT)^{-1} phi_i g_i                     (Hessian-weighted Gram)
        trak_wlev  trak_w_i / (1 - w_i h^w_i), h^w_i = phi_i^T (Phi^T W Phi + lamT)^{-1} phi_i

    With P = I and lamT = lam, trak_w is IF and trak_wlev is NS (ALO) exactly. The projections
    are those of `projected_influence` (same key: same P_m)."""
    names = tuple(names)
    if projection == "identity":
        return _variant_scores(X, X0, g, w, lam_trak, names=names)
    zero = np.zeros((X0.shape[0], X.shape[0]), X.dtype)      # numpy: no program compiled per shape
    acc = {name: zero for name in names}
    for m in range(n_proj):
        acc = _add_projected_variants(acc, _projection_draw(key, m, X.shape[1], k, projection), X, X0, g, w,
                                      lam_trak, k=k, names=names)
    return _average_variants(acc, n_proj)


def trak_variants(key, X, X0, g, w, lam_trak, *, k: int, n_proj: int, projection: str):
    """TRAK and its corrected variants (`variant_influence` of the group "variant" and TRAK)."""
    return variant_influence(key, X, X0, g, w, lam_trak, k=k, n_proj=n_proj, projection=projection,
                             names=("trak",) + estimator_group("variant"))


@tiered_jit(static_argnames=("names",))
def _variant_scores(Phi, Phi0, g, w, lam_trak, *, names):
    parts = Parts(Phi, Phi0, w, lam_trak)
    return {name: REGISTRY[name].variant(parts, g, w) for name in names}


@tiered_jit(static_argnames=("k", "names"))
def _add_projected_variants(acc, flat, X, X0, g, w, lam_trak, *, k, names):
    P = _projection_from_draw(flat, X.shape[1], k)
    new = _variant_scores(X @ P, X0 @ P, g, w, lam_trak, names=names)
    return {name: acc[name] + new[name] for name in names}


@tiered_jit
def _average_variants(acc, n_proj):
    return {name: a / n_proj for name, a in acc.items()}
