"""Exact leave-one-out for every training point, batched and warm-started from beta_hat.

For point i write beta_{-i} = beta_hat + Delta. Since X^T g_hat + lam beta_hat = r0 (~ 0,
the full-fit residual), the gradient of F_{-i}(beta) = F(beta) - l(y_i, x_i^T beta) at
beta_hat + Delta is

    G_i(Delta) = X^T [ (g(eta_hat + X Delta) - g_hat) * 1{j != i} ] - x_i g_hat_i + lam Delta + r0
               = H_{-i} Delta + X^T nu(X Delta) + c0,

with c0 = r0 - x_i g_hat_i and nu(e) = [g(eta_hat + e) - g_hat - w e] * 1{j != i}, the part of the
gradient that is nonlinear in e = X Delta. We solve G_i(Delta) = 0 by the chord iteration
preconditioned with the exact leave-one-out Hessian at beta_hat, applied by Sherman–Morrison
through A = H^{-1}:

    Delta_{t+1} = Delta_t - H_{-i}^{-1} G_i(Delta_t) = -H_{-i}^{-1} (X^T nu_t + c0),
    H_{-i}^{-1} v = A v + coef a_i (a_i^T v),   a_i = A x_i,  h_i = x_i^T a_i,  coef = w_i / (1 - w_i h_i).

The first step from Delta = 0 is the Newton step (ALO); each further step contracts the error by
a factor O(|l'''| max_j |x_j^T Delta|) = O(p^{-1/2}), so a handful of steps reach 1e-10. For the
gaussian family G_i is affine and one step is exact.

Iterates are carried as e = X Delta (n), f = X_0 Delta (T) and the gradient G (p): a step updates
e <- e - (X A) G - coef k_i (a_i^T G) with k_i = X A x_i (likewise f), and the new gradient is
exactly G_i(Delta_{t+1}) = X^T (nu_{t+1} - nu_t), because H_{-i} Delta_{t+1} = -X^T nu_t - c0. A
step costs two products with n x p matrices, 4 n p flops per point. That identity assumes A is
H^{-1} to working precision; when a probe of ||H A - I|| is not far below the tolerance
(ill-conditioned H) the coefficients Delta are tracked too (a p x p product, 2 p^2 more flops per
step) and G is evaluated from its definition.

The default iteration (`_jacobi_step`) adds a diagonal correction to the chord map. For any
n-vector nu define T(nu) = -X H_{-i}^{-1} (c0 + X^T nu) = X Delta_T(nu); the LOO solution is the
fixed point nu = nu(T(nu)), and the Jacobian of that equation is I + N K_{-i}, with
N = diag(nu'(T)) and K_{-i} = X H_{-i}^{-1} X^T. The chord iteration (nu <- nu(T(nu))) neglects
N K_{-i}; the diagonal of K_{-i}, D_j = x_j^T H_{-i}^{-1} x_j = lev_j + coef k_ij^2 with
lev = diag(X A X^T), carries a large share of it (the leverages are O(1), the off-diagonal terms
O(p^{-1/2}) but many) and is inverted coordinate by coordinate:

    nu <- nu(T) - N D (nu(T) - nu) / (1 + N D)          (elementwise; N = nu'(T) = w(eta + T) - w)

From nu = 0 this gives a better first iterate than the Newton step (whose image is T(0)); after
it, each step contracts the error about three times more than a chord step (n = 2000, p = 1000:
4.73 steps per point on average against 5.55 at tol = 1e-10; near separability (n = 600, p = 400,
lam = 1e-3) 8.7 against 16.7, with far fewer Newton fallbacks). A step costs the same two
products, X^T nu (n x p) and X A of it (p x n), and about the same elementwise work.
Convergence is proved only by an exact gradient: for any nu, Delta_T = -H_{-i}^{-1}(c0 + X^T nu)
has G_i(Delta_T) = X^T nu(T) - X^T nu. When the predicted norm of that gradient,
||(nu(T) - nu) * ||x_j|| ||, is below the threshold, the step is plain (nu <- nu(T)) and the
product of the next step gives the exact gradient; the values are X_0 Delta_T. A prediction never
ends a point. With coefficients tracked (ill-conditioned H, below) the chord iteration runs.

Mixed precision (the default for non-quadratic families; `f32_steps=0` turns it off). The first
steps only have to bring the error from O(1) to ~1e-9, which float32 products do as well as float64
ones at half the cost (float64 is ~2x slower per product on CPUs; accelerators likewise, and
`Precision.HIGHEST` keeps them from TF32/bf16 passes). `_warm_start` runs each point's first S
steps (S = 4 at tol = 1e-10, fewer for looser tolerances) with the products X A v and X^T nu in
float32 (operands rounded, the result back in float64, the elementwise work in float64, because
nu(T) is a difference of nearly equal terms), except k_i = X A x_i and the last X^T nu, which are
float64: an accurate v = X^T nu is what the next check needs. Nothing in these steps is checked.
The float64 steps that follow are those above, with one change: the product X^T (nu - nu_prev)
of the new v = v_prev + X^T (nu - nu_prev) runs in float32 (scaled by a power of 2 first), and
the standard bound on its error, (gamma_n + 3u) |X|^T |d| <= (gamma_n + 3u) ||X||_F ||d|| with
u = 2^-24 and gamma_n = n u / (1 - n u) (plus underflow terms), accumulates in a per-lane bound
vb >= ||X^T nu - v||. Because T = X Delta_T holds for whatever v it was computed from, the
gradient at T is X^T nu(T) - v = X^T (nu(T) - nu) + (X^T nu - v), and a plain step's check uses
the bound ||r|| + vb on its norm (r the float32 product). Whenever some lane's vb would exceed
VB_SHARE = 1/4 of its threshold (slowly converging points take large steps), the whole batch
takes a float64 product instead, which gives the exact gradient and resets vb to 0. Nothing that
ends a point is inexact, so the values keep the float64 tolerance: at n = 2000, p = 1000 they
agree with the all-float64 iteration to 1.2e-11 (tolerance 1e-10). Steps per point rise (5.11
against 4.73: no point can end before step S + 1), the cost falls (0.74 s against 1.2 s).

A point has converged when ||G_i|| <= max(tol (||x_i|| |g_i| + 1e-4 rms(g)), floor_i), where
floor_i = 16 eps (sqrt(sum_{j != i} ||x_j||^2 m_j^2) + ||x_i|| |g_i| + lam ||beta_hat||), with
m_j = |g(eta_j + e_j)| + |y_j| + w_j |eta_j + e_j| the magnitude of what is rounded in term j (taken at
Delta = 0 in the default iteration), is the rounding level of the gradient itself: a point with tiny |g_i|, or an interpolating fit with tiny
lam, cannot be resolved below it (the values are then accurate to about eps cond(H)). Points run
in the lanes of a
fixed-size batch: after every step the lanes whose point has converged, or reached `chord_iters`
steps, take the next point, so no lane idles while others finish. Points still unconverged (small
lam near separability, where removing a point changes the curvature a lot) are refitted by damped
Newton from beta_hat with their weight set to 0 (globally convergent; n p^2 + p^3/3 flops per
step), to the same tolerance. The batch size comes from a memory budget; with several JAX devices
the lanes are sharded across them (`jax.sharding`, inputs replicated), unless the caller pinned
the work to one device (`jax.default_device`, as sweeps do). The result is
LOO_i(x_0) = x_0^T (beta_hat - beta_{-i}) = -x_0^T Delta for every test point.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory.errors import NotConvergedError
from theory.families import Family, get_family

from .fit import OK, Fit, newton_fit
from .tiers import tiered_jit

DEFAULT_MEMORY_BUDGET = 512 * 2**20   # bytes for the per-batch work arrays
ROUNDING_FACTOR = 16.0                # floor = ROUNDING_FACTOR * eps * (size of the gradient's terms)


class Loo(NamedTuple):
    values: np.ndarray     # (T, n) LOO_i(x_0)
    n_iter: np.ndarray     # (n,) steps per point (each two n x p products, the first ones in float32; plus Newton steps of the fallback)
    rel_resid: np.ndarray  # (n,) final ||G_i|| / (its convergence threshold / tol)
    tracked: bool = False  # True when the coefficients were tracked (ill-conditioned H)


def chunk_size_for(n: int, p: int, T: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Lanes per batch: the lane state and work arrays (about 6n + 4p + 4T doubles per lane) fit
    the budget, and at most 256 on CPU (larger products gain nothing there) or 2048 on accelerators."""
    per_point = 8 * (6 * n + 4 * p + 4 * T)
    cap = 256 if jax.default_backend() == "cpu" else 2048
    return int(max(1, min(n, cap, memory_budget // per_point)))


class _Lanes(NamedTuple):
    """Chord-iteration state of one batch of points (leading axis: lane)."""

    idx: jax.Array     # (B,) training point of each lane
    e: jax.Array       # (B, n) X Delta
    f: jax.Array       # (B, T) X_0 Delta
    nu: jax.Array      # (B, n) nu(X Delta)
    G: jax.Array       # (B, p) gradient G_i(Delta)
    k: jax.Array       # (B, n) X A x_i
    k0: jax.Array      # (B, T) X_0 A x_i
    delta: jax.Array   # (B, p) Delta, or (B, 0) when not tracked
    it: jax.Array      # (B,) chord steps taken


def _empty_lanes(B, n, p, T, track, dtype) -> _Lanes:
    z = lambda *s: np.zeros(s, dtype)  # noqa: E731  (numpy: no program compiled per shape)
    return _Lanes(np.zeros(B, np.int32), z(B, n), z(B, T), z(B, n), z(B, p), z(B, n), z(B, T),
                  z(B, p if track else 0), np.zeros(B, np.int32))


class _Point(NamedTuple):
    """What every step needs of the point i held by each lane."""

    i: jax.Array             # (B,) the point
    xi: jax.Array            # (B, p) x_i
    ai: jax.Array            # (B, p) A x_i (row i of X A; A is symmetric)
    XAZ: jax.Array           # (B, n) X A z: z = x_i in fresh lanes, the running vector elsewhere
    X0AZ: jax.Array          # (B, T) X_0 A z
    k: jax.Array             # (B, n) X A x_i
    k0: jax.Array            # (B, T) X_0 A x_i
    gi: jax.Array            # (B,) g_i
    hi: jax.Array            # (B,) x_i^T A x_i
    one_minus_wh: jax.Array  # (B,) 1 - w_i h_i
    coef: jax.Array          # (B, 1) w_i / (1 - w_i h_i), the Sherman-Morrison coefficient of H_{-i}^{-1}


def _lane_points(fresh, new_idx, idx, running, k, k0, X, XA, X0A, g, w) -> _Point:
    """The point of every lane (`new_idx` where `fresh`, else `idx`) and one product with X A and
    X_0 A for all lanes at once: fresh lanes multiply x_i (giving k_i), running lanes `running`."""
    fresh_ = fresh[:, None]
    i = jnp.where(fresh, new_idx, idx)
    xi, ai = X[i], XA[i]
    Z = jnp.where(fresh_, xi, running)
    XAZ, X0AZ = Z @ XA.T, Z @ X0A.T
    k = jnp.where(fresh_, XAZ, k)
    k0 = jnp.where(fresh_, X0AZ, k0)
    gi, wi = g[i], w[i]
    hi = k[jnp.arange(fresh.shape[0]), i]
    one_minus_wh = 1.0 - wi * hi
    return _Point(i, xi, ai, XAZ, X0AZ, k, k0, gi, hi, one_minus_wh, (wi / one_minus_wh)[:, None])


@tiered_jit(static_argnames=("family", "track"))
def _chord_step(lanes: _Lanes, fresh, new_idx, X, y, eta, g, w, A, XA, X0A, r0, lam, row, lam_beta, *,
                family: Family, track: bool):
    """One chord step in every lane; lanes with `fresh` start point `new_idx` with the Newton
    step. Returns the new state, ||G|| and the rounding floor of G per lane (module docstring);
    row = (||x_j||), lam_beta = lam ||beta_hat||."""
    n = X.shape[0]
    fresh_ = fresh[:, None]
    i, xi, ai, XAZ, X0AZ, k, k0, gi, hi, one_minus_wh, coef = _lane_points(
        fresh, new_idx, lanes.idx, lanes.G, lanes.k, lanes.k0, X, XA, X0A, g, w)   # running lanes: G
    u, u0 = XA @ r0, X0A @ r0               # X A r0, X_0 A r0
    ui = u[i][:, None]
    # Newton step Delta_1 = -H_{-i}^{-1} c0:  X Delta_1 = -(u + coef u_i k_i - g_i k_i / (1 - w_i h_i))
    first = coef * ui - (gi / one_minus_wh)[:, None]
    aG = jnp.sum(ai * lanes.G, axis=1)[:, None]                                 # a_i^T G
    e = jnp.where(fresh_, -(u + first * k), lanes.e - XAZ - coef * aG * k)
    f = jnp.where(fresh_, -(u0 + first * k0), lanes.f - X0AZ - coef * aG * k0)
    keep = jnp.arange(n)[None, :] != i[:, None]
    nu = jnp.where(keep, family.grad(y, eta + e) - g - w * e, 0.0)       # (B, n)
    if track:     # Delta itself, and G from its definition: robust to the error of A
        delta1 = -(A @ r0 - ai * gi[:, None] + coef * ai * (ui - (hi * gi)[:, None]))
        step = lanes.G @ A + coef * aG * ai                                      # H_{-i}^{-1} G
        delta = jnp.where(fresh_, delta1, lanes.delta - step)
        G = (nu + jnp.where(keep, w * e, 0.0)) @ X - xi * gi[:, None] + lam * delta + r0
    else:
        delta = lanes.delta
        G = (nu - jnp.where(fresh_, 0.0, lanes.nu)) @ X
    it = jnp.where(fresh, 1, lanes.it + 1)
    eta_e = eta + e
    m = jnp.where(keep, jnp.abs(nu + w * e + g) + jnp.abs(y) + w * jnp.abs(eta_e), 0.0) * row
    floor = ROUNDING_FACTOR * jnp.finfo(X.dtype).eps * (jnp.linalg.norm(m, axis=1) + row[i] * jnp.abs(gi)
                                                        + lam_beta)
    return _Lanes(i, e, f, nu, G, k, k0, delta, it), jnp.linalg.norm(G, axis=1), floor


class _JLanes(NamedTuple):
    """State of one batch of points in the Jacobi-corrected iteration (`_jacobi_step`)."""

    idx: jax.Array     # (B,) training point of each lane
    nu: jax.Array      # (B, n) the iterate nu (nu(X Delta) at the solution)
    v: jax.Array       # (B, p) X^T nu
    f: jax.Array       # (B, T) X_0 Delta_T of the last chord image (the lane's values)
    k: jax.Array       # (B, n) X A x_i
    k0: jax.Array      # (B, T) X_0 A x_i
    it: jax.Array      # (B,) steps taken
    vb: jax.Array      # (B,) bound on ||X^T nu - v|| from float32 products (0 when v = X^T nu in float64)


def _empty_jlanes(B, n, p, T, dtype) -> _JLanes:
    z = lambda *s: np.zeros(s, dtype)  # noqa: E731  (numpy: no program compiled per shape)
    return _JLanes(np.zeros(B, np.int32), z(B, n), z(B, p), z(B, T), z(B, n), z(B, T),
                   np.zeros(B, np.int32), z(B))


def _jacobi_correction(family: Family, y, eta, w, keep, lev, coef, k, T, nuT, nu0):
    """N D (nu(T) - nu) / (1 + N D), with N = nu'(T) and D = diag(X H_{-i}^{-1} X^T) = lev + coef k^2
    (0 at j = i): the Jacobi step is nu <- nu(T) - this; a plain (chord) step takes nu(T)."""
    ND = jnp.where(keep, (family.hess(y, eta + T) - w) * (lev + coef * k * k), 0.0)
    return ND * (nuT - nu0) / (1.0 + ND)


def _product32(a, B):
    """a @ B with float32 operands and accumulation (HIGHEST: no TF32/bf16 passes on accelerators),
    returned in a's dtype."""
    return jnp.matmul(a.astype(jnp.float32), B, precision=jax.lax.Precision.HIGHEST).astype(a.dtype)


def _newton_image(i, k, u, g, w):
    """(coef, first) for the points i: coef = w_i / (1 - w_i h_i) with h_i = x_i^T A x_i = k_ii,
    first = coef u_i - g_i / (1 - w_i h_i); the Newton step Delta_1 = -H_{-i}^{-1} c0 has
    X Delta_1 = -(u + first k) (u = X A r0)."""
    gi, wi = g[i], w[i]
    one_minus_wh = 1.0 - wi * k[jnp.arange(i.shape[0]), i]
    coef = (wi / one_minus_wh)[:, None]
    return coef, coef * u[i][:, None] - (gi / one_minus_wh)[:, None]


@tiered_jit(static_argnames=("family", "steps"))
def _warm_start(idx, X, y, eta, g, w, XA, X0A, X32, XA32, u, lev, *, family: Family, steps: int) -> _JLanes:
    """Lane state of points `idx` for `_jacobi_step`: k_i = X A x_i and k0_i = X_0 A x_i, and the
    first `steps` Jacobi steps from nu = 0, their products in float32 except the last X^T nu (module
    docstring, "Mixed precision"); no step is checked. u = X A r0. steps = 0: nu = 0, v = 0."""
    n = X.shape[0]
    B = idx.shape[0]
    ai = XA[idx]
    xi = X[idx]
    k, k0 = xi @ XA.T, xi @ X0A.T
    coef, first = _newton_image(idx, k, u, g, w)
    base = -(u + first * k)                       # X Delta_1, the Newton step -H_{-i}^{-1} c0
    keep = jnp.arange(n)[None, :] != idx[:, None]
    nu = jnp.zeros((B, n), X.dtype)
    v = jnp.zeros((B, X.shape[1]), X.dtype)
    for t in range(steps):
        T = base if t == 0 else base - (_product32(v, XA32.T) + coef * jnp.sum(ai * v, axis=1)[:, None] * k)
        nuT = jnp.where(keep, family.grad(y, eta + T) - g - w * T, 0.0)
        nu = nuT - _jacobi_correction(family, y, eta, w, keep, lev, coef, k, T, nuT, nu)
        v = nu @ X if t == steps - 1 else _product32(nu, X32)
    return _JLanes(idx.astype(jnp.int32), nu, v, jnp.zeros((B, X0A.shape[0]), X.dtype), k, k0,
                   jnp.full(B, steps, jnp.int32), jnp.zeros(B, X.dtype))


def _take(lanes: _JLanes, take, pos, warm: _JLanes) -> _JLanes:
    """Lanes where `take` start the warm-started point at position `pos` of `warm` (f is kept: the
    next step sets it)."""
    def pick(old, new):
        return jnp.where(take.reshape((-1,) + (1,) * (old.ndim - 1)), new[pos], old)

    return lanes._replace(**{name: pick(getattr(lanes, name), getattr(warm, name))
                             for name in ("idx", "nu", "v", "k", "k0", "it", "vb")})


_admit = tiered_jit(_take)


@tiered_jit(static_argnames=("family", "last", "low"))
def _jacobi_step(lanes: _JLanes, take, pos, warm: _JLanes, X, y, eta, g, w, XA, X0A, u, u0, lev, tol_s, row, m0,
                 lam_beta, X32, c32, *, family: Family, last: int, low: bool):
    """One step in every lane of the iteration with a diagonal (Jacobi) correction (module
    docstring), after the lanes where `take` start point `pos` of `warm` (see `_warm_start`).
    Returns the new state, the gradient norm (exact where `checked`, else its prediction), the
    rounding floor and `checked`. u = X A r0, u0 = X_0 A r0, lev = diag(X A X^T), tol_s = tol * s,
    row = (||x_j||), m0 = the magnitudes m_j ||x_j|| of the rounding floor at Delta = 0 (the floor
    is a rounding level: the small e does not change it materially, and this saves passes over
    (B, n) arrays), lam_beta = lam ||beta_hat||. `low`: the product X^T (nu - nu_prev) runs in
    float32 (X32 = X in float32) and the gradient norm is the bound ||r|| + vb (module docstring,
    "Mixed precision"), with c32 the constant of `_float32_error`; else X^T nu in float64."""
    n = X.shape[0]
    lanes = _take(lanes, take, pos, warm)
    i, k, k0, nu0, v0 = lanes.idx, lanes.k, lanes.k0, lanes.nu, lanes.v
    coef, first = _newton_image(i, k, u, g, w)
    av = jnp.sum(XA[i] * v0, axis=1)[:, None]                                      # a_i^T v
    # chord image T = -X H_{-i}^{-1} (c0 + X^T nu) = X Delta_T, and its X_0 image
    T = -(u + first * k) - (v0 @ XA.T + coef * av * k)
    fT = -(u0 + first * k0) - (v0 @ X0A.T + coef * av * k0)
    keep = jnp.arange(n)[None, :] != i[:, None]
    nuT = jnp.where(keep, family.grad(y, eta + T) - g - w * T, 0.0)
    # rounding floor of the gradient, and the predicted ||G(T)|| = ||X^T (nu(T) - nu(e))||
    m2 = jnp.sum(m0 * m0) - m0[i] ** 2
    floor = ROUNDING_FACTOR * jnp.finfo(X.dtype).eps * (jnp.sqrt(jnp.maximum(m2, 0.0)) + row[i] * jnp.abs(g[i])
                                                        + lam_beta)
    pred = jnp.linalg.norm((nuT - nu0) * row, axis=1)
    it = lanes.it + 1
    plain = (pred <= jnp.maximum(tol_s[i], floor)) | (it >= last) | ~jnp.isfinite(pred)
    nu = nuT - jnp.where(plain[:, None], 0.0, _jacobi_correction(family, y, eta, w, keep, lev, coef, k, T, nuT, nu0))
    def exact():  # v = X^T nu in float64; ||v - v0|| is the gradient at T = X Delta_T (for any v0)
        v = nu @ X
        return v, jnp.zeros_like(lanes.vb), jnp.linalg.norm(v - v0, axis=1)

    if low:       # v = v0 + r, r = X^T (nu - nu0) in float32 to within err (after an exact power-of-2
        step = nu - nu0                     # scaling); ||G|| <= ||r|| + vb; float64 where vb would not
        scale = jnp.ldexp(1.0, jnp.ceil(jnp.log2(jnp.maximum(jnp.max(jnp.abs(step), axis=1), 1e-300))).astype(jnp.int32))
        vb = lanes.vb + _float32_error(step, scale, c32, X.shape)      # stay well below the threshold

        def bounded():
            r = _product32(step / scale[:, None], X32) * scale[:, None]
            return v0 + r, vb, jnp.linalg.norm(r, axis=1) + vb

        large = jnp.any(vb > VB_SHARE * jnp.maximum(tol_s[i], floor))
        v, vb, gexact = jax.lax.cond(large, exact, bounded)
    else:
        v, vb, gexact = exact()
    gnorm = jnp.where(plain, gexact, pred)
    return _JLanes(i, nu, v, fT, k, k0, it, vb), gnorm, floor, plain


def float32_error_constants(n: int, fro: float) -> tuple[float, float]:
    """c32 of `_float32_error` for an n-row X with ||X||_F = fro: ((gamma_n + 3u) fro, sqrt(n) fro),
    u = 2^-24, gamma_n = n u / (1 - n u)."""
    u = 2.0 ** -24
    return (n * u / (1 - n * u) + 3 * u) * fro, np.sqrt(n) * fro


def _float32_error(step, scale, c32, shape):
    """Bound on ||fl32(X^T step) - X^T step|| per lane, for the float32 product of step / scale (a
    power of 2) with X rounded to float32: the standard bound (gamma_n + 3u) |X|^T |step| with
    u = 2^-24, gamma_n = n u / (1 - n u), and || |X|^T |step| || <= ||X||_F ||step||, so
    c32[0] = (gamma_n + 3u) ||X||_F; plus the absolute error of entries below float32's normal
    range (2^-149 each, in X and in step / scale; c32[1] = sqrt(n) ||X||_F). c32 comes from
    `float32_error_constants`."""
    n, p = shape
    tiny = 2.0 ** -148
    norm = jnp.linalg.norm(step, axis=1)
    return c32[0] * norm + tiny * (np.sqrt(n * p) * norm + c32[1] * scale)


def _inverse_error(X, w, lam, A, Z):
    """Estimate of ||H A - I||_2 from the three random probes Z (p, 3) of unit expected norm (each
    ~ ||H A - I||_F / sqrt(p)), times sqrt(p)."""
    p = X.shape[1]
    AZ = A @ Z
    R = X.T @ (w[:, None] * (X @ AZ)) + lam * AZ - Z
    return jnp.sqrt(p) * jnp.max(jnp.linalg.norm(R, axis=0))


@tiered_jit(static_argnames=("family", "max_iter"))
def _loo_newton(idx, X, y, X0, beta, target, lam, tol, offset=None, *, family: Family, max_iter: int):
    """Refit without point i by damped Newton from beta_hat, for each i in idx (the fallback),
    to ||grad|| <= target_i. Returns (X_0 (beta_hat - beta_{-i}), steps, ||grad|| / target_i)."""

    def one(i):
        weights = (jnp.arange(X.shape[0]) != i).astype(X.dtype)
        refit = newton_fit(X, y, lam, family=family, tol=tol, max_iter=max_iter, beta0=beta,
                           weights=weights, grad_scale=target[i] / tol, offset=offset)
        resid = jnp.where(refit.status == OK, refit.rel_grad, jnp.inf)
        return X0 @ (beta - refit.beta), refit.n_iter, resid

    return jax.vmap(one)(idx)


class _Placement(NamedTuple):
    """Where the LOO work runs: replicated inputs, lanes split across devices."""

    devices: int
    mesh: object

    def round_up(self, size: int) -> int:
        return -(-size // self.devices) * self.devices

    def replicate(self, *arrays):
        return self._put(arrays, ())

    def split(self, *arrays):
        return self._put(arrays, ("d",))

    def _put(self, arrays, spec):
        if self.devices == 1:
            return tuple(jax.device_put(a) for a in arrays)   # (jnp.asarray compiles a program per shape)
        from jax.sharding import NamedSharding, PartitionSpec

        sharding = NamedSharding(self.mesh, PartitionSpec(*spec))
        return tuple(jax.device_put(a, sharding) for a in arrays)


def _placement() -> _Placement:
    """With several JAX devices, lanes are sharded over a 1-D mesh (jax.sharding): each device
    runs the chord steps of its share of the lanes; inputs are replicated. Inside
    `jax.default_device(d)` (a sweep running its units one per device) everything stays on d."""
    devices = jax.devices()
    if len(devices) == 1 or jax.config.jax_default_device is not None:
        return _Placement(1, None)
    from jax.sharding import Mesh

    return _Placement(len(devices), Mesh(np.array(devices), ("d",)))


VB_SHARE = 0.25  # float32 products of X^T (nu - nu_prev) while their error bound stays below this share of the threshold
F32_STEPS = 4   # the most steps of a point with float32 products (module docstring, "Mixed precision")


class _Setup(NamedTuple):
    """What the iterations need besides the fit (`_setup`)."""

    X0A: jax.Array       # (T, p) X_0 A
    u: jax.Array         # (n,) X A r0
    u0: jax.Array        # (T,) X_0 A r0
    lev: jax.Array       # (n,) diag(X A X^T)
    beta_norm: jax.Array  # ||beta_hat||
    inverse_error: jax.Array  # estimate of ||H A - I||_2 (`_inverse_error`)
    X32: jax.Array       # X in float32 (or (0,) when not `low`)
    XA32: jax.Array      # X A in float32 (or (0,))
    fro: jax.Array       # ||X||_F
    fits: jax.Array      # whether X and X A fit float32's range with room for the products


@tiered_jit(static_argnames=("low",))
def _setup(X, X0, A, XA, w, r0, beta, lam, probes, *, low: bool) -> _Setup:
    """One program for the set-up of `exact_loo` (rather than one small program per operation and
    shape). `low`: also X and X A in float32. `probes`: see `_probes`."""
    X0A = X0 @ A
    big = 2.0 ** 60
    none = jnp.zeros(0, jnp.float32)
    return _Setup(X0A, XA @ r0, X0A @ r0, jnp.sum(X * XA, axis=1), jnp.linalg.norm(beta),
                  _inverse_error(X, w, lam, A, probes),
                  X.astype(jnp.float32) if low else none, XA.astype(jnp.float32) if low else none,
                  jnp.linalg.norm(X), (jnp.max(jnp.abs(X)) < big) & (jnp.max(jnp.abs(XA)) < big))


def _probes(p: int) -> np.ndarray:
    """Three fixed N(0, I/p) probe vectors for `_inverse_error`, drawn on the host (a threefry
    sampler in the program would add most of its compile time)."""
    return np.random.default_rng(0).standard_normal((p, 3)) / np.sqrt(p)


def _f32_steps(family: Family, jacobi: bool, chord_iters: int, tol: float, requested: int | None) -> int:
    """Steps with float32 products: `requested`, or by default about one per factor 10^2.5 of the
    tolerance, at most F32_STEPS (4 at the default 1e-10; float32 stalls near a relative gradient of
    1e-9, after which float64 steps must go on); none for the plain chord iteration, for quadratic
    families (one float64 step is exact) or when the step cap leaves no room for two float64 steps."""
    if requested is not None and int(requested) < 0:
        raise ValueError(f"f32_steps must be >= 0, got {requested}.")
    steps = int(np.clip(round(-np.log10(tol) / 2.5), 1, F32_STEPS)) if requested is None else int(requested)
    if not jacobi or family.quadratic or chord_iters < steps + 2:
        return 0
    return steps


class _WarmQueue:
    """The points of the queue, warm-started B at a time by `_warm_start`, handed to fresh lanes."""

    def __init__(self, queue, B, place, steps, family, arrays):
        self.queue, self.B, self.place, self.steps, self.family = queue, B, place, steps, family
        # batches of equal size, at most B: the last one is padded by fewer than n / B points
        self.size = place.round_up(-(-len(queue) // -(-len(queue) // B)))
        self.arrays = arrays         # the arguments of `_warm_start` after idx
        self.batch, self.points, self.next = None, [], 0

    def _refill(self):
        self.points = [self.queue.pop() for _ in range(min(self.size, len(self.queue)))]
        idx = np.array(self.points + [self.points[-1]] * (self.size - len(self.points)), np.int32)  # pad: fixed shape
        self.batch = _warm_start(self.place.split(idx)[0], *self.arrays, family=self.family, steps=self.steps)
        self.next = 0

    def fill(self, lanes, fresh, point):
        """Give every `fresh` lane the next warm-started point, or mark it idle (point -1) when none
        is left. Returns (lanes, take, pos, batch): the lanes where `take` still have to take
        position `pos` of `batch` (`_take`, done by the next step)."""
        take, pos = np.zeros(self.B, bool), np.zeros(self.B, np.int32)
        for lane in np.flatnonzero(fresh):
            if self.next == len(self.points) and self.queue:
                if take.any():          # admit what this batch gave before replacing it (new arrays
                    lanes = _admit(lanes, *self.place.split(take, pos), self.batch)   # after: JAX may
                    take, pos = np.zeros(self.B, bool), np.zeros(self.B, np.int32)    # alias numpy memory)
                self._refill()
            if self.next < len(self.points):
                point[lane], pos[lane], take[lane] = self.points[self.next], self.next, True
                self.next += 1
            else:
                point[lane] = -1
        return (lanes, *self.place.split(take, pos), self.batch)


def gradient_scales(X, g, points=None) -> tuple[np.ndarray, np.ndarray]:
    """(s, row): s_i = ||x_i|| |g_i| + 1e-4 rms(g), the scale of point i's gradient that the
    tolerance is relative to, and row_j = ||x_j||; with `points`, X holds only those rows and s,
    row are theirs (rms(g) still over every point)."""
    X, g = np.asarray(X), np.asarray(g)
    row = np.linalg.norm(X, axis=1)
    gi = g if points is None else g[points]
    return row * np.abs(gi) + 1e-4 * np.sqrt(np.mean(g * g)) + 1e-300, row


def exact_loo(family: Family | str, X, y, X0, fit: Fit, A, lam, *, XA=None, tol: float = 1e-10,
              chord_iters: int = 30, newton_iters: int = 100, chunk_size: int | None = None,
              memory_budget: int = DEFAULT_MEMORY_BUDGET, track: bool | None = None,
              progress=None, offset=None, jacobi: bool = True, f32_steps: int | None = None,
              points=None) -> Loo:
    """Exact LOO influence on every test point for every training point (see module docstring).

    `A` is H^{-1} at beta_hat and `XA` = X A (computed if absent). `track` forces (True) or
    forbids (False) tracking the coefficients; None decides from the accuracy of A. Raises `NotConvergedError`
    when some point misses the tolerance even after the Newton fallback. `progress`, if given,
    is called with the number of points finished after each step that finishes some.
    `offset` (n,): a GLM with eta = X beta + offset; `fit` must then carry that eta (and g, w at
    it), and the Newton fallback refits with the offset. None (default): no offset. `jacobi`
    False runs the plain chord iteration (as when tracking), for comparison. `f32_steps`: how many
    of each point's first steps run their products in float32 (module docstring, "Mixed
    precision"); None chooses (`_f32_steps`: 4 at tol 1e-10 for non-quadratic families when the
    Jacobi iteration runs, else 0), 0 keeps every product in float64. `points` (indices): leave
    out only these training points (the other columns of the result stay NaN); None: every point.
    `family`: a `Family` or its name.
    """
    family = get_family(family)
    n, p = X.shape
    T = X0.shape[0]
    XA = X @ A if XA is None else XA
    place = _placement()
    B = place.round_up(min(chunk_size or chunk_size_for(n, p, T, memory_budget), n))
    s, row = gradient_scales(X, fit.g)
    target = np.full(n, np.inf)            # threshold on ||G_i|| (set when point i finishes)
    X, y, X0, A, XA = place.replicate(X, y, X0, A, XA)
    eta, g, w, r0, beta = place.replicate(fit.eta, fit.g, fit.w, fit.residual, fit.beta)
    steps = _f32_steps(family, jacobi and track is not True, chord_iters, tol, f32_steps)
    setup = _setup(X, X0, A, XA, w, r0, beta, lam, place.replicate(_probes(p))[0], low=bool(steps))
    lam_beta = lam * float(setup.beta_norm)
    if track is None:
        track = bool(setup.inverse_error > 1e-2 * tol)
    X0A, row_d = place.replicate(setup.X0A, row)
    values = np.full((T, n), np.nan)
    iters = np.zeros(n, dtype=np.int64)
    resid = np.full(n, np.inf)

    # Lanes start with the hardest points (largest |g_i|, most steps), so that the last lanes to
    # finish, which run partly empty, hold quick points.
    wanted = np.ones(n, bool) if points is None else np.isin(np.arange(n), np.asarray(points))
    queue = [i for i in np.argsort(-np.abs(np.asarray(fit.g)), kind="stable") if wanted[i]]
    queue.reverse()                           # pop() from the end
    jacobi = jacobi and not track
    if jacobi:   # lanes start from warm-started points (float32 steps unless f32_steps is 0)
        steps = steps if bool(setup.fits) and n < 2 ** 22 else 0
        X32, XA32 = place.replicate(setup.X32, setup.XA32) if steps else (None, None)
        c32 = float32_error_constants(n, float(setup.fro))
        lanes = _JLanes(*place.split(*_empty_jlanes(B, n, p, T, X.dtype)))
        m0 = (np.abs(np.asarray(fit.g)) + np.abs(np.asarray(y)) + np.asarray(fit.w) * np.abs(np.asarray(fit.eta))) * row
        lev, tol_s, m0, u, u0 = place.replicate(setup.lev, tol * s, m0, setup.u, setup.u0)
        warm = _WarmQueue(queue, B, place, steps, family, (X, y, eta, g, w, XA, X0A, X32, XA32, u, lev))
    else:
        lanes = _Lanes(*place.split(*_empty_lanes(B, n, p, T, track, X.dtype)))
    point = np.full(B, -1)                    # point held by each lane (-1: idle)
    fresh = np.ones(B, bool)
    while True:
        new_idx = np.zeros(B, np.int32)
        if jacobi:
            lanes, take, pos, batch = warm.fill(lanes, fresh, point)
        else:
            for lane in np.flatnonzero(fresh):
                if queue:
                    point[lane] = new_idx[lane] = queue.pop()
                else:
                    point[lane] = -1
        if (point < 0).all():
            break
        if jacobi:
            lanes, gnorm, floor, checked = _jacobi_step(lanes, take, pos, batch, X, y, eta, g, w, XA, X0A, u, u0, lev,
                                                        tol_s, row_d, m0, lam_beta, X32, c32, family=family,
                                                        last=chord_iters, low=bool(steps))
            checked = np.asarray(checked)
        else:
            fresh_d, new_d = place.split(fresh, new_idx)
            lanes, gnorm, floor = _chord_step(lanes, fresh_d, new_d, X, y, eta, g, w, A, XA, X0A, r0,
                                              lam, row_d, lam_beta, family=family, track=track)
            checked = np.ones(B, bool)
        gnorm, floor, it = np.asarray(gnorm), np.asarray(floor), np.asarray(lanes.it)
        active = point >= 0
        thresh = np.maximum(tol * s[np.maximum(point, 0)], floor)
        done = active & ((checked & (gnorm <= thresh)) | ~np.isfinite(gnorm) | (it >= chord_iters))
        gnorm = np.where(checked, gnorm, np.inf)      # a predicted gradient norm proves nothing
        if done.any():
            f = np.asarray(lanes.f)[done]
            idx = point[done]
            values[:, idx] = -f.T
            iters[idx] = it[done]
            target[idx] = np.where(np.isfinite(thresh[done]), thresh[done], tol * s[idx])
            resid[idx] = np.where(np.isfinite(gnorm[done]), gnorm[done] / target[idx], np.inf) * tol
            if progress is not None:
                progress(int(done.sum()))
        fresh = done | ~active

    slow = np.flatnonzero(wanted & (~(resid <= tol) | ~np.all(np.isfinite(values), axis=0)))
    target_d = place.replicate(target)[0]
    offset_d = None if offset is None else place.replicate(offset)[0]
    for start in range(0, slow.size, B):
        idx = slow[start:start + B]
        size = min(B, place.round_up(max(8, 1 << int(np.ceil(np.log2(idx.size))))))  # few shapes
        padded = np.concatenate([idx, np.full(size - idx.size, idx[0])])
        v, it, rr = _loo_newton(place.split(padded)[0], X, y, X0, beta, target_d, lam, tol, offset_d,
                                family=family, max_iter=newton_iters)
        values[:, idx] = np.asarray(v)[:idx.size].T
        iters[idx] += np.asarray(it)[:idx.size]
        resid[idx] = np.asarray(rr)[:idx.size]
    bad = wanted & (~(resid <= tol) | ~np.all(np.isfinite(values), axis=0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise NotConvergedError(
            f"exact LOO did not converge for {int(bad.sum())} of {n} training points "
            f"(first: i = {i}, relative residual {resid[i]:.2e} after {iters[i]} chord and Newton steps); "
            "try a larger lam.")
    return Loo(values, iters, resid, track)
