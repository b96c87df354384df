r"""Population Spearman correlations of the TRAK and IF pairs of a discrete limit law (pure JAX).

(docs/theory.md §4.) Accuracy against the exact value for the given atoms: <= 5e-8 on the test
laws of the validation study (logistic, poisson, gaussian limit laws, rho in [0.1, 0.99]);
0.6-1.3 ms (TRAK) and 2-8 ms (IF) per call on 2 CPU cores at N = 2,000-50,000 atoms.

A law is a set of weighted atoms (g_j, t_j, omega_j), omega_j >= 0 (normalised here), with
sign(t_j) = sign(g_j) (true for t = g / (1 + c w), w >= 0).  U, V are standard normals with
correlation rho, independent of the atom.

    TRAK pair: (X, Y) = (g V, g U)          IF pair: (X, Y) = (t U, g U)

With F_X(x) = E_{g'} Phi(x/|g'|) and E[Phi(aU) Phi(bV)] = 1/4 + asin(ab rho/sqrt((1+a^2)(1+b^2)))/(2 pi):

    Spearman(TRAK) = (6/pi) E asin( rho S(g,g') S(g,g'') ),        S(a,b) = |a| / sqrt(a^2 + b^2)
    Spearman(IF)   = (6/pi) E asin( S(t,t') S(g,g'') ),            (t,g) one atom; t', g'' independent

Both only depend on l = log|g| (and log|t|) through S = sigma(l' - l), sigma(d) = (1 + e^{2d})^{-1/2},
which is analytic in the strip |Im d| < pi/2 and flat at +-infinity.  Atoms with g = 0 are kept
as a separate mass p0 (S(g, 0) = 1; an outer atom with g = 0 contributes 0).

Compression of a law of l = log|g| (`compress_log_abs`)
    1. moment-preserving binning: nb equal bins over [min l, max l], each bin replaced by its
       2-point Gauss rule (exact for cubics in the bin). (No clipping: deep on the separable side
       the law of log|g| is spread over hundreds of units and is bimodal, and clipping to
       mean +- 40 collapsed the large-|g| mode: IF's Spearman off by 0.007, logistic, n/p = 2,
       lam = 1e-6; 6e-4 without clipping, 5e-5 at K = 96);
       O(N) segment_sum.  Error ~ (bin width)^4 -- below 1e-11 at nb = 512 on all test laws.
    2. K-node Gauss rule of the binned measure (2 nb atoms) by the Stieltjes/Lanczos procedure
       (with local reorthogonalisation) + Golub-Welsch (eigh of the K x K Jacobi matrix).
       Converges geometrically in K (rate set by the analyticity strip of sigma and the spread
       of l): worst test law (logistic gamma=3, c=9.6, log|g| spread over ~50) 1e-6 / 3e-8 / 1e-9
       at K = 32 / 48 / 64; all other test laws <= 2e-11 at K = 48.  Default K = 48.

TRAK (`spearman_trak`):  (6/pi) sum_i w_i sum_{j,k} w_j w_k asin(rho S_ij S_ik) over the K Gauss
    nodes (+ the g = 0 node): K (K+1)(K+2)/2 evaluations (symmetry in j, k) of a polynomial asin,
    exact in (U, V).  Everything but the final fused asin-reduction is rho-independent, so
    jax.vmap over rho costs ~0.3 ms per extra rho.

IF (`spearman_if`): the K^3-per-atom form is too slow for a 2-D outer law, so the (U)-integral is
    kept as a 1-D quadrature that separates the two inner expectations:

        Spearman(IF) = 3 E_atom[ sign(tg) E_nu[ Psi_X(log|t| + nu) Psi_Y(log|g| + nu) ] ],
        Psi_X(lam) = E_{t'} erf(e^{lam - log|t'|}/sqrt 2)   (= 2 F_X(e^lam) - 1),   nu = log|U|

    (nu has density sqrt(2/pi) exp(nu - e^{2nu}/2); integrand analytic in |Im nu| < pi/4, so the
    trapezoid rule with step s*h converges like exp(-2 pi (pi/4) / (s h))).  Psi_X, Psi_Y are
    tabulated on uniform log grids (step h) from the K-node compressed marginals, the 2-D table
    G(lam_t, lam_g) = sum_q p_q Psi_X(lam_t + nu_q) Psi_Y(lam_g + nu_q) is ONE matmul
    (P x Q) @ (Q x P), and each outer atom is evaluated by p x p tensor Lagrange interpolation
    (grid windows of width P h = 48 in log|.| anchored at the largest |g|, |t|; outer atoms more
    than ~47 below the top would be clamped to the window edge, so when they carry more than
    IF_CLAMPED_MASS = 1e-9 the result is NaN and the caller uses `spearman_pair(g, t, omega, 1)`,
    exact in the outer atoms).  Error <= 5e-8 on all test laws (h = 1/8, s = 2, p = 6).

All functions are jit-able (static keyword parameters) and vmap-able over rho and over batches
of laws with the same N.  Deterministic; no NaN for g = 0 atoms, zero weights, rho = +-1 (the
only NaN is spearman_if's signal that its windows do not cover the law).
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["spearman_trak", "spearman_if", "spearman_pair", "compress_log_abs", "asin_poly"]

IF_CLAMPED_MASS = 1e-9  # spearman_if is NaN when more outer mass than this falls below its windows
# asin(s) = s * sum_k C_k s^{2k},  C_k = binom(2k, k) / (4^k (2k + 1)); used for |s| <= 1/2
_ASIN_C = [math.comb(2 * k, k) / (4**k * (2 * k + 1)) for k in range(26)]


def asin_poly(x):
    """arcsin(x) on [-1, 1], |error| <= 5e-16, ~6x faster than jnp.arcsin on XLA:CPU.

    |x| <= 1/2: odd Taylor polynomial (26 terms); |x| > 1/2: asin(x) = pi/2 - 2 asin(sqrt((1-x)/2)).
    """
    ax = jnp.abs(x)
    big = ax > 0.5
    z = jnp.where(big, 0.5 * (1.0 - ax), ax * ax)
    s = jnp.where(big, jnp.sqrt(z), ax)
    acc = _ASIN_C[-1]
    for c in _ASIN_C[-2::-1]:
        acc = acc * z + c
    r = s * acc
    r = jnp.where(big, 0.5 * jnp.pi - 2.0 * r, r)
    return jnp.copysign(r, x)


def _sigma(d):
    """S(a, b) = |a|/sqrt(a^2+b^2) = (1 + e^{2d})^{-1/2} with d = log|b| - log|a| (overflow free)."""
    return jnp.exp(-0.5 * jnp.logaddexp(0.0, 2.0 * d))


def _log_abs_split(v, om):
    """(log|v| with 0 where excluded, weights of the atoms with v != 0, mass p0 of v == 0)."""
    nz = (v != 0) & (om > 0)
    ell = jnp.log(jnp.where(nz, jnp.abs(v), 1.0))
    return ell, jnp.where(nz, om, 0.0), jnp.sum(jnp.where((v == 0) & (om > 0), om, 0.0))


def _binned_rule(ell, w, nb):
    """Moment-preserving binning of sum_i w_i delta_{ell_i}: a 2-point Gauss rule per bin."""
    pos = w > 0
    anyp = jnp.any(pos)
    lo = jnp.min(jnp.where(pos, ell, jnp.inf))
    hi = jnp.max(jnp.where(pos, ell, -jnp.inf))
    lo = jnp.where(anyp, lo, 0.0)
    hi = jnp.where(anyp, hi, 1.0)
    b = jnp.maximum(hi - lo, 1e-12) / nb
    u = (jnp.clip(ell, lo, hi) - lo) / b
    i = jnp.clip(jnp.floor(u).astype(jnp.int32), 0, nb - 1)
    f = u - i - 0.5  # local coordinate in [-1/2, 1/2]
    M = jax.ops.segment_sum(jnp.stack([w, w * f, w * f * f, w * f * f * f], 1), i, num_segments=nb)
    m0 = M[:, 0]
    m0s = jnp.where(m0 > 0, m0, 1.0)
    c = M[:, 1] / m0s
    v = jnp.maximum(M[:, 2] / m0s - c * c, 0.0)
    mu3 = M[:, 3] / m0s - 3.0 * c * M[:, 2] / m0s + 2.0 * c**3
    okv = v > 1e-20
    a = jnp.where(okv, mu3 / jnp.where(okv, v, 1.0), 0.0)
    disc = jnp.sqrt(a * a + 4.0 * v)
    y1, y2 = 0.5 * (a - disc), 0.5 * (a + disc)  # roots of y^2 - a y - v (centred)
    den = jnp.where(okv, y2 - y1, 1.0)
    w1 = jnp.where(okv, y2 / den, 0.5)
    w2 = jnp.where(okv, -y1 / den, 0.5)
    ctr = lo + (jnp.arange(nb) + 0.5) * b
    nodes = jnp.concatenate([ctr + b * (c + y1), ctr + b * (c + y2)])
    return nodes, jnp.concatenate([m0 * w1, m0 * w2])


@jax.custom_batching.custom_vmap
def _eigh(J):
    """jnp.linalg.eigh of one K x K matrix; batched (under vmap) as a sequential loop.

    XLA:CPU's batched LAPACK eigh splits its batch over the intra-op thread pool and blocks a
    pool thread until the pieces finish; two such calls scheduled at once on a 2-thread pool
    deadlock (seen in predict_curve over delta with variants=True on 2 cores). One matrix per
    call never waits on the pool, and K is small, so the loop costs little.
    """
    ev, V = jnp.linalg.eigh(J)
    return ev, V


@_eigh.def_vmap
def _eigh_vmap(axis_size, in_batched, J):
    (batched,) = in_batched
    if not batched:
        return _eigh(J), (False, False)
    return lax.map(_eigh, J), (True, True)


def _gauss_rule(x, w, K):
    """K-node Gauss rule of sum_i w_i delta_{x_i}: Stieltjes/Lanczos + Golub-Welsch."""
    W = jnp.sum(w)
    Ws = jnp.where(W > 0, W, 1.0)
    mu = jnp.sum(w * x) / Ws
    sd = jnp.sqrt(jnp.sum(w * (x - mu) ** 2) / Ws)
    sd = jnp.where(sd > 0, sd, 1.0)
    y = (x - mu) / sd

    def body(k, st):
        q, qp, bp, A, B = st
        v = y * q
        a = q @ v
        v = v - a * q - bp * qp
        c1, c2 = q @ v, qp @ v  # local reorthogonalisation
        v = v - c1 * q - c2 * qp
        a = a + c1
        b = jnp.sqrt(v @ v)
        ok = b > 1e-11  # breakdown (fewer than K support points): decouple, zero weights
        qn = jnp.where(ok, v / jnp.where(ok, b, 1.0), 0.0)
        b = jnp.where(ok, b, 0.0)
        return qn, q, b, A.at[k].set(a), B.at[k].set(b)

    z = jnp.zeros(K, y.dtype)
    q0 = jnp.sqrt(w / Ws)
    _, _, _, A, B = lax.fori_loop(0, K, body, (q0, jnp.zeros_like(q0), jnp.zeros((), y.dtype), z, z))
    J = jnp.diag(A) + jnp.diag(B[:-1], 1) + jnp.diag(B[:-1], -1)
    ev, V = _eigh(J)
    return mu + sd * ev, W * V[0] ** 2


def compress_log_abs(v, omega, K=64, nb=512):
    """K-node Gauss rule (nodes, weights) of the law of log|v| over atoms with v != 0, and p0 = P(v = 0).

    omega must be normalised by the caller if a probability law is wanted.
    """
    ell, w, p0 = _log_abs_split(v, omega)
    x, u = _binned_rule(ell, w, nb)
    nodes, wts = _gauss_rule(x, u, K)
    return nodes, wts, p0


@functools.partial(jax.jit, static_argnames=("K", "nb"))
def spearman_trak(g, omega, rho, K=48, nb=512):
    r"""Population Spearman of (gV, gU), corr(U, V) = rho:  (6/pi) E asin(rho S(g,g') S(g,g'')).

    The law of log|g| is compressed to a K-node Gauss rule (moment-preserving binning into nb bins,
    then Stieltjes/Lanczos), the g = 0 mass p0 is an extra node with S(g, 0) = 1, and the triple
    sum  (6/pi) sum_i w_i sum_{j,k} w_j w_k asin(rho S_ij S_ik)  is evaluated exactly (K^3 terms,
    half of them by symmetry).  g, omega: (N,) arrays (omega >= 0, any normalisation);
    rho: scalar in [-1, 1].  vmap over rho re-uses the compression.  Error <= 3e-8 on the test
    laws at the default K = 48 (<= 1e-9 at K = 64).
    """
    g = jnp.asarray(g, jnp.float64)
    omega = jnp.asarray(omega, jnp.float64)
    om = omega / jnp.sum(omega)
    l, wl, p0 = compress_log_abs(g, om, K, nb)
    S = _sigma(l[None, :] - l[:, None])  # S_ij = S(g_i, g_j)
    S = jnp.concatenate([S, jnp.ones((K, 1), S.dtype)], 1)  # inner g = 0 node
    we = jnp.concatenate([wl, p0[None]])
    jj, kk = np.triu_indices(K + 1)  # symmetric in (j, k): pairs j <= k, off-diagonal x2
    SS = S[:, jj] * S[:, kk]  # (K, (K+1)(K+2)/2), rho-independent
    W = wl[:, None] * (we[jj] * we[kk] * np.where(jj == kk, 1.0, 2.0))[None, :]
    # elementwise product + full reduction (fused by XLA; under vmap over rho only this is batched)
    return 6.0 / jnp.pi * jnp.sum(W * asin_poly(jnp.clip(rho * SS, -1.0, 1.0)))


def _lagrange_weights(f, p):
    """p-point Lagrange basis at local coordinate f (nodes 0..p-1), shape f.shape + (p,)."""
    out = []
    for j in range(p):
        num, den = 1.0, 1.0
        for k in range(p):
            if k != j:
                num = num * (f - k)
                den = den * (j - k)
        out.append(num / den)
    return jnp.stack(out, -1)


@functools.partial(jax.jit, static_argnames=("K", "nb", "h", "P", "s", "p", "nu_lo", "nu_hi"))
def spearman_if(g, t, omega, K=48, nb=512, h=0.125, P=384, s=2, p=6, nu_lo=-20.0, nu_hi=2.5):
    r"""Population Spearman of (tU, gU):  (6/pi) E asin(S(t,t') S(g,g'')) = 3 E[psi_X(tU) psi_Y(gU)].

    Evaluated as  3 sum_atoms omega sign(tg) G(log|t|, log|g|)  with
      G(lam_t, lam_g) = sum_q p_q Psi_X(lam_t + nu_q) Psi_Y(lam_g + nu_q)      (nu = log|U|),
      Psi_X(lam) = p0_t + sum_j u_j erf(exp(lam - x_j)/sqrt 2)   (K-node rule (x_j, u_j) of log|t|),
      nu_q = q s h + const on [nu_lo, nu_hi], p_q = s h sqrt(2/pi) exp(nu_q - e^{2 nu_q}/2),
    G tabulated on a P x P grid of step h (one matmul) and interpolated with p x p Lagrange.
    Defaults give <= 5e-8 absolute error on the test laws.  g, t, omega: (N,) arrays.
    """
    g, t, omega = (jnp.asarray(x, jnp.float64) for x in (g, t, omega))
    om = omega / jnp.sum(omega)
    xt, ut, p0t = compress_log_abs(t, om, K, nb)
    xg, ug, p0g = compress_log_abs(g, om, K, nb)
    o = (g != 0) & (t != 0) & (om > 0)  # outer atoms with g = 0 (or t = 0) contribute 0
    wo = jnp.where(o, om * jnp.sign(g) * jnp.sign(t), 0.0)
    lt = jnp.log(jnp.where(o, jnp.abs(t), 1.0))
    lg = jnp.log(jnp.where(o, jnp.abs(g), 1.0))
    hp = p // 2
    n0 = float(math.floor(nu_lo / h))
    Q = int(math.ceil((nu_hi - nu_lo) / (s * h))) + 1
    nu = (n0 + s * jnp.arange(Q)) * h
    pq = s * h * math.sqrt(2.0 / math.pi) * jnp.exp(nu - 0.5 * jnp.exp(2.0 * nu))
    L = P + (Q - 1) * s
    anyo = jnp.any(o)

    def window(l):  # grid origin: top of the window at the largest log|.|
        top = jnp.max(jnp.where(o, l, -jnp.inf))
        bot = jnp.min(jnp.where(o, l, jnp.inf))
        return jnp.where(anyo, jnp.maximum(bot - hp * h, top - (P - hp - 1) * h), 0.0)

    def table(l0, x, u, p0):  # (P, Q) matrix Psi(l0 + a h + nu_q)
        lams = l0 + (n0 + jnp.arange(L)) * h
        tab = p0 + jax.scipy.special.erf(jnp.exp(lams[:, None] - x[None, :]) * math.sqrt(0.5)) @ u
        return tab[np.arange(P)[:, None] + s * np.arange(Q)[None, :]]      # (P, Q): tab[a + s q]

    t0, g0 = window(lt), window(lg)
    G = (table(t0, xt, ut, p0t) * pq[None, :]) @ table(g0, xg, ug, p0g).T  # (P, P)

    def locate(l, l0):
        f = jnp.clip((l - l0) / h, hp - 1, P - hp)
        i = jnp.clip(jnp.floor(f).astype(jnp.int32) - (hp - 1), 0, P - p)
        return i, _lagrange_weights(f - i, p)

    it, Lt = locate(lt, t0)
    ig, Lg = locate(lg, g0)
    ar = jnp.arange(p)
    vals = G[it[:, None, None] + ar[None, :, None], ig[:, None, None] + ar[None, None, :]]
    # outer atoms below the windows are clamped to their edge; beyond a negligible mass (a law of
    # log|.| spread over more than the window, deep on the separable side) the value is not
    # trusted: NaN, and `theory.prediction` evaluates `spearman_pair(g, t, omega, 1)` instead
    below = (lt < t0 + (hp - 1) * h) | (lg < g0 + (hp - 1) * h)
    clamped = jnp.sum(jnp.where(o & below, om, 0.0))
    value = 3.0 * jnp.einsum("n,na,nb,nab->", wo, Lt, Lg, vals)
    return jnp.where(clamped <= IF_CLAMPED_MASS, value, jnp.nan)


@functools.partial(jax.jit, static_argnames=("K", "nb"))
def spearman_pair(g, t, omega, rho, K=48, nb=512):
    r"""Population Spearman of (tV, gU), (t, g) one atom, corr(U, V) = rho (general case):

        (6/pi) E asin( rho S(t,t') S(g,g'') )      (t' ~ law of t, g'' ~ law of g, independent),

    evaluated directly: both marginals of log|.| compressed to K-node Gauss rules (+ the zero
    masses), then N (K+1)^2 arcsines (N = number of atoms). Reduces to `spearman_if` at rho = 1
    and to `spearman_trak` when t = g. Used by the corrected TRAK variants.
    """
    g, t, omega = (jnp.asarray(x, jnp.float64) for x in (g, t, omega))
    om = omega / jnp.sum(omega)
    xt, ut, p0t = compress_log_abs(t, om, K, nb)
    xg, ug, p0g = compress_log_abs(g, om, K, nb)
    o = (g != 0) & (t != 0) & (om > 0)
    wo = jnp.where(o, om * jnp.sign(g) * jnp.sign(t), 0.0)
    lt = jnp.log(jnp.where(o, jnp.abs(t), 1.0))
    lg = jnp.log(jnp.where(o, jnp.abs(g), 1.0))
    St = jnp.concatenate([_sigma(xt[None, :] - lt[:, None]), jnp.ones((lt.size, 1))], 1)   # (N, K+1)
    Sg = jnp.concatenate([_sigma(xg[None, :] - lg[:, None]), jnp.ones((lg.size, 1))], 1)
    ut = jnp.concatenate([ut, p0t[None]])
    ug = jnp.concatenate([ug, p0g[None]])
    inner = jnp.einsum("nab,a,b->n", asin_poly(jnp.clip(rho * St[:, :, None] * Sg[:, None, :], -1.0, 1.0)),
                       ut, ug)
    return 6.0 / jnp.pi * jnp.sum(wo * inner)
