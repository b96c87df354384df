"""Fixed point of the fitted ridge GLM in the proportional regime (docs/theory.md §1).

Unknowns: the leverage constant c = lim tau(H^{-1}) = lim x_i^T H_{-i}^{-1} x_i, the overlap
a = m / gamma with m = <beta*, beta_hat>/p, and the cavity noise level r. With the limit law of
`glm_law` (z = a nu + r xi, eta = prox_{c l(y,.)}(z), g = l'(y, eta), w = l''(y, eta)):

    (F1)  1/c = lam + delta E[ w / (1 + c w) ]
    (F2)  lam a = -delta E[ nu g ]                (nu = s / gamma; a = 0 when gamma = 0)
    (F3)  r^2 = delta c^2 E[ g^2 ]

Solved in x = (log c, a, log r) by damped Newton (Jacobian by forward-mode autodiff through the
quadrature and the prox), inside jit with an explicit convergence status; when Newton from the
heuristic start fails, it is retried from a start with the gaussian shrinkage of the overlap (for
strong ridges), then the host continues in lam from a strongly regularized problem. Host-side numpy
arithmetic runs under `np.errstate(all="ignore")`: a non-finite intermediate is caught by the
convergence check and raised as NotConvergedError, never printed as a RuntimeWarning.
The gaussian family has the closed form (Marchenko–Pastur) of `gaussian_fixed_point`.
"""

from __future__ import annotations

from functools import lru_cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .errors import EstimatorDoesNotExistError, NotConvergedError
from .glm_law import DEFAULT_NODES, atoms, quadrature
from .traces import mp_b

TOL = 1e-12
MAX_NEWTON = 60


class FixedPoint(NamedTuple):
    c: float      # leverage constant
    m: float      # <beta*, beta_hat>/p
    r: float      # cavity noise level: z = (m/gamma^2) s + r xi
    q: float      # ||beta_hat||^2/p = m^2/gamma^2 + r^2


def gaussian_fixed_point(delta, lam, gamma, sigma) -> FixedPoint:
    """Closed form for l = (y - eta)^2/2 (w = 1): c = b(lam), m = gamma^2 (1 - lam c),
    r^2 = delta c^2 [(m - gamma^2)^2/gamma^2 + sigma^2] / [(1 + c)^2 - delta c^2]."""
    c = mp_b(lam, delta)
    m = gamma**2 * (1.0 - lam * c)
    bias2 = (lam * c) ** 2 * gamma**2          # (m - gamma^2)^2 / gamma^2
    r2 = delta * c**2 * (bias2 + sigma**2) / ((1.0 + c) ** 2 - delta * c**2)
    a2 = jnp.where(gamma > 0, m**2 / jnp.where(gamma > 0, gamma**2, 1.0), 0.0)
    return FixedPoint(c, m, jnp.sqrt(r2), a2 + r2)


def _residual(x, grid, family, delta, lam):
    logc, a, logr = x
    c, r = jnp.exp(logc), jnp.exp(logr)
    nu, _, g, w, wt = atoms(grid, family, c, a, r)
    e_w = jnp.sum(wt * w / (1.0 + c * w))
    e_nug = jnp.sum(wt * nu * g)
    e_g2 = jnp.sum(wt * g * g)
    return jnp.stack([
        -logc - jnp.log(lam + delta * e_w),                                   # (F1), log form
        (lam * a + delta * e_nug) / (lam * jnp.abs(a) + delta * jnp.sqrt(e_g2)),   # (F2), relative
        2.0 * logr - jnp.log(delta * e_g2) - 2.0 * logc,                      # (F3), log form
    ])


@partial(jax.jit, static_argnames=("family",))
def _newton(x0, grid, delta, lam, *, family):
    F = partial(_residual, grid=grid, family=family, delta=delta, lam=lam)

    def cond(state):
        x, R, it = state
        res = jnp.max(jnp.abs(R))
        return (res > TOL) & (it < MAX_NEWTON) & jnp.isfinite(res)

    def body(state):
        x, R, it = state
        res = jnp.max(jnp.abs(R))
        J = jax.jacfwd(F)(x)
        dx = jnp.linalg.solve(J, -R)
        dx = jnp.where(jnp.all(jnp.isfinite(dx)), dx, jnp.zeros_like(dx))
        dx = dx * jnp.minimum(1.0, 2.0 / jnp.max(jnp.abs(dx)))   # trust region: |step| <= 2

        def trial(t):
            R_new = F(x + t * dx)
            return R_new, jnp.nan_to_num(jnp.max(jnp.abs(R_new)), nan=jnp.inf)

        def ls_cond(ls):
            t, _, val = ls
            return (~(val <= (1.0 - 1e-4 * t) * res)) & (t > 1.0 / 1024)

        def ls_body(ls):
            t = 0.5 * ls[0]
            return (t, *trial(t))

        t, R_new, val = jax.lax.while_loop(ls_cond, ls_body, (1.0, *trial(1.0)))
        ok = val < res
        return (jnp.where(ok, x + t * dx, x), jnp.where(ok, R_new, R),
                jnp.where(ok, it + 1, MAX_NEWTON))

    x, R, it = jax.lax.while_loop(cond, body, (x0, F(x0), 0))
    return x, jnp.max(jnp.abs(R))


def _start(family, delta, lam, gamma):
    """Heuristic start: the gaussian fixed point at the curvature scale of the family."""
    wbar = {"logistic": 0.2, "poisson": float(np.exp(gamma**2 / 2))}.get(family, 1.0)
    lam_eff = max(lam, 1e-3) / wbar
    t = lam_eff + delta - 1.0       # traces.mp_b in numpy: op by op in JAX it would compile 6 programs
    disc = np.sqrt(t * t + 4.0 * lam_eff)
    c = float(2.0 / (t + disc) if t > 0 else (disc - t) / (2.0 * lam_eff)) / wbar
    a = gamma * 0.5
    r = np.sqrt(delta) * c * 0.4
    return np.array([np.log(c), a, np.log(max(r, 1e-6))])


def _start_shrunk(family, delta, lam, gamma):
    """`_start` with the overlap of the gaussian fixed point, a = gamma (1 - lam_eff b(lam_eff)),
    which goes to 0 like 1/lam (the start a = gamma/2 is far off for strong ridges)."""
    x = _start(family, delta, lam, gamma)
    wbar = {"logistic": 0.2, "poisson": float(np.exp(gamma**2 / 2))}.get(family, 1.0)
    lam_eff = max(lam, 1e-3) / wbar
    x[1] = gamma * (1.0 - lam_eff * float(mp_b(lam_eff, delta)))
    return x


@lru_cache(maxsize=128)
def logistic_separability_threshold(gamma: float, nodes: int = 200) -> float:
    """delta_sep(gamma) = 1/h(gamma), h = min_t E[(t Y V - Z)_+^2] (Candès & Sur, no intercept).

    V, Z iid N(0,1), Y = +-1 with P(Y = 1 | V) = sigmoid(gamma V). Logistic data are linearly
    separable w.h.p. iff delta = n/p < delta_sep; E[(u - Z)_+^2] = (u^2 + 1) Phi(u) + u phi(u).
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import expit
    from scipy.stats import norm

    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    p_pos = expit(gamma * x)

    def h(t):
        total = 0.0
        for u, prob in ((t * x, p_pos), (-t * x, 1.0 - p_pos)):
            total += np.sum(w * prob * ((u * u + 1.0) * norm.cdf(u) + u * norm.pdf(u)))
        return total

    res = minimize_scalar(h, bounds=(-50.0, 50.0), method="bounded", options=dict(xatol=1e-12))
    return 1.0 / min(res.fun, h(0.0))


def _continuation(attempt, family, delta, lam, gamma):
    """Follow the solution from lam_0 = max(10, 10 lam) down to lam, shrinking the ratio of
    consecutive penalties on failure (lam = 0 is reached from 1e-8)."""
    lam_cur = max(10.0, 10.0 * lam)
    x, res = attempt(_start(family, delta, lam_cur, gamma), lam_cur)
    ratio = 0.5
    while res <= TOL and lam_cur > lam:
        lam_next = lam if lam_cur * ratio <= max(lam, 1e-8) else lam_cur * ratio
        x_try, res_try = attempt(x, lam_next)
        if res_try <= TOL:
            x, lam_cur, ratio = x_try, lam_next, max(ratio * ratio, 0.1)
        elif ratio < 0.99:
            ratio = ratio ** 0.5
        else:
            return x, np.inf
    return x, (res if lam_cur == lam else np.inf)


def solve_fixed_point(family: str, delta: float, lam: float, gamma: float, sigma: float,
                      nodes: int = DEFAULT_NODES, x0=None) -> tuple[FixedPoint, np.ndarray]:
    """Solve (F1)-(F3); return the FixedPoint and the raw unknowns x = (log c, a, log r).

    Raises EstimatorDoesNotExistError for lam = 0 beyond the existence boundary (delta <= 1, or
    logistic separability delta <= delta_sep(gamma)) and NotConvergedError if Newton with lam
    continuation fails.
    """
    with np.errstate(all="ignore"):
        return _solve_fixed_point(family, delta, lam, gamma, sigma, nodes, x0)


def _solve_fixed_point(family, delta, lam, gamma, sigma, nodes, x0):
    if lam == 0.0:
        if delta <= 1.0:
            raise EstimatorDoesNotExistError(
                f"with lam = 0 the estimator needs n > p (delta > 1), got delta = {delta:g}.")
        if family == "logistic":
            d_sep = logistic_separability_threshold(gamma)
            if delta <= d_sep:
                raise EstimatorDoesNotExistError(
                    f"with lam = 0 the logistic MLE does not exist: the data are separable for "
                    f"delta <= {d_sep:.4f} at gamma = {gamma:g} (Candès–Sur), got delta = {delta:g}.")
    if family == "gaussian":
        fp = gaussian_fixed_point(delta, lam, gamma, sigma)
        fp = FixedPoint(*(float(v) for v in fp))
        return fp, np.array([np.log(fp.c), fp.m / gamma if gamma > 0 else 0.0, np.log(fp.r)])
    grid = quadrature(family, gamma, sigma, nodes)

    def attempt(x, lam_):
        x, res = _newton(jnp.asarray(x), grid, delta, lam_, family=family)
        return np.asarray(x), float(res)

    x, res = attempt(_start(family, delta, lam, gamma) if x0 is None else x0, lam)
    if not res <= TOL:
        x, res = attempt(_start_shrunk(family, delta, lam, gamma), lam)
    if not res <= TOL:
        x, res = _continuation(attempt, family, delta, lam, gamma)
    if not (res <= TOL and np.all(np.isfinite(x))):
        raise NotConvergedError(
            f"the {family} fixed point did not converge (delta = {delta:g}, lam = {lam:g}, "
            f"gamma = {gamma:g}; residual {res:.1e}).")
    c, a, r = float(np.exp(x[0])), float(x[1]), float(np.exp(x[2]))
    return FixedPoint(c, a * gamma, r, a * a + r * r), x
