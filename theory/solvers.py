"""The iterative solvers of trak-sim and their one status type.

Used by the theory's fixed points (`fixed_point`, `general`), its traces (`traces`), the
simulation's GLM fit, exact LOO and LDS refits (`sims.engine`), the planner's fit
(`sims.runs.features`) and the network's training and LOO (`sims.network`). Every solver reports a
`Status`; the host turns a status other than CONVERGED into a named error (`theory.errors`,
`check_status`), never a silent NaN.

    damped_newton_root(F, x0)    Newton on a residual F(x) = 0, step capped, backtracking on max|F|
    damped_newton_minimize(...)  the GLM fits: Newton on a convex objective, Armijo backtracking, the
                                 linear solve the caller's (Cholesky in the engine, CG in the planner)
    trust_region_newton(...)     the network's training and LOO refits: Levenberg–Marquardt Newton
    conjugate_gradient(A, b)     preconditioned CG on matrix-vector products (planner fit, network LOO)
    bisect(go_left, lo, hi, n)   n halvings of a bracket, go_left(mid) says the root is below mid
    bracket_root(f, lo, hi)      a scalar root on the host: grow the bracket, then Brent's method
    check_status(status, what)   the named error of a solver outcome other than CONVERGED

The jit-able solvers take `while_loop` (default `jax.lax.while_loop`); `host_while_loop` runs the
same code eagerly, for products that cannot run inside jit (features streamed from disk).
"""

from __future__ import annotations

from enum import IntEnum

import jax
import jax.numpy as jnp
import numpy as np


class Status(IntEnum):
    """Outcome of a solver (an int32 inside jit)."""

    CONVERGED = 0
    MAX_STEPS = 1          # the iteration cap was reached before the tolerance
    NON_FINITE = 2         # an iterate or residual overflowed
    SINGULAR = 3           # the Jacobian / Hessian could not be solved against
    LINE_SEARCH = 4        # no step along the Newton direction decreased the merit function
    DOES_NOT_EXIST = 5     # the problem has no (unique) solution, e.g. separable data with lam = 0
    INDEFINITE = 6         # a curvature d^T A d <= 0 met by conjugate gradients (A not positive definite)


STATUS_TEXT = {
    Status.CONVERGED: "converged",
    Status.MAX_STEPS: "reached the iteration cap",
    Status.NON_FINITE: "produced non-finite values",
    Status.SINGULAR: "met a singular Jacobian",
    Status.LINE_SEARCH: "could not decrease its residual along the Newton direction",
    Status.DOES_NOT_EXIST: "has no solution",
    Status.INDEFINITE: "met a matrix that is not positive definite",
}


def host_while_loop(cond, body, state):
    """`jax.lax.while_loop` run eagerly on the host (a Python loop): the solvers below take it as
    `while_loop` where their products cannot run inside jit (features streamed from disk)."""
    while bool(cond(state)):
        state = body(state)
    return state


def conjugate_gradient(matvec, b, *, precond, atol, max_iter: int, while_loop=jax.lax.while_loop):
    """Solve A x = b, A symmetric positive definite given by its products matvec(v) = A v, by
    conjugate gradients preconditioned with precond(r) = M^{-1} r, from x = 0: with z = M^{-1} r,

        alpha = r^T z / d^T A d,  x += alpha d,  r -= alpha A d,  d = z_new + (r_new^T z_new / r^T z) d,

    until ||r|| <= atol (no step when ||b|| <= atol). Returns (x, steps, status): CONVERGED,
    MAX_STEPS after max_iter steps (x is then the last iterate: from x = 0 every iterate is a
    descent direction of x^T A x / 2 - b^T x, which inexact Newton uses), or INDEFINITE when a
    curvature d^T A d <= 0 is met (x the iterate before it). Jit-able and vmap-able; with
    `while_loop=host_while_loop` it runs eagerly with host matvecs."""
    running = jnp.int32(Status.MAX_STEPS)

    def cond(state):
        return (state[-1] == running) & (state[-2] < max_iter)

    def body(state):
        x, r, d, rz, it, _ = state
        Ad = matvec(d)
        curv = d @ Ad
        alpha = rz / curv
        r_new = r - alpha * Ad
        z = precond(r_new)
        rz_new = r_new @ z
        positive = curv > 0
        status = jnp.where(~positive, jnp.int32(Status.INDEFINITE),
                           jnp.where(jnp.linalg.norm(r_new) <= atol, jnp.int32(Status.CONVERGED), running))
        return (jnp.where(positive, x + alpha * d, x), r_new, z + (rz_new / rz) * d, rz_new, it + 1, status)

    z = precond(b)
    status0 = jnp.where(jnp.linalg.norm(b) <= atol, jnp.int32(Status.CONVERGED), running)
    x, _, _, _, it, status = while_loop(cond, body, (jnp.zeros_like(b), b, z, b @ z, 0, status0))
    return x, it, status



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


def damped_newton_minimize(F, gradient, newton_direction, beta0, *, tol, max_iter: int, grad_scale,
                           while_loop=jax.lax.while_loop):
    """Minimize a smooth convex F by damped Newton: with (grad, d) = newton_direction(beta), d
    solving (or, inexactly, approaching) H d = grad (the caller's linear solve: Cholesky of the
    Hessian, or conjugate gradients on its products), beta <- beta - t d with t the largest of
    1, 1/2, 1/4, ... > 1e-12 meeting Armijo's F(beta - t d) <= F(beta) - 1e-4 t grad^T d (the full
    step when grad^T d <= 1e-13 (|F| + 1), the rounding level of F), until
    ||gradient(beta)|| <= tol * grad_scale.

    Returns (beta, steps, rel, status), rel = ||gradient|| / grad_scale at the last trial point:
    CONVERGED, SINGULAR (a non-finite direction), NON_FINITE (an overflowing iterate or gradient),
    LINE_SEARCH (no step decreased F) or MAX_STEPS; beta is the last accepted iterate. Jit-able
    and vmap-able; `while_loop=host_while_loop` runs it eagerly with host products."""
    ok = jnp.int32(Status.CONVERGED)
    gnorm0 = jnp.maximum(grad_scale, 1e-300)

    def cond(state):
        beta, it, status, rel = state
        return (status == ok) & (rel > tol) & (it < max_iter)

    def body(state):
        beta, it, _, _ = state
        grad, d = newton_direction(beta)
        f0, slope = F(beta), grad @ d

        def ls_cond(ls):
            t, f_new = ls
            armijo = f_new <= f0 - 1e-4 * t * slope
            tiny = slope <= 1e-13 * (jnp.abs(f0) + 1.0)   # rounding regime: take the full step
            return ~(armijo | tiny | ~jnp.isfinite(f0)) & (t > 1e-12)

        def ls_body(ls):
            t, _ = ls
            t = 0.5 * t
            return t, jnp.nan_to_num(F(beta - t * d), nan=jnp.inf)

        t, _ = while_loop(ls_cond, ls_body, (1.0, jnp.nan_to_num(F(beta - d), nan=jnp.inf)))
        beta_new = beta - t * d
        g_new = gradient(beta_new)
        rel = jnp.linalg.norm(g_new) / gnorm0
        status = jnp.where(~jnp.all(jnp.isfinite(d)), jnp.int32(Status.SINGULAR),
                 jnp.where(~jnp.all(jnp.isfinite(beta_new)) | ~jnp.isfinite(rel), jnp.int32(Status.NON_FINITE),
                 jnp.where(t <= 1e-12, jnp.int32(Status.LINE_SEARCH), ok))).astype(jnp.int32)
        beta_new = jnp.where(status == ok, beta_new, beta)
        return beta_new, it + 1, status, rel

    rel0 = jnp.linalg.norm(gradient(beta0)) / gnorm0
    beta, it, status, rel = while_loop(cond, body, (beta0, 0, ok, rel0))
    status = jnp.where((status == ok) & (rel > tol), jnp.int32(Status.MAX_STEPS), status).astype(jnp.int32)
    return beta, it, rel, status


@jax.jit
def _levenberg_marquardt_step(H, grad, mu):
    """s = -(H + mu I)^{-1} grad by Cholesky (NaN when H + mu I is not positive definite) and the
    decrease of the quadratic model, -(grad^T s + s^T H s / 2)."""
    L = jnp.linalg.cholesky(H + mu * jnp.eye(H.shape[0], dtype=H.dtype))
    s = -jax.scipy.linalg.cho_solve((L, True), grad)
    return s, -(grad @ s + 0.5 * s @ (H @ s))


def trust_region_newton(value_grad, hessian, x0, *, relative, tol: float, max_iter: int):
    """Minimize F by Newton with the exact Hessian H, globalized as a Levenberg–Marquardt trust
    region (on the host, with the caller's compiled value_grad(x) = (F, grad F) and hessian(x) = H):
    the step s solves (H + mu I) s = -grad by Cholesky, mu raised (x4, from 1e-10 max|H_jj|) until
    H + mu I is positive definite; it is taken when F decreases by at least a quarter of the model's
    decrease -(grad^T s + s^T H s / 2) (or, with a model decrease at the rounding level of F, when
    ||grad|| decreases), and then mu shrinks x4 (to 0 below 1e-12 max|H_jj|) if F decreased by 3/4
    of it; a rejected step raises mu (x4, at least 1e-6 max|H_jj|). Stops when
    relative(x, grad) <= tol. Returns (x, rel, steps, status): CONVERGED, MAX_STEPS at the cap, or
    NON_FINITE when the relative gradient is not finite."""
    x = jnp.asarray(x0)
    F, G = value_grad(x)
    rel = relative(x, G)
    mu, it, H = 0.0, 0, None
    while rel > tol and it < max_iter:
        it += 1
        if H is None:
            H = hessian(x)
        hscale = float(jnp.max(jnp.abs(jnp.diagonal(H))))
        s, pred = _levenberg_marquardt_step(H, G, mu)
        while not bool(jnp.all(jnp.isfinite(s))):
            mu = max(4.0 * mu, 1e-10 * hscale)
            s, pred = _levenberg_marquardt_step(H, G, mu)
        F_new, G_new = value_grad(x + s)
        pred = float(pred)
        actual = float(F - F_new)
        rounding = 1e-13 * (abs(float(F)) + 1.0)
        good = np.isfinite(actual) and (actual >= 0.25 * pred or
                                        (pred <= rounding and float(jnp.linalg.norm(G_new)) < float(jnp.linalg.norm(G))))
        if good:
            x, F, G, H = x + s, F_new, G_new, None
            rel = relative(x, G)
            if actual >= 0.75 * pred:
                mu = mu / 4.0 if mu > 1e-12 * hscale else 0.0
        else:
            mu = max(4.0 * mu, 1e-6 * hscale)
    status = (Status.CONVERGED if rel <= tol else Status.NON_FINITE if not np.isfinite(rel) else Status.MAX_STEPS)
    return x, rel, it, status


def bisect(go_left, lo, hi, iters: int):
    """`iters` halvings of [lo, hi]: the bracket keeps [lo, mid] where go_left(mid), else
    [mid, hi]. Returns the final (lo, hi)."""
    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        left = go_left(mid)
        return jnp.where(left, lo, mid), jnp.where(left, mid, hi)

    return jax.lax.fori_loop(0, iters, body, (lo, hi))


def check_status(status, what: str, detail: str = "", hint: str = "") -> None:
    """Raise the named error of a solver outcome: nothing for CONVERGED, EstimatorDoesNotExistError
    for DOES_NOT_EXIST, NotConvergedError otherwise, as one sentence "<what> <status text>[ detail][; hint]."."""
    from .errors import EstimatorDoesNotExistError, NotConvergedError

    status = Status(int(status))
    if status == Status.CONVERGED:
        return
    error = EstimatorDoesNotExistError if status == Status.DOES_NOT_EXIST else NotConvergedError
    raise error(f"{what} {STATUS_TEXT[status]}{' ' + detail if detail else ''}{'; ' + hint if hint else ''}.")


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
