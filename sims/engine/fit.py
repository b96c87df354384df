"""Ridge-regularized GLM fit by damped Newton with a Cholesky solve (jit-compiled).

beta_hat = argmin_beta F(beta),  F(beta) = sum_i l(y_i, x_i^T beta) + (lam/2) ||beta||^2.
The damped Newton of `theory.solvers.damped_newton_minimize` (Armijo backtracking on F), each step
solving H d = grad with H = X^T diag(w) X + lam I by Cholesky (cost n p^2 + p^3/3 flops). It stops
when ||grad F|| <= tol * ||grad F(0)||. (The planner's fit, `sims.runs.features.fit_glm`, is the
same Newton with conjugate gradients on streamed products.)

Failure is a status code computed inside jit and turned into a named error by `check_fit`:
non-finite iterates (overflow), a singular Hessian, a line search that cannot decrease F, or the
iteration cap. With lam = 0 the minimizer may not exist (separable logistic data, n <= p), which
`check_fit` diagnoses with a linear program before choosing the error.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory.errors import EstimatorDoesNotExistError, NotConvergedError
from theory.families import Family, get_family
from theory.solvers import STATUS_TEXT, Status, damped_newton_minimize

from .tiers import tiered_jit

# The shared solver status (theory.solvers.Status), as plain ints for use inside jit.
OK, MAX_ITER, NONFINITE, SINGULAR, LINE_SEARCH = (int(s) for s in (
    Status.CONVERGED, Status.MAX_STEPS, Status.NON_FINITE, Status.SINGULAR, Status.LINE_SEARCH))
_STATUS_TEXT = {
    MAX_ITER: STATUS_TEXT[Status.MAX_STEPS],
    NONFINITE: "produced non-finite values (overflow of the linear predictor)",
    SINGULAR: "met a singular Hessian",
    LINE_SEARCH: "could not decrease the objective along the Newton direction",
}


class Fit(NamedTuple):
    beta: jax.Array       # (p,) minimizer
    eta: jax.Array        # (n,) X beta
    g: jax.Array          # (n,) l'(y, eta)
    w: jax.Array          # (n,) l''(y, eta)
    residual: jax.Array   # (p,) X^T g + lam beta (stationarity residual, ~ 0)
    n_iter: jax.Array     # Newton steps taken
    rel_grad: jax.Array   # ||grad F|| / ||grad F(0)|| at exit
    status: jax.Array     # OK or one of the failure codes above


def objective(family: Family, X, y, beta, lam, weights=None, offset=None):
    """F(beta) = sum_i v_i l(y_i, x_i^T beta + o_i) + (lam/2) ||beta||^2 (sample weights v_i, default 1;
    offsets o_i, default none)."""
    loss = family.loss(y, _linear(X, beta, offset))
    return jnp.sum(loss if weights is None else weights * loss) + 0.5 * lam * beta @ beta


def _linear(X, beta, offset):
    """eta = X beta (+ offset when given; None adds nothing, so the computation is unchanged)."""
    return X @ beta if offset is None else X @ beta + offset


@tiered_jit(static_argnames=("family", "max_iter"))
def newton_fit(X, y, lam, *, family: Family | str, tol=1e-10, max_iter: int = 100, beta0=None,
               weights=None, grad_scale=None, offset=None) -> Fit:
    """Minimize F by damped Newton from `beta0` (default 0); see the module docstring.

    `weights` (n,) multiplies each loss term (0 drops a point: exact leave-one-out refits);
    convergence is ||grad F|| <= tol * grad_scale (default ||grad F(0)||). `offset` (n,) adds a
    fixed o_i to every linear predictor, eta = X beta + o (a GLM with an offset; the returned eta
    includes it); None (default) is the plain model, computed exactly as without the argument.
    `family`: a `Family` or its name (resolved when the program is traced).
    """
    fam = get_family(family)
    n, p = X.shape
    v = jnp.ones(n, X.dtype) if weights is None else weights
    beta0 = jnp.zeros(p, X.dtype) if beta0 is None else beta0
    eye = jnp.eye(p, dtype=X.dtype)
    if grad_scale is None:
        grad_scale = jnp.linalg.norm(X.T @ (v * fam.grad(y, _linear(X, jnp.zeros(p, X.dtype), offset))))

    def F(beta):
        return objective(fam, X, y, beta, lam, v, offset)

    def gradient(beta):
        return X.T @ (v * fam.grad(y, _linear(X, beta, offset))) + lam * beta

    def cholesky_direction(beta):
        """(grad, H^{-1} grad) with H = X^T diag(v w) X + lam I, by Cholesky."""
        eta = _linear(X, beta, offset)
        grad = X.T @ (v * fam.grad(y, eta)) + lam * beta
        H = (X.T * (v * fam.hess(y, eta))) @ X + lam * eye
        return grad, jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(H), True), grad)

    beta, it, rel, status = damped_newton_minimize(F, gradient, cholesky_direction, beta0, tol=tol,
                                                   max_iter=max_iter, grad_scale=grad_scale)
    eta = _linear(X, beta, offset)
    g, w = fam.grad(y, eta), fam.hess(y, eta)
    return Fit(beta, eta, g, w, X.T @ (v * g) + lam * beta, it, rel, status)


def check_fit(fit: Fit, X, y, lam, family: Family | str, what: str = "the ridge GLM fit") -> Fit:
    """Raise the named error matching `fit.status` (host side); return `fit` when it is OK."""
    if lam == 0.0:
        # Without a ridge the gradient also vanishes along a diverging path (separable data), so
        # existence is decided directly rather than from the Newton status.
        why = no_minimizer_reason(np.asarray(X), np.asarray(y), family)
        if why:
            raise EstimatorDoesNotExistError(f"{what} has no minimizer with lam = 0: {why}; use lam > 0.")
    status = int(fit.status)
    if status == OK:
        return fit
    raise NotConvergedError(
        f"{what} {_STATUS_TEXT[status]} after {int(fit.n_iter)} Newton steps "
        f"(relative gradient {float(fit.rel_grad):.2e}); try a larger lam or a smaller gamma.")


def no_minimizer_reason(X: np.ndarray, y: np.ndarray, family: Family | str) -> str | None:
    """Why the unregularized (lam = 0) problem has no unique minimizer, or None if it has one.

    n < p or rank-deficient X: not unique. A binary family (logistic, probit): the classes are
    linearly separable, i.e. some v has (2 y_i - 1) x_i^T v >= 1 for all i (a feasible linear
    program). poisson: some v != 0 has x_i^T v <= 0 for all i with y_i = 0 and x_i^T v = 0 for
    all y_i > 0 (decreasing direction of the loss); this needs n <= p in general position and is
    covered by the rank test.
    """
    n, p = X.shape
    if np.linalg.matrix_rank(X) < p:
        return f"the design has rank {np.linalg.matrix_rank(X)} < p = {p}"
    fam = get_family(family)
    if fam.sample_separable(X, y):
        return f"the two classes are linearly separable (the {fam.name} loss can be driven to 0)"
    return None


@tiered_jit(static_argnames=())
def hessian_inverse(X, w, lam):
    """A = H^{-1}, H = X^T diag(w) X + lam I, by Cholesky (symmetrized); NaN if H is singular."""
    p = X.shape[1]
    H = (X.T * w) @ X + lam * jnp.eye(p, dtype=X.dtype)
    A = jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(H), True), jnp.eye(p, dtype=X.dtype))
    return 0.5 * (A + A.T)
