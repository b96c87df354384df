"""TRAK conditional on the data: the random projection is the only randomness (docs/theory.md §11).

Fix the training features X (n x p), the fit's gradients g (and curvatures w), test rows X0 (T x p)
and a truth L (T x n: exact LOO, or the Newton step). One sketch P (p x k, iid N(0, 1/k) or
+-1/sqrt(k) entries) gives TRAK's scores

    s_0i = -x0^T K x_i g_i,      K = P (P^T G P + lamT I_k)^{-1} P^T,      G = X^T X,

and M sketches average M such scores. As k and the rank of G grow together, with R = (G + mu I)^{-1}:

  (C1) first order:   K ~ R, the effective ridge mu solving  lamT = mu (1 - df1(mu)/k),
                      df1 = tr G R (for lamT = 0: df1(mu) = k, which needs k < rank G);
  (C2) second order:  the bilinear forms u^T K v are jointly Gaussian around u^T R v with
                      Cov(u^T K v, u'^T K v') = c [(u^T R^2 u')(v^T R^2 v') + (u^T R^2 v')(v^T R^2 u')],
                      c = mu^2 / (k - df2),  df2 = tr G^2 R^2;  M sketches divide c by M.

Derivation (docs/theory.md §11): with C = G^{1/2}, C K C = I - lamT (S + lamT)^{-1} where
S = C P P^T C is the sample covariance of k Gaussian vectors of covariance G, so (C1) is the
deterministic equivalent of a Wishart resolvent and (C2) its martingale CLT, the feedback of the
shared resolvent giving the factor 1/(1 - df2/k). Anchors: LeJeune, Patil, Javadi, Baraniuk,
Tibshirani, arXiv 2211.03751 (first and second order of the sketched pseudoinverse); Patil &
LeJeune, arXiv 2310.04357 (ensembles of M sketches conditional on the data). Rademacher sketches
use the same law (universality; the fourth-cumulant correction is O(1/p) for delocalized vectors).

Hence, for one test row, the scores of any sketched estimator are a Gaussian vector s = m + e with

    m_i = -a_i x0^T R x_i,    Cov(e_i, e_j) = (c/M) [ A (F F^T)_ij + b_i b_j ],
    F = diag(a) X R  (n x p),  b_i = a_i x0^T R^2 x_i,  A = x0^T R^2 x0,

where a_i is the estimator's weight on point i (TRAK: g_i; the leverage variants divide it by the
mean leave-one-out factor, treating the leverage as deterministic at its equivalent x_i^T R x_i).

Metrics against the truth, per test row (conditional expectations over sketches):
  Spearman    exact under that Gaussian law: E[rank_i(s)] = 1 + sum_{j != i} Phi((m_i - m_j)/sd(e_i - e_j)),
              so E[rho_S] = sum_i c_i E[rank_i(s)] / (||c|| sqrt(n(n^2 - 1)/12)), c_i the centred
              (average) ranks of the truth. The double sum runs over all n (n - 1) ordered pairs when
              that is <= `pairs` (exact), otherwise over the pairs (perm[i], perm[i + d]), d = 1..J,
              of a seeded random order perm (J = pairs // n): uniform over distinct pairs for every d,
              so unbiased; the standard error of the row mean over the J shifts is reported
              (`spearman_error`). No real sketch is drawn.
  Pearson,    second-order delta method, closed form in Gaussian moments: for N = <s, u>,
  scale,      Q = (s - v)^T P (s - v) (P the centring J or I),
  rel_error       E[N Q^-1/2] ~ N Q^-1/2 (1 + 3 Var Q/(8 Q^2)) - Cov(N, Q)/(2 Q^3/2),
                  E[N / Q]    ~ N/Q (1 + Var Q/Q^2) - Cov(N, Q)/Q^2,
                  E[Q^1/2]    ~ Q^1/2 (1 - Var Q/(8 Q^2))    (N, Q at their means),
              Var Q = 4 (m - v)^T P Sigma P (m - v) + 2 tr((P Sigma)^2), Cov(N, Q) = 2 u^T Sigma P (m - v);
              every term reduces to r x r matrices in the eigenbasis of G (no n-vector is formed).

Cost: one eigendecomposition of G (p x p, or via X X^T when n < p), X U (n p r), the r x r Grams
of the closed forms (n r^2, once per weight vector); then per (k, lamT): a scalar root, one
T x r x n product (the means m and b, for Spearman), T x r x r products for the closed forms,
n J r for the pairs' Q_ij and T n J normal CDFs per M (n J = `pairs`). The leverage variants, whose
weights move with mu, take their moments from the n-vectors instead (`sampled_moments`, n r 3T).

Estimators (each with a weight a_i and a kernel, `theory.estimators.Kernel`, from the registry
`theory.estimators.REGISTRY`; `CONDITIONAL_ESTIMATORS`):
  trak       -x0^T K x_i g_i,                 G = X^T X
  trak_w     the same with G = X^T diag(w) X  (Hessian-weighted Gram)
  trak_lev   trak_i / (1 - h_i),   h_i = x_i^T K x_i ~ x_i^T R x_i              (G = X^T X)
  trak_wlev  trak_w_i / (1 - w_i h_i),  h_i = x_i^T K_w x_i ~ x_i^T R_w x_i       (G = X^T diag(w) X)
  the "sum" kernel P P^T (gradient similarity): R = I and, exactly for Gaussian P, c = 1/k
With w and lam given, IF (-x0^T H^{-1} x_i g_i, H = X^T diag(w) X + lam I) and NS (IF_i/(1 - w_i h_i))
are computed exactly (they do not depend on P: the weighted kernel at mu = lam with c = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .errors import EstimatorDoesNotExistError, InvalidParameterError
from .estimators import Kernel
from .params import check_int, check_real

METRICS = ("pearson", "spearman", "rel_error", "scale")
PROJECTIONS = ("gaussian", "rademacher")
DEFAULT_PAIRS = 1 << 17        # pairs (i, j) per test row for Spearman; n (n - 1) below this: all pairs (exact)


def _conditional_estimators() -> dict:
    """{name: Kernel} of the registered estimators with a conditional theory (`theory.estimators`)."""
    from .estimators import REGISTRY

    return {name: e.conditional for name, e in REGISTRY.items() if e.conditional not in (None, "exact")}


CONDITIONAL_ESTIMATORS = _conditional_estimators()
EXACT_ESTIMATORS = ("if", "ns")


# ------------------------------------------------------------------------------- eigenbasis
@dataclass(frozen=True)
class Basis:
    """G = X^T diag(v) X in its eigenbasis U (p x r, the directions with nonzero eigenvalue when
    n < p; all p otherwise): eigenvalues s (r,), Xt = X U (n x r), X0t = X0 U (T x r), and the
    squared norm of each test row outside span(U) (`null2`, T,; zero when r = p)."""

    s: np.ndarray
    Xt: np.ndarray
    X0t: np.ndarray
    null2: np.ndarray
    p: int
    rank: int
    U: np.ndarray | None = None      # the eigenvectors (p x r)
    sq: np.ndarray | None = None     # Xt * Xt (`_squares`)
    # the tail model (top eigenpairs only, `eigenbasis(top=...)`): the modelled eigenvalues of G off
    # span(U), the rows (for their products off span(U)), ||x_i_perp||^2 (n,) and x0_perp . x_i_perp (T x n)
    tail: np.ndarray | None = None
    X: np.ndarray | None = None
    xc2: np.ndarray | None = None
    x0c: np.ndarray | None = None


def eigenbasis(X, X0, weights=None, top: int | None = None, seed: int = 0) -> Basis:
    """`Basis` of G = X^T diag(weights) X (weights default 1): eigh of the p x p Gram when p <= n,
    of the n x n Gram (then U = X^T diag(v)^1/2 W s^-1/2) when n < p. Eigenvalues below
    max(s) max(n, p) eps count as zero (they enter the rank, not the kernel's equivalent).
    top = r: only the top r eigenpairs (`top_eigenbasis`), with the tail model."""
    X0 = np.asarray(X0, dtype=np.float64)
    if top is not None:
        return top_eigenbasis(X, X0, top, seed, weights)
    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    Y = X if weights is None else X * np.sqrt(np.asarray(weights, dtype=np.float64))[:, None]
    if p <= n:
        s, U = np.linalg.eigh(Y.T @ Y)
        s = np.clip(s, 0.0, None)
        tol = s[-1] * max(n, p) * np.finfo(float).eps
        rank = int(np.sum(s > tol))
        s = np.where(s > tol, s, 0.0)
        return Basis(s, X @ U, X0 @ U, np.zeros(X0.shape[0]), p, rank, U)
    mu, W = np.linalg.eigh(Y @ Y.T)
    tol = max(mu[-1], 0.0) * max(n, p) * np.finfo(float).eps
    keep = mu > tol
    s, W = mu[keep], W[:, keep]
    U = (Y.T @ W) / np.sqrt(s)                       # right singular vectors of Y, p x r
    X0t = X0 @ U
    null2 = np.maximum(np.sum(X0 * X0, axis=1) - np.sum(X0t * X0t, axis=1), 0.0)
    return Basis(s, X @ U, X0t, null2, p, int(s.size), U)


TOP_OVERSAMPLE, TOP_POWER_ITERS = 12, 2


def top_eigenbasis(X, X0, top: int, seed: int = 0, weights=None) -> Basis:
    """The top `top` eigenpairs of G = X^T diag(weights) X by a randomized range finder (Halko,
    Martinsson & Tropp 2011; 2 power iterations, 12 oversampling columns, the test matrix drawn
    with jax.random from `seed`) and the tail model: the rest of tr G spread over the other
    min(n, p) - top directions as a power-law continuation of the last computed eigenvalue
    (`covariance.power_tail`), and R = (G + mu)^-1 acting off span(U) on a data vector as a scalar,
    weighted like the data's own energy there (the tail eigenvalues t_j): u_perp^T R v_perp ~
    rho1 u_perp . v_perp, rho_q = sum_j t_j (t_j + mu)^-q / sum_j t_j (`Sketch`). This is exact
    when mu >> t_j (k well below `top`) and for data vectors spread over the tail like the rows;
    its error is measured against the exact eigenbasis in benchmarks/README.md. X is read by row
    blocks (`theory.rows`: an array, a memory map or `Rows`; it is kept, not copied, for the tail
    model's products). Cost: (2 + 2 power iterations) n p (top + 12) flops, X U (n p top), X0 X^T
    (T n p) once."""
    import jax

    from . import rows
    from .covariance import power_tail

    n, p = X.shape
    rmax = min(n, p)
    if not 1 <= top < rmax:
        raise InvalidParameterError(f"top must be between 1 and min(n, p) - 1 = {rmax - 1}, got {top}.")
    ell = min(rmax, top + TOP_OVERSAMPLE)
    omega = np.asarray(jax.random.normal(jax.random.PRNGKey(seed), (p, ell), dtype=np.float64))
    Q = np.linalg.qr(rows.gram(X, weights, omega))[0]
    for _ in range(TOP_POWER_ITERS):
        Q = np.linalg.qr(rows.gram(X, weights, Q))[0]
    YQ = rows.times(X, Q)
    if weights is not None:
        YQ *= np.sqrt(np.asarray(weights, dtype=np.float64))[:, None]
    s, W = np.linalg.eigh(YQ.T @ YQ)
    del YQ
    s, U = np.clip(s[::-1][:top], 0.0, None), (Q @ W[:, ::-1])[:, :top]
    norms2 = rows.squared_norms(X)
    energy = float(np.sum(norms2 if weights is None else norms2 * np.asarray(weights, dtype=np.float64)))
    rest = max(energy - float(s.sum()), 0.0)
    tail = power_tail(float(s[-1]), rest, rmax - top) if rest > 0 else np.zeros(rmax - top)
    Xt, X0t = rows.times(X, U), X0 @ U
    xc2 = np.maximum(norms2 - np.einsum("ij,ij->i", Xt, Xt), 0.0)
    x0c = rows.times(X, X0.T).T - X0t @ Xt.T
    null2 = np.maximum(np.sum(X0 * X0, axis=1) - np.sum(X0t * X0t, axis=1), 0.0)
    order = np.argsort(s)                                   # ascending, like the exact bases
    return Basis(s[order], Xt[:, order], X0t[:, order], null2, p, rmax, U[:, order], tail=tail, X=X,
                 xc2=xc2, x0c=x0c)


def ridge_influences(basis: Basis, g, w, lam: float):
    """IF, NS (T x n) and the leverages h_i = x_i^T H^{-1} x_i of the ridge GLM with curvatures w,
    H = X^T diag(w) X + lam I, in the eigenbasis of X^T X (exact: x_i lies in its span, and H^{-1}
    maps the span to itself): IF_0i = -g_i x0^T H^{-1} x_i, NS_0i = IF_0i / (1 - w_i h_i). Cost
    n r^2 (the r x r Hessian and X~ L^-T) plus r^3/3."""
    Xt = basis.Xt
    Ht = (Xt.T * w) @ Xt + lam * np.eye(Xt.shape[1])
    C = np.linalg.cholesky(Ht)
    from scipy.linalg import solve_triangular

    Z = solve_triangular(C, np.concatenate([basis.X0t, Xt]).T, lower=True)     # C^{-1} [X0t; Xt]^T
    T = basis.X0t.shape[0]
    IF = -(Z[:, :T].T @ Z[:, T:]) * g
    h = np.sum(Z[:, T:] ** 2, axis=0)
    return IF, IF / (1.0 - w * h), h


@dataclass(frozen=True)
class RidgeFactor:
    """IF, NS (T x n) and leverages h (n,) of the ridge GLM computed in the feature coordinates
    (`ridge_influences_direct`), with the Cholesky factor C of H = X^T diag(w) X + lam I."""

    IF: np.ndarray
    NS: np.ndarray
    h: np.ndarray
    C: np.ndarray

    def solve(self, V) -> np.ndarray:
        """H^{-1} V (2 p^2 flops per column)."""
        from scipy.linalg import cho_solve

        return cho_solve((self.C, True), V)

    def effective_dimension(self, lam: float, columns: int = 2048) -> float:
        """d_eff = tr(H^{-1} X^T diag(w) X) = p - lam tr(H^{-1}), tr(H^{-1}) = ||C^-1||_F^2 (p^3 / 3
        flops, by blocks of columns of C^-1: p x `columns` memory)."""
        from scipy.linalg import solve_triangular

        p = self.C.shape[0]
        total = 0.0
        for j in range(0, p, columns):
            E = np.zeros((p, min(columns, p - j)))
            E[np.arange(j, j + E.shape[1]), np.arange(E.shape[1])] = 1.0
            Z = solve_triangular(self.C, E, lower=True)
            total += float(np.sum(Z * Z))
        return float(p - lam * total)


def ridge_influences_direct(X, X0, g, w, lam: float, *, block_bytes: int | None = None) -> RidgeFactor:
    """IF, NS and the leverages of `ridge_influences` without an eigenbasis, for p <= n features
    too many for one (the top-eigenpair path): H = sum over row blocks of (B diag(w)^1/2)^T (.)
    + lam I (n p^2 / 2 flops), its Cholesky factor C (p^3 / 3), then per block Z = C^-1 B^T
    (n p^2 / 2): h_i = ||Z_i||^2, IF_0i = -g_i (C^-1 x0)^T Z_i, NS = IF / (1 - w_i h_i). X is read
    by row blocks (`theory.rows`: an array, a memory map or `Rows`, float32 or float64)."""
    from scipy.linalg import solve_triangular

    from . import rows

    n, p = X.shape
    g, w = np.asarray(g, dtype=np.float64), np.asarray(w, dtype=np.float64)
    kw = {} if block_bytes is None else dict(block_bytes=block_bytes)
    H = rows.gram(X, w)
    H[np.diag_indices(p)] += lam
    C = np.linalg.cholesky(H)
    del H
    Z0 = solve_triangular(C, np.asarray(X0, dtype=np.float64).T, lower=True)           # p x T
    IF, h = np.empty((Z0.shape[1], n)), np.empty(n)
    for i, B in rows.blocks(X, **kw):
        Z = solve_triangular(C, B.T, lower=True)
        h[i:i + B.shape[0]] = np.sum(Z * Z, axis=0)
        IF[:, i:i + B.shape[0]] = -(Z0.T @ Z) * g[i:i + B.shape[0]]
    return RidgeFactor(IF, IF / (1.0 - w * h), h, C)


def hessian_effective_dimension(basis: Basis, w, lam: float) -> float:
    """d_eff = tr(H^{-1} X^T diag(w) X) = sum_j s_w,j/(s_w,j + lam): the directions the Hessian keeps."""
    Xt = basis.Xt
    Ht = (Xt.T * w) @ Xt
    ev = np.clip(np.linalg.eigvalsh(Ht), 0.0, None)
    return float(np.sum(ev / (ev + lam)))


# ------------------------------------------------------------------------------ the sketch
class Sketch(NamedTuple):
    """(C1)-(C2) of a Gram with eigenvalues s for projection size k and ridge lamT: the effective
    ridge mu, r_j = 1/(s_j + mu) on the eigenbasis, r_null = 1/mu off it, c = mu^2/(k - df2),
    and the degrees of freedom df1 = tr G R, df2 = tr G^2 R^2. mu = 0, c = 0 is the exact case
    k = p = rank with lamT = 0 (then K = G^{-1} for every P)."""

    mu: float
    r: np.ndarray
    r_null: float
    c: float
    df1: float
    df2: float
    rho1: float = 0.0        # the tail model's scalars (`top_eigenbasis`); 0 without a tail
    rho2: float = 0.0


def _df(s, mu):
    return float(np.sum(s / (s + mu))), float(np.sum((s / (s + mu)) ** 2))


def effective_ridge(s, k: int, lam_trak: float, rank: int, p: int) -> float:
    """mu of (C1): the root of mu (1 - df1(mu)/k) = lamT above the root mu0 of df1 = k (mu0 = 0
    when k >= rank). f(mu) = mu (1 - df1/k) has f' = 1 - df2/k, negative up to mu0 and rising to 1,
    so the root is unique on (mu0, lamT + tr G/k]. Raises EstimatorDoesNotExistError for lamT = 0
    with k >= rank (the sketched Gram is singular), except k = p = rank (exact, mu = 0)."""
    from .solvers import bracket_root

    s = np.asarray(s, float)
    if lam_trak == 0.0:
        if k == p == rank:
            return 0.0
        if k >= rank:
            raise EstimatorDoesNotExistError(
                f"with lam_trak = 0 the sketched Gram P^T G P is singular for k = {k} >= rank {rank} "
                "of the features (k = p = rank excepted): use k < rank or lam_trak > 0.")
    mu0 = 0.0
    if k < rank:
        f0 = lambda mu: _df(s, mu)[0] - k  # noqa: E731
        mu0 = bracket_root(f0, 0.0, float(np.max(s)) * rank / max(k, 1) + 1.0, sign_at_lo=1, grow=4.0)
    if lam_trak == 0.0:
        return mu0
    f = lambda mu: mu * (1.0 - _df(s, mu)[0] / k) - lam_trak  # noqa: E731
    return bracket_root(f, mu0, lam_trak + float(np.sum(s)) / k, sign_at_lo=-1)


def sum_sketch(basis: Basis, k: int) -> Sketch:
    """The kernel P P^T (gradient similarity): E P P^T = I, so R = I (r = 1 everywhere), and for Gaussian P the
    covariance of its bilinear forms is exactly (1/k)[(u.u')(v.v') + (u.v')(v.u')]: c = 1/k."""
    tail = 1.0 if basis.tail is not None else 0.0
    return Sketch(math.inf, np.ones_like(basis.s), 1.0, 1.0 / k, math.nan, math.nan, tail, tail)


def sketch(basis: Basis, k: int, lam_trak: float) -> Sketch:
    """`Sketch` of the basis's Gram for projection size k and ridge lamT (with a tail model, the
    degrees of freedom and mu count the modelled tail eigenvalues too)."""
    spectrum = basis.s if basis.tail is None else np.concatenate([basis.s, basis.tail])
    mu = effective_ridge(spectrum, k, lam_trak, basis.rank, basis.p)
    if mu == 0.0:
        if basis.tail is not None:
            raise EstimatorDoesNotExistError("k = p = rank with lam_trak = 0 needs the exact eigenbasis (top=None).")
        s = basis.s
        return Sketch(0.0, 1.0 / s, math.inf, 0.0, float(basis.rank), float(basis.rank))
    df1, df2 = _df(spectrum, mu)
    rho1 = rho2 = 0.0
    if basis.tail is not None and basis.tail.sum() > 0:
        t = basis.tail
        rho1, rho2 = float(np.sum(t / (t + mu)) / t.sum()), float(np.sum(t / (t + mu) ** 2) / t.sum())
    return Sketch(mu, 1.0 / (basis.s + mu), 1.0 / mu, mu * mu / (k - df2), df1, df2, rho1, rho2)


# ------------------------------------------------------------------------------ the truth
class Truth(NamedTuple):
    """Per test row: the truth L (T x n), centred (Lc), and its centred average ranks (ranks) with
    their norms."""

    L: np.ndarray
    Lc: np.ndarray
    ranks: np.ndarray
    norm: np.ndarray        # ||L||
    norm_c: np.ndarray      # ||Lc||
    norm_ranks: np.ndarray  # ||ranks||


def prepare_truth(L) -> Truth:
    from scipy.stats import rankdata

    L = np.asarray(L, dtype=np.float64)
    Lc = L - L.mean(axis=1, keepdims=True)
    ranks = rankdata(L, axis=1) - (L.shape[1] + 1) / 2.0
    return Truth(L, Lc, ranks, np.linalg.norm(L, axis=1), np.linalg.norm(Lc, axis=1),
                 np.linalg.norm(ranks, axis=1))


# --------------------------------------------------------------------------- the score law
class ScoreLaw(NamedTuple):
    """The Gaussian law of one estimator's scores on every test row (module docstring): weights
    a_i, means m (T x n), b (T x n), A (T,), the fluctuation constant c (one sketch) and the
    kernel (basis, sketch)."""

    weights: np.ndarray
    mean: np.ndarray
    b: np.ndarray
    A: np.ndarray
    c: float
    basis: Basis
    kern: Sketch


def leverage(basis: Basis, kern: Sketch, power: int = 1) -> np.ndarray:
    """h_i = x_i^T R x_i (the equivalent of x_i^T K x_i), or x_i^T R^2 x_i with power = 2: (n,)."""
    h = _squares(basis) @ (kern.r ** power)
    if basis.tail is not None:
        h = h + (kern.rho1 if power == 1 else kern.rho2) * basis.xc2
    return h


def _squares(basis: Basis) -> np.ndarray:
    """Xt * Xt, computed once per basis (n x r)."""
    if basis.sq is None:
        object.__setattr__(basis, "sq", basis.Xt * basis.Xt)
    return basis.sq


def score_law(basis: Basis, kern: Sketch, weights, means: bool = True) -> ScoreLaw:
    """m_i = -a_i x0^T R x_i, b_i = a_i x0^T R^2 x_i, A = x0^T R^2 x0 (r_null^2 off the basis).
    means=False leaves m and b out (None): the closed forms of fixed weights do not need them."""
    X0t, r = basis.X0t, kern.r
    T = X0t.shape[0]
    mean = b = None
    if means:
        both = basis.Xt @ np.concatenate([(X0t * r).T, (X0t * r * r).T], axis=1)     # n x 2T
        mR, mR2 = both[:, :T].T, both[:, T:].T
        if basis.tail is not None:             # off span(U): the tail model's scalars
            mR, mR2 = mR + kern.rho1 * basis.x0c, mR2 + kern.rho2 * basis.x0c
        mean, b = -mR * weights, mR2 * weights
    if basis.tail is not None:
        off = kern.rho2 * basis.null2
    else:
        off = (0.0 if not np.isfinite(kern.r_null) else kern.r_null ** 2) * basis.null2
    A = np.sum(X0t * X0t * r * r, axis=1) + off
    return ScoreLaw(weights, mean, b, A, kern.c, basis, kern)


# -------------------------------------------------------------------- closed-form moments
class _Grams(NamedTuple):
    """Weighted Grams of the basis for weights a: BI = Xt^T diag(a^2) Xt, BJ = Xt^T diag(a) J
    diag(a) Xt, and the truth's projections uL = Xt^T (a * L^T), uLc = Xt^T (a * Lc^T) (r x T)."""

    BI: np.ndarray
    BJ: np.ndarray
    uL: np.ndarray
    uLc: np.ndarray
    sa: np.ndarray      # Xt^T a (BJ = BI - sa sa^T / n)
    n: int
    BI2: np.ndarray     # BI * BI and BJ * BJ (elementwise): tr((F^T P F)^2) = (r^2)^T (B * B) r^2
    BJ2: np.ndarray


def sub_uLc(grams: _Grams, truth: Truth, rows) -> np.ndarray:
    """uLc of a subset of the truth's rows: Xt^T (a * Lc^T) = uL - sa mean(L) (the centring per row)."""
    return grams.uL[:, rows] - np.outer(grams.sa, truth.L[rows].mean(axis=1))


def _grams(basis: Basis, weights, truth: Truth) -> _Grams:
    Xa = basis.Xt * weights[:, None]
    BI = Xa.T @ Xa
    sa = Xa.sum(axis=0)
    BJ = BI - np.outer(sa, sa) / Xa.shape[0]
    return _Grams(BI, BJ, Xa.T @ truth.L.T, Xa.T @ truth.Lc.T, sa, Xa.shape[0], BI * BI, BJ * BJ)


def closed_form_moments(law: ScoreLaw, grams: _Grams, truth: Truth) -> dict:
    """The M-independent Gaussian moments of the module docstring, per test row, for the centring
    P = J (Pearson) and P = I (scale, rel_error): inner products of m (mean), b and the truth l with
    P, and of F^T P (.) (all through the r x r Grams; no n-vector is formed)."""
    r = law.kern.r
    u1, u2 = law.basis.X0t * r, law.basis.X0t * r * r      # T x r: R x0 and R^2 x0 in the basis
    out = {"A": law.A, "c": law.c}
    BIu1, BIu2 = u1 @ grams.BI, u2 @ grams.BI              # B symmetric: rows are (B u)^T
    sa = grams.sa
    r2 = r * r
    for P, B, B2, uv, nu in (("J", grams.BJ, grams.BJ2, grams.uLc.T, truth.Lc),
                             ("I", grams.BI, grams.BI2, grams.uL.T, truth.L)):
        if P == "I":
            Bu1, Bu2 = BIu1, BIu2
        else:              # BJ = BI - sa sa^T / n
            Bu1, Bu2 = BIu1 - np.outer(u1 @ sa, sa) / grams.n, BIu2 - np.outer(u2 @ sa, sa) / grams.n
        Fl, Fm, Fb = r * uv, -r * Bu1, r * Bu2             # F^T P l, F^T P m, F^T P b
        out[P] = dict(mm=np.sum(u1 * Bu1, axis=1), ml=-np.sum(u1 * uv, axis=1), ll=np.sum(nu * nu, axis=1),
                      bb=np.sum(u2 * Bu2, axis=1), bm=-np.sum(u2 * Bu1, axis=1), bl=np.sum(u2 * uv, axis=1),
                      FlFm=np.sum(Fl * Fm, axis=1), FmFm=np.sum(Fm * Fm, axis=1), FbFb=np.sum(Fb * Fb, axis=1),
                      FlFl=np.sum(Fl * Fl, axis=1), trF=float(r2 @ np.diagonal(B)), trF2=float(r2 @ (B2 @ r2)))
    return out


class TailProducts(NamedTuple):
    """The products with the rows that the tail model needs for fixed weights a, computed once:
    E = X^T diag(a^2) X~ (p x r), E0 = X^T diag(a^2) X0_perp^T (p x T, x0c = X0_perp X_perp^T the
    test rows' products off span(U)), EL = X^T (a L^T) (p x T) and e1 = X^T a (p,). Then
    X^T (a [L, m, b, 1]) = [EL, -(E (R X0~)^T + rho1 E0), E (R^2 X0~)^T + rho2 E0, e1] at every
    (k, lamT) for p r T flops instead of n p 3T (`sampled_moments`); and X_perp e1_perp (n,), the
    tail's part of F F^T 1 up to the scalar rho2 (no pass over the rows per (k, lamT))."""

    E: np.ndarray
    E0: np.ndarray
    EL: np.ndarray
    e1: np.ndarray
    Xe1: np.ndarray


def tail_products(basis: Basis, weights, truth: Truth) -> TailProducts:
    from . import rows

    a = weights
    a2 = a * a
    r, T = basis.Xt.shape[1], truth.L.shape[0]
    prod = rows.t_times(basis.X, np.concatenate([a2[:, None] * basis.Xt, a2[:, None] * basis.x0c.T,
                                                 a[:, None] * truth.L.T, a[:, None]], axis=1))     # one pass
    e1 = prod[:, -1]
    e1_perp = e1 - basis.U @ (basis.U.T @ e1)
    Xe1 = rows.times(basis.X, e1_perp) - basis.Xt @ (basis.U.T @ e1_perp)
    return TailProducts(prod[:, :r], prod[:, r:r + T], prod[:, r + T:r + 2 * T], e1, Xe1)


def _rows_products(law: ScoreLaw, V, tp: TailProducts | None) -> np.ndarray:
    """X^T V for V = a [L, m, b, 1] (n x (3T + 1)): from `TailProducts` when given (fixed weights),
    else directly (n p (3T + 1) flops)."""
    if tp is None:
        from . import rows

        return rows.t_times(law.basis.X, V)
    u1, u2 = law.basis.X0t * law.kern.r, law.basis.X0t * law.kern.r ** 2
    return np.concatenate([tp.EL, -(tp.E @ u1.T + law.kern.rho1 * tp.E0), tp.E @ u2.T + law.kern.rho2 * tp.E0,
                           tp.e1[:, None]], axis=1)


def sampled_moments(law: ScoreLaw, truth: Truth, Qii, Qd, pairs, tail_prods: TailProducts | None = None) -> dict:
    """The moments of `closed_form_moments` computed from the n-vectors m, b and the truth (one
    product X~^T (a * [L, m, b]), n r 3T flops), for weights that change with the kernel (the
    leverage variants), where the r x r Grams would cost n r^2 per (k, lamT), and for the tail
    model (its products with the rows off span(U) from `tail_products` when the weights are fixed).
    The one double sum, tr((F F^T)^2) = sum_ij a_i^2 a_j^2 Q_ij^2 (in the second-order terms
    only), is taken over the pairs of `pair_products` (exact with all shifts, otherwise an
    unbiased estimate)."""
    a, Xt, r = law.weights, law.basis.Xt, law.kern.r
    n, T = Xt.shape[0], truth.L.shape[0]
    m, b, L = law.mean, law.b, truth.L
    V = a[:, None] * np.concatenate([L.T, m.T, b.T, np.ones((n, 1))], axis=1)          # n x (3T + 1)
    top = Xt.T @ V
    proj = (top.T * r)                                                                  # F^T (.) in the basis
    if law.basis.tail is not None:     # off span(U): sqrt(rho2) X_perp^T (.), appended (tail model)
        perp = _rows_products(law, V, tail_prods) - law.basis.U @ top
        proj = np.concatenate([proj, math.sqrt(law.kern.rho2) * perp.T], axis=1)
    FL, Fm, Fb, F1 = proj[:T], proj[T:2 * T], proj[2 * T:3 * T], proj[3 * T]
    aa = a * a
    ap = aa[pairs.perm]
    off = sum(float(np.sum(ap * np.roll(ap, -int(d)) * q * q)) for d, q in zip(pairs.shifts, Qd))
    trFF2 = float(np.sum(aa * aa * Qii * Qii)) + (n - 1) * off / len(pairs.shifts)       # tr((F F^T)^2)
    F1sq = float(F1 @ F1)
    FFt1 = a * (Xt @ (r * F1[:r.size]))                                                 # F F^T 1
    if law.basis.tail is not None and tail_prods is not None:    # F1 off span(U) = sqrt(rho2) e1_perp
        FFt1 = FFt1 + a * law.kern.rho2 * tail_prods.Xe1
    elif law.basis.tail is not None:
        from . import rows

        FFt1 = FFt1 + a * math.sqrt(law.kern.rho2) * (rows.times(law.basis.X, F1[r.size:])
                                                      - Xt @ (law.basis.U.T @ F1[r.size:]))
    out = {"A": law.A, "c": law.c}
    for P in ("J", "I"):
        if P == "J":       # centre every n-vector; F^T J v = F^T v - mean(v) F^T 1
            mv, bv, lv = m - m.mean(1, keepdims=True), b - b.mean(1, keepdims=True), truth.Lc
            Fl, Fmp, Fbp = FL - L.mean(1)[:, None] * F1, Fm - m.mean(1)[:, None] * F1, Fb - b.mean(1)[:, None] * F1
            trF = float(np.sum(aa * Qii)) - F1sq / n
            trF2 = trFF2 - 2.0 / n * float(FFt1 @ FFt1) + F1sq**2 / n**2
        else:
            mv, bv, lv, Fl, Fmp, Fbp = m, b, L, FL, Fm, Fb
            trF, trF2 = float(np.sum(aa * Qii)), trFF2
        out[P] = dict(mm=np.sum(mv * mv, 1), ml=np.sum(mv * lv, 1), ll=np.sum(lv * lv, 1), bb=np.sum(bv * bv, 1),
                      bm=np.sum(bv * mv, 1), bl=np.sum(bv * lv, 1), FlFm=np.sum(Fl * Fmp, 1),
                      FmFm=np.sum(Fmp * Fmp, 1), FbFb=np.sum(Fbp * Fbp, 1), FlFl=np.sum(Fl * Fl, 1),
                      trF=trF, trF2=trF2)
    return out


def closed_form_metrics(mom: dict, truth: Truth, n_proj: int) -> dict:
    """Pearson, scale and relative error per test row at M = n_proj by the second-order delta
    method of the module docstring (Sigma = (c/M)[A F F^T + b b^T])."""
    cM, A = mom["c"] / n_proj, mom["A"]
    out = {}
    for P in ("J", "I"):
        o = mom[P]
        trS = cM * (A * o["trF"] + o["bb"])                                          # tr(P Sigma)
        trS2 = cM**2 * (A**2 * o["trF2"] + 2 * A * o["FbFb"] + o["bb"] ** 2)        # tr((P Sigma)^2)
        N, Q = o["ml"], o["mm"] + trS
        cov = 2 * cM * (A * o["FlFm"] + o["bl"] * o["bm"])                           # Cov(<s, l>, s^T P s)
        varQ = 4 * cM * (A * o["FmFm"] + o["bm"] ** 2) + 2 * trS2
        if P == "J":       # Pearson: N = <s, Lc>, Q = s^T J s
            out["pearson"] = (N / np.sqrt(Q) * (1 + 3 * varQ / (8 * Q * Q)) - cov / (2 * Q**1.5)) / truth.norm_c
        else:              # scale: N = <s, L>, Q = s^T s;  rel_error: Q = ||s - L||^2
            out["scale"] = N / Q * (1 + varQ / (Q * Q)) - cov / (Q * Q)
            # F^T (m - l) = Fm - Fl, b^T (m - l) = bm - bl
            FdFd = o["FmFm"] - 2 * o["FlFm"] + o["FlFl"]
            Qe = o["mm"] - 2 * o["ml"] + o["ll"] + trS
            varQe = 4 * cM * (A * FdFd + (o["bm"] - o["bl"]) ** 2) + 2 * trS2
            out["rel_error"] = np.sqrt(Qe) * (1 - varQe / (8 * Qe * Qe)) / truth.norm
    return out


# ---------------------------------------------------------------------------- Spearman
class Pairs(NamedTuple):
    """The pairs (i, j) of the Spearman sum: positions i and i + d (mod n) of the row order `perm`
    for the shifts d = 1..J. Exact: perm the identity and every shift 1..n-1 (all ordered pairs).
    Sampled: perm uniformly random, so that for every d the pairs are uniform over distinct pairs
    and the average over them is unbiased."""

    perm: np.ndarray
    shifts: np.ndarray
    exact: bool


def sample_pairs(n: int, pairs: int, key) -> Pairs:
    """All n (n - 1) ordered pairs when that is <= `pairs`, else a random order (jax.random, `key`)
    and J = pairs // n (>= 2) shifts."""
    if n * (n - 1) <= pairs:
        return Pairs(np.arange(n), np.arange(1, n), True)
    import jax

    J = max(2, min(n - 1, pairs // n))
    return Pairs(np.asarray(jax.random.permutation(key, n)), np.arange(1, J + 1), False)


PAIR_BLOCK = 32      # rows per block of `pair_products` (a 32 x (32 + J) product per block)


def _banded_pair_products(A, B, pairs: Pairs, scale=None) -> np.ndarray:
    """(J, n): row q, position i holds A_perm[i] diag(scale) B_perm[(i + q + 1) mod n]^T (scale default 1), by blocks of PAIR_BLOCK
    consecutive positions against the window of their partners (one small matrix product per block,
    ~3x faster than row-wise dot products)."""
    n, J = A.shape[0], len(pairs.shifts)
    out = np.empty((J, n))
    band = np.arange(PAIR_BLOCK)[:, None] + np.arange(J)[None, :]
    for i0 in range(0, n, PAIR_BLOCK):
        b = min(PAIR_BLOCK, n - i0)
        rows = np.asarray(A[pairs.perm[i0:i0 + b]], dtype=np.float64)       # (memory maps: a gather, in float64)
        partners = np.asarray(B[pairs.perm[np.arange(i0 + 1, i0 + b + J) % n]], dtype=np.float64)
        blk = (rows if scale is None else rows * scale) @ partners.T                           # b x (b+J-1)
        out[:, i0:i0 + b] = np.take_along_axis(blk, band[:b], axis=1).T
    return out


def pair_perp_products(basis: Basis, pairs: Pairs) -> np.ndarray:
    """x_i_perp . x_j_perp (off span(U)) for the pairs, (J, n): the tail model's part of Q, which
    does not depend on the kernel (computed once per model and pairs; n J p flops)."""
    return _banded_pair_products(basis.X, basis.X, pairs) - _banded_pair_products(basis.Xt, basis.Xt, pairs)


def pair_products(basis: Basis, kern: Sketch, pairs: Pairs, perp=None) -> tuple[np.ndarray, np.ndarray]:
    """Q_ij = x_i^T R^2 x_j on the diagonal (n,, original order) and for the pairs (J, n): row q,
    position i holds Q between rows perm[i] and perm[(i + q + 1) mod n]. With a tail model,
    Q_ij adds rho2 x_i_perp . x_j_perp (`perp`, from `pair_perp_products` when given)."""
    Qd = _banded_pair_products(basis.Xt, basis.Xt, pairs, kern.r * kern.r)
    if basis.tail is not None:
        Qd += kern.rho2 * (pair_perp_products(basis, pairs) if perp is None else perp)
    return leverage(basis, kern, 2), Qd


def _pair_sums_fn():
    import jax
    import jax.numpy as jnp

    @jax.jit
    def pair_sums(mean, b, A, a, Qii, Qd, shifts, ranks, cM):
        inv_sd = jax.lax.rsqrt(jnp.maximum(cM, TINY))
        """sum_i ranks_ti P(s_t,i+d < s_ti) for each shift d, row t and M: (J, T, nM). Laid out
        n x T, partners by a dynamic slice of the doubled arrays (6x faster than jnp.roll + einsum)."""
        n = mean.shape[1]
        mT, bT, rT = mean.T, b.T, ranks.T
        m2, b2 = jnp.concatenate([mT, mT]), jnp.concatenate([bT, bT])
        a2, Q2 = jnp.concatenate([a, a]), jnp.concatenate([Qii, Qii])

        def one(carry, x):
            d, q = x
            mj, bj = jax.lax.dynamic_slice_in_dim(m2, d, n), jax.lax.dynamic_slice_in_dim(b2, d, n)
            aj, Qjj = jax.lax.dynamic_slice_in_dim(a2, d, n), jax.lax.dynamic_slice_in_dim(Q2, d, n)
            D = a * a * Qii + aj * aj * Qjj - 2.0 * a * aj * q            # ||F_i - F_j||^2
            var1 = D[:, None] * A[None, :] + (bT - bj) ** 2                 # Var(e_i - e_j) / c, n x T
            # Phi(dm/sd) = (1 + erf(z))/2 (absolute error ~1e-16), z = dm/sqrt(2 c/M var1). The smallest
            # normal float keeps sd = 0 finite: Phi is then the step 1{dm > 0} (1/2 at a tie), as for a
            # fixed estimator. (No jnp.where: it stops XLA from vectorizing erf, 7x slower.)
            z1 = (mT - mj) * jax.lax.rsqrt(2.0 * var1 + TINY)
            out = []
            for j in range(cM.shape[0]):
                Phi = 0.5 + 0.5 * jax.lax.erf(z1 * inv_sd[j])
                out.append(jnp.sum(Phi * rT, axis=0))
            return carry, jnp.stack(out, axis=-1)
        return jax.lax.scan(one, 0, (shifts, Qd))[1]
    return pair_sums


TINY = float(np.finfo(np.float64).tiny)
_PAIR_SUMS = []


def spearman_pair_sums(mean, b, A, a, Qii, Qd, shifts, ranks, cM):
    if not _PAIR_SUMS:
        _PAIR_SUMS.append(_pair_sums_fn())
    import jax

    args = [jax.device_put(np.asarray(v, dtype=np.float64)) for v in (mean, b, A, a, Qii, Qd)]
    return np.asarray(_PAIR_SUMS[0](*args, jax.device_put(np.asarray(shifts, dtype=np.int64)),
                                    jax.device_put(ranks), jax.device_put(np.asarray(cM, dtype=np.float64))))


def _spearman(laws: list, truth: Truth, n_projs, pairs: Pairs, pair_q) -> list:
    """E[Spearman] of each law (per test row, per M) and the standard error of the row mean from
    sampling the pairs (0 when exact): [(rows T x nM, error nM)]. pair_q[j] = (Qii, Qd) of law j."""
    n = truth.L.shape[1]
    norm = truth.norm_ranks * math.sqrt(n * (n * n - 1) / 12.0)
    Ms = np.asarray(n_projs, dtype=np.float64)
    perm = pairs.perm
    out = []
    for law, (Qii, Qd) in zip(laws, pair_q):
        sums = spearman_pair_sums(law.mean[:, perm], law.b[:, perm], law.A, law.weights[perm], Qii[perm], Qd,
                                  pairs.shifts, truth.ranks[:, perm], law.c / Ms)   # (J, T, nM)
        per_shift = (n - 1) * sums / norm[None, :, None]
        rows = per_shift.mean(axis=0)                                                # T x nM
        J = len(pairs.shifts)
        err = np.zeros(len(Ms)) if pairs.exact else per_shift.mean(axis=1).std(axis=0, ddof=1) / math.sqrt(J)
        out.append((rows, err))
    return out


# ------------------------------------------------------------------------------- the model
def _summary(rows) -> dict:
    rows = np.asarray(rows, dtype=np.float64)
    T = rows.size
    se = float(rows.std(ddof=1) / math.sqrt(T)) if T > 1 else 0.0
    return {"mean": float(rows.mean()), "se": se, "rows": rows.tolist()}


def _check_array(name, a, ndim):
    try:
        a = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a numeric array.") from None
    if a.ndim != ndim:
        raise InvalidParameterError(f"{name} must be {ndim}-D, got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise InvalidParameterError(f"{name} contains non-finite values (NaN or inf).")
    return a


def _is_streamed(X) -> bool:
    from .rows import Rows

    return isinstance(X, (Rows, np.memmap))


def _check_streamed(X):
    """A memory map or `Rows` of the features, checked by row blocks and kept (not copied)."""
    from . import rows

    if len(X.shape) != 2 or np.dtype(X.dtype).kind != "f":
        raise InvalidParameterError(f"X must be a 2-D float array, got shape {X.shape} and dtype {X.dtype}.")
    if not getattr(X, "finite", False):          # `Rows` checked by their maker need no second pass
        for _, B in rows.blocks(X):
            if not np.all(np.isfinite(B)):
                raise InvalidParameterError("X contains non-finite values (NaN or inf).")
    return X


class ConditionalModel:
    """The data-dependent part of the conditional theory, computed once: the eigenbases of X^T X
    (and X^T diag(w) X), the truth's ranks and the Grams of the closed forms. `predict` then
    evaluates any (k, lamT, M). Arrays in, predictions out: no fitting (g, w come from the user's fit)."""

    def __init__(self, X, g, X0, truth, *, w=None, lam=None, bases=None, top: int | None = None, seed: int = 0):
        X = _check_streamed(X) if top is not None and _is_streamed(X) else _check_array("X", X, 2)
        n, p = X.shape
        if n < 2 or p < 1:
            raise InvalidParameterError(f"X must have at least 2 rows and 1 column, got {n} x {p}.")
        g = _check_array("g", g, 1)
        if g.shape[0] != n:
            raise InvalidParameterError(f"g has length {g.shape[0]} but X has {n} rows.")
        X0 = _check_array("X0", X0, 2)
        if X0.shape[1] != p:
            raise InvalidParameterError(f"X0 has {X0.shape[1]} columns but X has {p}.")
        L = _check_array("truth", truth, 2)
        if L.shape != (X0.shape[0], n):
            raise InvalidParameterError(f"truth must be (T, n) = ({X0.shape[0]}, {n}), got {L.shape}.")
        flat = np.flatnonzero(np.ptp(L, axis=1) == 0)
        if flat.size:
            raise InvalidParameterError(f"truth row {int(flat[0])} is constant: its correlation with any "
                                        "estimator is undefined.")
        if not np.any(g != 0):
            raise InvalidParameterError("g is zero everywhere: every influence is zero.")
        if w is not None:
            w = _check_array("w", w, 1)
            if w.shape[0] != n:
                raise InvalidParameterError(f"w has length {w.shape[0]} but X has {n} rows.")
            if np.any(w < 0):
                raise InvalidParameterError("w must be >= 0 (the loss's second derivatives).")
        if lam is not None:
            lam = check_real("lam", lam, lo=0.0, lo_open=True)
            if w is None:
                raise InvalidParameterError("lam (for IF and NS) needs the curvatures w.")
        self.n, self.p, self.T = n, p, X0.shape[0]
        self.g, self.w, self.lam = g, w, lam
        self.truth = prepare_truth(L)
        if top is not None:
            top = check_int("top", top, lo=1)
            if lam is not None:
                raise InvalidParameterError("IF and NS (lam) need the exact eigenbasis: leave top out.")
        self.bases = dict(bases or {})          # eigenbases computed by the caller (`eigenbasis`)
        if "plain" not in self.bases:
            self.bases["plain"] = eigenbasis(X, X0, top=top, seed=seed)
        if w is not None and "weighted" not in self.bases:
            self.bases["weighted"] = eigenbasis(X, X0, w, top=top, seed=seed)
        self._grams = {}

    def test_rows(self, rows) -> "ConditionalModel":
        """The same model restricted to some test rows (sharing the eigenbases; a cheaper model
        for scans whose cost grows with T)."""
        import copy
        from dataclasses import replace

        rows = np.asarray(rows)
        sub = copy.copy(self)
        sub.bases = {name: replace(b, X0t=b.X0t[rows], null2=b.null2[rows],
                                   x0c=None if b.x0c is None else b.x0c[rows]) for name, b in self.bases.items()}
        sub.truth = prepare_truth(self.truth.L[rows])
        # the products with the rows alone do not depend on the test rows: share them, restrict the rest
        sub.T, sub._grams = rows.size, {}
        for key, g in self._grams.items():
            if isinstance(g, _Grams):
                sub._grams[key] = g._replace(uL=g.uL[:, rows], uLc=sub_uLc(g, self.truth, rows))
            elif isinstance(g, TailProducts):
                sub._grams[key] = g._replace(E0=g.E0[:, rows], EL=g.EL[:, rows])
            elif key[0] in ("perp", "sum pairs"):
                sub._grams[key] = g
        return sub

    @property
    def rank(self) -> int:
        return self.bases["plain"].rank

    def available(self) -> tuple:
        """Estimators this model can predict (the weighted ones need w)."""
        return tuple(e for e, kern in CONDITIONAL_ESTIMATORS.items() if self._basis_name(kern) in self.bases)

    @staticmethod
    def _basis_name(kern: Kernel) -> str:
        """The eigenbasis a kernel works in (the sum kernel P P^T: the plain one, any basis of the rows)."""
        return "plain" if kern.gram == "sum" else kern.gram

    def _weights(self, name, kern_spec: Kernel, basis, kern) -> np.ndarray:
        if kern_spec.leverage is None:
            return self.g
        h = leverage(basis, kern)
        if kern_spec.leverage == "weighted":
            h = self.w * h
        if np.any(h >= 1.0):
            raise EstimatorDoesNotExistError(f"{name}: a leave-one-out factor 1 - h_i is <= 0 at this "
                                             "(k, lam_trak); the variant is undefined there.")
        return self.g / (1.0 - h)

    def _grams_for(self, key, basis, weights) -> _Grams:
        if key is None:
            return _grams(basis, weights, self.truth)
        if key not in self._grams:
            self._grams[key] = _grams(basis, weights, self.truth)
        return self._grams[key]

    def laws(self, k: int, lam_trak: float, estimators, means: bool = True) -> dict:
        """{name: ScoreLaw} at (k, lamT) for each name in `estimators` (`score_law`; the leverage
        variants always with their means)."""
        kerns, laws = {}, {}
        for name in estimators:
            spec = CONDITIONAL_ESTIMATORS[name]
            basis = self.bases[self._basis_name(spec)]
            if spec.gram not in kerns:
                kerns[spec.gram] = sum_sketch(basis, k) if spec.gram == "sum" else sketch(basis, k, lam_trak)
            kern = kerns[spec.gram]
            if spec.gram == "sum" and spec.leverage is None:
                # R = I: the law is the same at every (k, lamT) but for c = 1/k (computed once, with means)
                key = ("sum law", name)
                if key not in self._grams:
                    self._grams[key] = score_law(basis, kern, self.g, True)
                laws[name] = self._grams[key]._replace(c=kern.c, kern=kern)
                continue
            laws[name] = score_law(basis, kern, self._weights(name, spec, basis, kern),
                                   means or spec.leverage is not None)
        return laws

    def _pair_products(self, name, law, pairs, n_pairs: int, seed: int):
        """`pair_products` of one law, with what does not depend on (k, lamT) computed once per model
        and pairs: the tail model's products off span(U), and all of Q for the sum kernel (R = I)."""
        spec = CONDITIONAL_ESTIMATORS[name]
        basis_name = self._basis_name(spec)
        perp = None
        if law.basis.tail is not None:
            key = ("perp", basis_name, n_pairs, seed)
            if key not in self._grams:
                self._grams[key] = pair_perp_products(law.basis, pairs)
            perp = self._grams[key]
        if spec.gram != "sum":
            return pair_products(law.basis, law.kern, pairs, perp)
        key = ("sum pairs", basis_name, n_pairs, seed)
        if key not in self._grams:
            self._grams[key] = pair_products(law.basis, law.kern, pairs, perp)
        return self._grams[key]

    def predict(self, k, lam_trak=0.0, n_proj=1, *, projection: str = "gaussian", estimators=None,
                pairs: int = DEFAULT_PAIRS, seed: int = 0, spearman: bool = True) -> dict:
        """Predictions at one (k, lamT) for one or several M (`n_proj`, int or sequence).
        spearman=False skips Spearman (None in the result) and, for fixed weights, every n-sized
        product: the closed forms alone cost T r^2 (a fast path for scans).

        Returns {"k", "lam_trak", "n_proj", "estimators": {name: {metric: {"mean", "se", "rows"}}}
        (a list over M when n_proj is a sequence), "constants": {mu, c, df1, df2 per Gram},
        "spearman_error"}: mean and s.e. over test rows; `spearman_error` is the standard error
        of the row-mean Spearman from sampling pairs (0 when exact)."""
        k = check_int("k", k, lo=1, hi=self.p)
        lam_trak = check_real("lam_trak", lam_trak, lo=0.0)
        if projection not in PROJECTIONS:
            raise InvalidParameterError(f"projection must be one of {', '.join(PROJECTIONS)}, got {projection!r}.")
        many = np.ndim(n_proj) > 0
        Ms = [check_int("n_proj", m, lo=1) for m in np.atleast_1d(n_proj).tolist()]
        if not Ms:
            raise InvalidParameterError("n_proj needs at least one value.")
        pairs = check_int("pairs", pairs, lo=1)
        names = list(self.available() if estimators is None else estimators)
        for name in names:
            if name not in CONDITIONAL_ESTIMATORS:
                raise InvalidParameterError(f"unknown estimator {name!r} (known: {', '.join(CONDITIONAL_ESTIMATORS)}).")
            if self._basis_name(CONDITIONAL_ESTIMATORS[name]) not in self.bases:
                raise InvalidParameterError(f"{name} needs the curvatures w.")
        tail = any(b.tail is not None for b in self.bases.values())
        laws = self.laws(k, lam_trak, names, means=spearman or tail)
        import jax

        n_pairs = pairs
        pairs = sample_pairs(self.n, pairs, jax.random.PRNGKey(seed))
        pq_cache = {}
        for name in names:
            kern = laws[name].kern
            if id(kern) not in pq_cache and (spearman or tail or CONDITIONAL_ESTIMATORS[name].leverage):
                pq_cache[id(kern)] = self._pair_products(name, laws[name], pairs, n_pairs, seed)
        if spearman:
            sp = _spearman([laws[nm] for nm in names], self.truth, Ms, pairs,
                           [pq_cache[id(laws[nm].kern)] for nm in names])
        else:
            sp = [(np.full((self.T, len(Ms)), np.nan), np.full(len(Ms), np.nan)) for _ in names]
        per_M = [{} for _ in Ms]
        sp_err = [{} for _ in Ms]
        for name, (rows, err) in zip(names, sp):
            spec = CONDITIONAL_ESTIMATORS[name]
            law = laws[name]
            sum_key = ("sum moments", name, n_pairs, seed)
            if spec.gram == "sum" and sum_key in self._grams:   # R = I: the same moments at every k but for c
                mom = dict(self._grams[sum_key], c=law.c)
            elif spec.leverage is None and law.basis.tail is None:   # weights fixed: r x r Grams once per model
                mom = closed_form_moments(law, self._grams_for((self._basis_name(spec), "g"), law.basis, law.weights),
                                          self.truth)
            else:                          # weights move with the kernel, or a tail model: from the n-vectors
                tp = None
                if spec.leverage is None:          # fixed weights with a tail model: its products once
                    key = ("tail", self._basis_name(spec), "g")
                    if key not in self._grams:
                        self._grams[key] = tail_products(law.basis, law.weights, self.truth)
                    tp = self._grams[key]
                mom = sampled_moments(law, self.truth, *pq_cache[id(law.kern)], pairs, tp)
            if spec.gram == "sum" and spec.leverage is None:
                self._grams[sum_key] = mom
            for j, M in enumerate(Ms):
                cf = closed_form_metrics(mom, self.truth, M)
                per_M[j][name] = {"pearson": _summary(cf["pearson"]),
                                  "spearman": _summary(rows[:, j]) if spearman else None,
                                  "rel_error": _summary(cf["rel_error"]), "scale": _summary(cf["scale"])}
                sp_err[j][name] = float(err[j]) if spearman else None
        constants = {}
        for name in names:
            kern = laws[name].kern
            constants[CONDITIONAL_ESTIMATORS[name].gram] = (
                dict(c=kern.c) if not math.isfinite(kern.mu) else dict(mu=kern.mu, c=kern.c, df1=kern.df1, df2=kern.df2))
        exact_est = self.exact_estimators() if self.lam is not None else {}
        points = []
        for j, M in enumerate(Ms):
            est = dict(per_M[j])
            est.update(exact_est)
            points.append({"k": k, "lam_trak": lam_trak, "n_proj": M, "projection": projection,
                           "estimators": est, "constants": constants, "spearman_error": sp_err[j],
                           "pairs": {"per_row": int(self.n * len(pairs.shifts)), "exact": bool(pairs.exact)}})
        return points if many else points[0]

    def exact_estimators(self) -> dict:
        """IF and NS on the data (no sketch): their metrics against the truth, exactly."""
        if "exact" not in self._grams:
            IF, NS, _ = ridge_influences(self.bases["plain"], self.g, self.w, self.lam)
            self._grams["exact"] = {"if": exact_metrics(IF, self.truth), "ns": exact_metrics(NS, self.truth)}
        return self._grams["exact"]


def exact_metrics(S, truth: Truth) -> dict:
    """Metrics of fixed scores S (T x n) against the truth."""
    from scipy.stats import rankdata

    Sc = S - S.mean(axis=1, keepdims=True)
    rs = rankdata(S, axis=1) - (S.shape[1] + 1) / 2.0
    pear = np.sum(Sc * truth.Lc, axis=1) / (np.linalg.norm(Sc, axis=1) * truth.norm_c)
    spear = np.sum(rs * truth.ranks, axis=1) / (np.linalg.norm(rs, axis=1) * truth.norm_ranks)
    rel = np.linalg.norm(S - truth.L, axis=1) / truth.norm
    scale = np.sum(S * truth.L, axis=1) / np.sum(S * S, axis=1)
    return {"pearson": _summary(pear), "spearman": _summary(spear), "rel_error": _summary(rel),
            "scale": _summary(scale)}


def predict_conditional(X, g, X0, truth, *, k, lam_trak=0.0, n_proj=1, projection: str = "gaussian",
                        w=None, lam=None, estimators=None, pairs: int = DEFAULT_PAIRS, seed: int = 0,
                        top: int | None = None):
    """TRAK's Pearson, Spearman, relative error and best-fit scale against `truth`, conditional on
    the data (X, g, X0): the projection is the only randomness (module docstring, docs/theory.md §11).

    k, lam_trak and n_proj may each be a number or a sequence; with all three numbers the result
    is one point {"k", "lam_trak", "n_proj", "estimators", "constants", "spearman_error"},
    otherwise {"curve": [points over k x lam_trak x n_proj]}. Estimators: "trak" always; "trak_w",
    "trak_lev", "trak_wlev" with the curvatures w; "if" and "ns" (exact, no sketch) with w and lam.
    Each metric is {"mean", "se" (over test rows), "rows"}. Spearman is the exact expectation under
    the Gaussian law (over all pairs, or an unbiased sample of `pairs` pairs per row, seeded by
    `seed`, its error in `spearman_error`); the other metrics are closed forms. top = r: the top r
    eigenpairs (randomized) and the tail model of `top_eigenbasis` instead of the exact eigenbasis,
    for features too large for it (then the moments come from the n-vectors and the pairs).
    Raises InvalidParameterError (bad input) or EstimatorDoesNotExistError (lam_trak = 0 with
    k >= rank)."""
    model = ConditionalModel(X, g, X0, truth, w=w, lam=lam, top=top, seed=seed)
    ks, lts = np.atleast_1d(k).tolist(), np.atleast_1d(lam_trak).tolist()
    if np.ndim(k) == 0 and np.ndim(lam_trak) == 0:
        return model.predict(k, lam_trak, n_proj, projection=projection, estimators=estimators,
                             pairs=pairs, seed=seed)
    curve = []
    Ms = list(np.atleast_1d(n_proj).tolist())
    for lt in lts:
        for kk in ks:
            curve.extend(model.predict(kk, lt, Ms, projection=projection, estimators=estimators,
                                       pairs=pairs, seed=seed))
    return {"curve": curve}
