"""The iterative solvers of trak-sim and their one status type.

Used by the theory's fixed points (`fixed_point`, `general`), its traces (`traces`), and the
simulation's GLM fit, exact LOO and LDS refits (`sims.engine`). Every solver runs inside jit and
reports a `Status`; the host turns a status other than CONVERGED into a named error
(`theory.errors`), never a silent NaN.

    damped_newton_root(F, x0)    Newton on a residual F(x) = 0, step capped, backtracking on max|F|
    bisect(go_left, lo, hi, n)   n halvings of a bracket, go_left(mid) says the root is below mid
    bracket_root(f, lo, hi)      a scalar root on the host: grow the bracket, then Brent's method
"""

from __future__ import annotations

from enum import IntEnum

import jax
import jax.numpy as jnp


class Status(IntEnum):
    """Outcome of a solver (an int32 inside jit)."""

    CONVERGED = 0
    MAX_STEPS = 1          # the iteration cap was reached before the tolerance
    NON_FINITE = 2         # an iterate or residual overflowed
    SINGULAR = 3           # the Jacobian / Hessian could not be solved against
    LINE_SEARCH = 4        # no step along the Newton direction decreased the merit function
    DOES_NOT_EXIST = 5     # the problem has no (unique) solution, e.g. separable data with lam = 0


STATUS_TEXT = {
    Status.CONVERGED: "converged",
    Status.MAX_STEPS: "reached the iteration cap",
    Status.NON_FINITE: "produced non-finite values",
    Status.SINGULAR: "met a singular Jacobian",
    Status.LINE_SEARCH: "could not decrease its residual along the Newton direction",
    Status.DOES_NOT_EXIST: "has no solution",
}


def damped_newton_root(F, x0, *, tol: float, max_steps: int, max_step: float = 2.0):
    """Solve F(x) = 0 (x of a few unknowns) by Newton with the Jacobian by forward-mode autodiff.

    Each step is capped at max|dx| <= max_step and backtracks (halving, down to 1/1024) until
    max|F| decreases by the Armijo factor 1 - 1e-4 t. Every trial point is evaluated with its
    Jacobian in one forward pass (`jax.jacfwd(..., has_aux=True)`), so an accepted step (nearly
    all are full steps) already carries the Jacobian of the next: one evaluation per step.
    Returns (x, max|F(x)|, status): CONVERGED when max|F| <= tol, NON_FINITE when the residual
    overflowed, LINE_SEARCH when no step decreased it, MAX_STEPS otherwise.
    """
    def with_value(x):
        R = F(x)
        return R, R

    def evaluate(x):
        J, R = jax.jacfwd(with_value, has_aux=True)(x)     # one forward pass: F(x) and its Jacobian
        return R, J

    def cond(state):
        x, R, J, it, status = state
        res = jnp.max(jnp.abs(R))
        return (res > tol) & (status == Status.CONVERGED) & (it < max_steps) & jnp.isfinite(res)

    def body(state):
        x, R, J, it, status = state
        res = jnp.max(jnp.abs(R))
        dx = jnp.linalg.solve(J, -R)
        dx = jnp.where(jnp.all(jnp.isfinite(dx)), dx, jnp.zeros_like(dx))
        dx = dx * jnp.minimum(1.0, max_step / jnp.max(jnp.abs(dx)))

        def trial(t):
            R_new, J_new = evaluate(x + t * dx)
            return R_new, J_new, jnp.nan_to_num(jnp.max(jnp.abs(R_new)), nan=jnp.inf)

        def ls_cond(ls):
            t, _, _, val = ls
            return (~(val <= (1.0 - 1e-4 * t) * res)) & (t > 1.0 / 1024)

        def ls_body(ls):
            t = 0.5 * ls[0]
            return (t, *trial(t))

        t, R_new, J_new, val = jax.lax.while_loop(ls_cond, ls_body, (1.0, *trial(1.0)))
        ok = val < res
        return (jnp.where(ok, x + t * dx, x), jnp.where(ok, R_new, R), jnp.where(ok, J_new, J), it + 1,
                jnp.where(ok, status, jnp.int32(Status.LINE_SEARCH)))

    x, R, _, it, status = jax.lax.while_loop(cond, body, (x0, *evaluate(x0), 0, jnp.int32(Status.CONVERGED)))
    res = jnp.max(jnp.abs(R))
    status = jnp.where(res <= tol, jnp.int32(Status.CONVERGED),
             jnp.where(~jnp.isfinite(res), jnp.int32(Status.NON_FINITE),
             jnp.where(status == Status.LINE_SEARCH, status, jnp.int32(Status.MAX_STEPS))))
    return x, res, status


def bisect(go_left, lo, hi, iters: int):
    """`iters` halvings of [lo, hi]: the bracket keeps [lo, mid] where go_left(mid), else
    [mid, hi]. Returns the final (lo, hi)."""
    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        left = go_left(mid)
        return jnp.where(left, lo, mid), jnp.where(left, mid, hi)

    return jax.lax.fori_loop(0, iters, body, (lo, hi))


def brentq(*args, **kwargs):
    """scipy.optimize.brentq, imported on first use (scipy.optimize costs ~0.2 s of every start-up)."""
    from scipy.optimize import brentq as _brentq

    return _brentq(*args, **kwargs)


def bracket_root(f, lo: float, hi: float, *, sign_at_lo: int, grow: float = 2.0, xtol: float = 1e-300,
                 rtol: float = 1e-15, max_grow: int = 2000) -> float:
    """The root of a scalar function f on the host: hi *= grow while f(hi) has the sign f has at lo
    (`sign_at_lo`, +1 or -1, known to the caller: f is not evaluated at lo, often a pole), then
    Brent's method on (lo, hi). Raises NotConvergedError when no sign change is found."""
    import math

    from .errors import NotConvergedError

    for _ in range(max_grow):
        v = f(hi)
        if not (v * sign_at_lo > 0):            # opposite sign, zero or NaN: stop growing
            break
        hi *= grow
    else:
        raise NotConvergedError(f"no sign change of the scalar equation up to {hi:g}.")
    if isinstance(v, float) and math.isnan(v):
        raise NotConvergedError("the scalar equation is not finite at the end of its bracket.")
    return brentq(f, lo, hi, xtol=xtol, rtol=rtol)
