"""Influence estimators, each a (T, n) matrix: test point x training point (docs/conventions.md),
and the registry of every estimator (`REGISTRY`) from which results, tables, the CLI and the
figures take their names, labels and colours.

    IF_i   = -x_0^T A x_i g_i,                A = H^{-1}, H = X^T diag(w) X + lam I
    NS_i   = IF_i / (1 - w_i h_i),             h_i = x_i^T A x_i   (Newton step = ALO)
    TRAK_i = -x_0^T P (P^T X^T X P + lamT I_k)^{-1} P^T x_i g_i, averaged over M projections.

TRAK is evaluated as Phi_0 G^{-1} Phi^T with Phi = X P: cost n p k + n k^2 + k^3/3 + T k n flops
and O((n + p) k) memory per projection; the M projections are generated one at a time inside a
loop, so P never occupies p x k x M memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

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


def _kernel_scores(Phi, Phi0, lam_trak):
    """Phi_0 (Phi^T Phi + lamT I)^{-1} Phi^T, solving against the T test rows first."""
    G = Phi.T @ Phi + lam_trak * jnp.eye(Phi.shape[1], dtype=Phi.dtype)
    Z = jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(G), True), Phi0.T)
    return Z.T @ Phi.T


def trak_influence(key, X, X0, g, lam_trak, *, k: int, n_proj: int, projection: str):
    """TRAK scores (T, n), -(1/M) sum_m Phi_0,m (Phi_m^T Phi_m + lamT I)^{-1} Phi_m^T g with
    Phi_m = X P_m, P_m = `projection_matrix(fold_in(key, m), p, k, projection)` (up to the
    rounding of its 1/sqrt(k) scaling, done after the draw here); projection
    "identity" uses P = I (then k and n_proj are ignored). One compiled step per projection: the
    draws are `data.flat_draw`s, so no program is compiled per (p, k) for the random numbers."""
    if projection == "identity":
        return _identity_trak(X, X0, g, lam_trak)
    acc = np.zeros((X0.shape[0], X.shape[0]), X.dtype)       # numpy: no program compiled per shape
    for m in range(n_proj):
        acc = _add_projected_scores(acc, _projection_draw(key, m, X.shape[1], k, projection), X, X0, lam_trak, k=k)
    return _average_scores(acc, g, n_proj)


@tiered_jit
def _identity_trak(X, X0, g, lam_trak):
    return -_kernel_scores(X, X0, lam_trak) * g


def _projection_draw(key, m, p, k, projection):
    """The draws of P_m as a `flat_draw` (entries [:p k] are P_m sqrt(k), row-major)."""
    return flat_draw(_fold_in(key, m), p * k, projection)


@tiered_jit
def _fold_in(key, m):
    return jax.random.fold_in(key, m)


def _projection_from_draw(flat, p, k):
    return take(flat, (p, k)) / jnp.sqrt(k)


@tiered_jit(static_argnames=("k",))
def _add_projected_scores(acc, flat, X, X0, lam_trak, *, k):
    P = _projection_from_draw(flat, X.shape[1], k)
    return acc + _kernel_scores(X @ P, X0 @ P, lam_trak)


@tiered_jit
def _average_scores(acc, g, n_proj):
    return -(acc / n_proj) * g


def _kernel_and_leverage(Phi, Phi0, lam_trak, weights=None):
    """(Phi_0 G^{-1} Phi^T, h) with G = Phi^T diag(v) Phi + lamT I and h_i = phi_i^T G^{-1} phi_i."""
    v = jnp.ones(Phi.shape[0], Phi.dtype) if weights is None else weights
    G = (Phi.T * v) @ Phi + lam_trak * jnp.eye(Phi.shape[1], dtype=Phi.dtype)
    L = jnp.linalg.cholesky(G)
    Z = jax.scipy.linalg.cho_solve((L, True), jnp.concatenate([Phi0, Phi], axis=0).T)   # G^{-1} [Phi0; Phi]^T
    T = Phi0.shape[0]
    return Z[:, :T].T @ Phi.T, jnp.sum(Z[:, T:].T * Phi, axis=1)


def trak_variants(key, X, X0, g, w, lam_trak, *, k: int, n_proj: int, projection: str):
    """TRAK and its corrected variants (docs/theory.md §5), each (T, n), averaged over M projections:

        trak       -phi_0^T (Phi^T Phi + lamT)^{-1} phi_i g_i                       (as trak_influence)
        trak_lev   trak_i / (1 - h_i),       h_i = phi_i^T (Phi^T Phi + lamT)^{-1} phi_i
        trak_w     -phi_0^T (Phi^T W Phi + lamT)^{-1} phi_i g_i                     (Hessian-weighted Gram)
        trak_wlev  trak_w_i / (1 - w_i h^w_i), h^w_i = phi_i^T (Phi^T W Phi + lamT)^{-1} phi_i

    With P = I and lamT = lam, trak_w is IF and trak_wlev is NS (ALO) exactly. The projections
    are those of `trak_influence` (same key: same P_m).
    """
    if projection == "identity":
        return _variant_scores(X, X0, g, w, lam_trak)
    zero = np.zeros((X0.shape[0], X.shape[0]), X.dtype)      # numpy: no program compiled per shape
    acc = {name: zero for name in VARIANT_NAMES}
    for m in range(n_proj):
        acc = _add_projected_variants(acc, _projection_draw(key, m, X.shape[1], k, projection), X, X0, g, w,
                                      lam_trak, k=k)
    return _average_variants(acc, n_proj)


VARIANT_NAMES = ("trak", "trak_lev", "trak_w", "trak_wlev")


@tiered_jit
def _variant_scores(Phi, Phi0, g, w, lam_trak):
    S, h = _kernel_and_leverage(Phi, Phi0, lam_trak)
    Sw, hw = _kernel_and_leverage(Phi, Phi0, lam_trak, w)
    return {"trak": -S * g, "trak_lev": -S * g / (1.0 - h), "trak_w": -Sw * g,
            "trak_wlev": -Sw * g / (1.0 - w * hw)}


@tiered_jit(static_argnames=("k",))
def _add_projected_variants(acc, flat, X, X0, g, w, lam_trak, *, k):
    P = _projection_from_draw(flat, X.shape[1], k)
    new = _variant_scores(X @ P, X0 @ P, g, w, lam_trak)
    return {name: acc[name] + new[name] for name in VARIANT_NAMES}


@tiered_jit
def _average_variants(acc, n_proj):
    return {name: acc[name] / n_proj for name in VARIANT_NAMES}


# ------------------------------------------------------------------------------------ registry
@dataclass(frozen=True)
class Estimator:
    """One influence estimator: its name (the key in every result and table), plot label and
    colour, when the engine computes it, the engine function that does, and its theory.

    group: "core" (always simulated), "variant" (with variants=True) or "reference" (exact LOO
    itself, scored only by the LDS). theory: "any" (predicted for every covariance), "isotropic"
    (predicted for the isotropic covariance only) or "none" (simulation only).
    """

    name: str
    label: str
    color: str
    group: str
    compute: Callable | None
    theory: str


REGISTRY: dict[str, Estimator] = {e.name: e for e in (
    Estimator("if", "IF", "#d95f02", "core", if_ns_influence, "any"),
    Estimator("ns", "NS (ALO)", "#1b9e77", "core", if_ns_influence, "any"),
    Estimator("trak", "TRAK", "#7570b3", "core", trak_influence, "any"),
    Estimator("trak_lev", "TRAK + LOO factor", "#a6761d", "variant", trak_variants, "any"),
    Estimator("trak_w", "TRAK, weighted Gram", "#e7298a", "variant", trak_variants, "any"),
    Estimator("trak_wlev", "TRAK, weighted Gram + ALO factor", "#66a61e", "variant", trak_variants, "any"),
    Estimator("loo", "exact LOO", "#444444", "reference", None, "none"),
)}


def estimator_group(group: str) -> tuple[str, ...]:
    """Names of the registered estimators of one group, in registry order."""
    return tuple(name for name, e in REGISTRY.items() if e.group == group)


PREDICTED = tuple(name for name, e in REGISTRY.items() if e.theory != "none")
