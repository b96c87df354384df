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

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from compilecache import cached_jit
from .errors import EstimatorDoesNotExistError, NotConvergedError
from .families import Family
from .families.gaussian import ClosedForm as GaussianClosedForm
from .glm_law import DEFAULT_NODES, atoms, quadrature
from .solvers import damped_newton_root
from .traces import mp_b

TOL = 1e-12
MAX_NEWTON = 60


class FixedPoint(NamedTuple):
    c: float      # leverage constant
    m: float      # <beta*, beta_hat>/p
    r: float      # cavity noise level: z = (m/gamma^2) s + r xi
    q: float      # ||beta_hat||^2/p = m^2/gamma^2 + r^2


def gaussian_fixed_point(delta, lam, gamma, sigma) -> FixedPoint:
    """The gaussian family's closed form (`families.gaussian.ClosedForm.fixed_point`) as a FixedPoint."""
    return FixedPoint(*GaussianClosedForm.fixed_point(delta, lam, gamma, sigma))


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


@cached_jit(static_argnames=("family",))
def _newton(x0, grid, delta, lam, *, family):
    """(x, max|F|, status) of `solvers.damped_newton_root` on (F1)-(F3)."""
    F = partial(_residual, grid=grid, family=family, delta=delta, lam=lam)
    return damped_newton_root(F, x0, tol=TOL, max_steps=MAX_NEWTON)


def _path_step(grid_shared, family, carry, point):
    """One point of a curve: Newton from the previous solution linearly extrapolated."""
    x_prev, x_prev2 = carry
    delta, lam, slope, grid = point
    x0 = x_prev + slope * (x_prev - x_prev2)
    F = partial(_residual, grid=grid_shared if grid is None else grid, family=family, delta=delta, lam=lam)
    x, res, _ = damped_newton_root(F, x0, tol=TOL, max_steps=MAX_NEWTON)
    return (x, x_prev), (x, res)


@cached_jit(static_argnames=("family",))
def _newton_path(x_first, grid, grids, deltas, lams, slopes, *, family):
    """Points 1.. of a curve in one program (`lax.scan`): point k starts from
    x_{k-1} + slope_k (x_{k-1} - x_{k-2}) (slope_1 = 0). The grid is shared (`grid`) or one per
    point (`grids`, stacked; then `grid` is None). Returns (x, max|F|) per point."""
    step = partial(_path_step, grid, family)
    _, (xs, res) = jax.lax.scan(step, (x_first, x_first), (deltas, lams, slopes, grids))
    return xs, res


def solve_fixed_point_path(family: Family, deltas, lams, gammas, sigma: float, grids=None,
                           nodes: int = DEFAULT_NODES) -> list[tuple[FixedPoint, np.ndarray]]:
    """`solve_fixed_point` along a curve (arrays deltas, lams, gammas of one length), each point
    warm-started from the previous ones linearly extrapolated in the curve's parameter. The first
    point is solved on the host (with its retries); the rest run as one compiled scan, and from
    the first point where Newton fails the host takes over (`solve_fixed_point`, with retries and
    continuation). `grids` (stacked, one per point) replaces the shared quadrature grid of a
    curve in gamma."""
    deltas, lams, gammas = (np.asarray(v, dtype=float) for v in (deltas, lams, gammas))
    values = _curve_parameter(deltas, lams, gammas)
    for delta, lam, gamma in zip(deltas, lams, gammas):
        _check_exists(family, delta, lam, gamma)
    slopes = np.zeros(len(values))           # x_k starts from x_{k-1} + slope_k (x_{k-1} - x_{k-2})
    with np.errstate(all="ignore"):
        for k in range(2, len(values)):
            if values[k - 1] != values[k - 2]:
                slopes[k] = (values[k] - values[k - 1]) / (values[k - 1] - values[k - 2])
    solved = [solve_fixed_point(family, deltas[0], lams[0], gammas[0], sigma, nodes=nodes)]
    if len(values) > 1 and family.closed_form is None:
        grid = None if grids is not None else quadrature(family, gammas[0], sigma, nodes)
        sub = None if grids is None else jax.tree.map(lambda a: a[1:], grids)
        xs, res = _newton_path(jnp.asarray(solved[0][1]), grid, sub, jnp.asarray(deltas[1:]),
                               jnp.asarray(lams[1:]), jnp.asarray(slopes[1:]), family=family)
        xs, res = np.asarray(xs), np.asarray(res)
        for k in range(1, len(values)):
            x = xs[k - 1]
            if not (res[k - 1] <= TOL and np.all(np.isfinite(x))):
                break
            solved.append((_from_unknowns(x, gammas[k]), x))
    for k in range(len(solved), len(values)):       # the host from the first failure on
        x0 = solved[-1][1] if k < 2 else solved[-1][1] + slopes[k] * (solved[-1][1] - solved[-2][1])
        solved.append(solve_fixed_point(family, deltas[k], lams[k], gammas[k], sigma, nodes=nodes, x0=x0))
    return solved


def _curve_parameter(deltas, lams, gammas) -> np.ndarray:
    """The parameter that varies along a curve (the first of delta, lam, gamma that is not constant)."""
    for v in (deltas, lams, gammas):
        if np.any(v != v[0]):
            return v
    return deltas


def _start(family, delta, lam, gamma):
    """Heuristic start: the gaussian fixed point at the curvature scale of the family."""
    wbar = family.curvature(gamma)
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
    wbar = family.curvature(gamma)
    lam_eff = max(lam, 1e-3) / wbar
    x[1] = gamma * (1.0 - lam_eff * float(mp_b(lam_eff, delta)))
    return x


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


def solve_fixed_point(family: Family, delta: float, lam: float, gamma: float, sigma: float,
                      nodes: int = DEFAULT_NODES, x0=None) -> tuple[FixedPoint, np.ndarray]:
    """Solve (F1)-(F3); return the FixedPoint and the raw unknowns x = (log c, a, log r).

    Raises EstimatorDoesNotExistError for lam = 0 beyond the existence boundary (delta <= 1, or
    logistic separability delta <= delta_sep(gamma)) and NotConvergedError if Newton with lam
    continuation fails.
    """
    with np.errstate(all="ignore"):
        return _solve_fixed_point(family, delta, lam, gamma, sigma, nodes, x0)


def _check_exists(family, delta, lam, gamma):
    """Raise EstimatorDoesNotExistError where the unregularized estimator does not exist."""
    if lam == 0.0:
        if delta <= 1.0:
            raise EstimatorDoesNotExistError(
                f"with lam = 0 the estimator needs n > p (delta > 1), got delta = {delta:g}.")
        if family.separability is not None:
            d_sep = family.separability(gamma)
            if delta <= d_sep:
                raise EstimatorDoesNotExistError(
                    f"with lam = 0 the {family.name} MLE does not exist: the data are separable for "
                    f"delta <= {d_sep:.4f} at gamma = {gamma:g} (Candès–Sur), got delta = {delta:g}.")


def _solve_fixed_point(family, delta, lam, gamma, sigma, nodes, x0):
    _check_exists(family, delta, lam, gamma)
    closed = family.closed_form
    if closed is not None:
        fp = FixedPoint(*(float(v) for v in closed.fixed_point(delta, lam, gamma, sigma)))
        return fp, np.array([np.log(fp.c), fp.m / gamma if gamma > 0 else 0.0, np.log(fp.r)])
    grid = quadrature(family, gamma, sigma, nodes)

    def attempt(x, lam_):
        x, res, _ = _newton(jnp.asarray(x), grid, delta, lam_, family=family)
        return np.asarray(x), float(res)

    x, res = attempt(_start(family, delta, lam, gamma) if x0 is None else x0, lam)
    if not res <= TOL:
        x, res = attempt(_start_shrunk(family, delta, lam, gamma), lam)
    if not res <= TOL:
        x, res = _continuation(attempt, family, delta, lam, gamma)
    if not (res <= TOL and np.all(np.isfinite(x))):
        raise NotConvergedError(
            f"the {family.name} fixed point did not converge (delta = {delta:g}, lam = {lam:g}, "
            f"gamma = {gamma:g}; residual {res:.1e}).")
    return _from_unknowns(x, gamma), x


def _from_unknowns(x, gamma) -> FixedPoint:
    """The FixedPoint of the unknowns x = (log c, a, log r)."""
    c, a, r = float(np.exp(x[0])), float(x[1]), float(np.exp(x[2]))
    return FixedPoint(c, a * gamma, r, a * a + r * r)
