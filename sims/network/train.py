"""Second-order training of the perceptron to a tight optimum (float64).

Stage 1 (optional warm-up): scipy L-BFGS-B on F from the initialization, `lbfgs_iters` iterations
at most (cheap steps that get into the basin). Stage 2: Newton with the exact Hessian, globalized
as a Levenberg–Marquardt trust region (`theory.solvers.trust_region_newton`, also the network LOO's
fallback and reference refits): the step solves (H + mu I) s = -grad F by Cholesky (mu
raised until the factorization succeeds, i.e. H + mu I is positive definite), is accepted when the
actual decrease of F is at least a quarter of the quadratic model's (mu shrinks after good
steps, grows after bad ones), and the iteration stops when

    ||grad F(theta)|| <= tol * scale(theta),   scale = sum_i v_i |g_i| ||phi_i|| + lam ||theta||,

the size of the terms that cancel at a stationary point (so tol is a relative accuracy; the
rounding floor of grad F is about 1e-16 scale). The dense Hessian is p Hessian-vector products
(forward over reverse), mapped in batches. Training that stops at the iteration cap, or at a point
whose Hessian is not positive definite (a saddle), raises `NotConvergedError`.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory.solvers import Status, check_status, trust_region_newton

from .model import Shapes, features, logistic_parts, make_model, make_objective

HVP_BATCH = 64


class Trained(NamedTuple):
    theta: np.ndarray      # (p,) the minimizer
    rel_grad: float        # ||grad F|| / scale at exit
    newton_iters: int      # Newton (trust-region) steps
    lbfgs_iters: int       # warm-up iterations
    min_eig: float         # smallest eigenvalue of the exact Hessian at theta (> 0: strict minimum)


@partial(jax.jit, static_argnames=("shapes",))
def value_grad(shapes, theta, X, y, lam, weights):
    return jax.value_and_grad(make_objective(shapes))(theta, X, y, lam, weights)


@partial(jax.jit, static_argnames=("shapes",))
def dense_hessian(shapes, theta, X, y, lam, weights):
    """The exact p x p Hessian of F (symmetrized), as p Hessian-vector products."""
    grad = jax.grad(make_objective(shapes))

    def hvp(v):
        return jax.jvp(lambda t: grad(t, X, y, lam, weights), (theta,), (v,))[1]

    Hm = jax.lax.map(hvp, jnp.eye(theta.size, dtype=theta.dtype), batch_size=HVP_BATCH)
    return 0.5 * (Hm + Hm.T)


@partial(jax.jit, static_argnames=("shapes",))
def grad_scale(shapes, theta, X, y, lam, weights):
    """sum_i v_i |g_i| ||phi_i|| + lam ||theta|| (module docstring)."""
    _, f_batch = make_model(shapes)
    _, g, _ = logistic_parts(y, f_batch(theta, X))
    phi_norm = jnp.linalg.norm(features(shapes, theta, X), axis=1)
    return jnp.sum(weights * jnp.abs(g) * phi_norm) + lam * jnp.linalg.norm(theta)


def minimize_newton(shapes: Shapes, theta0, X, y, lam, weights, *, tol: float, max_iter: int,
                    target: float | None = None, what: str = "network training"):
    """The trust-region Newton of `theory.solvers.trust_region_newton` (the exact dense Hessian) from
    theta0 to ||grad F|| <= tol * scale (or to ||grad F|| <= target when given). Returns
    (theta, rel_grad, iterations), rel_grad being ||grad F|| / scale, or ||grad F|| / target * tol with
    a target; a status other than CONVERGED (the cap, a non-finite gradient) raises NotConvergedError."""
    def relative(theta, G):
        if target is not None:
            return float(jnp.linalg.norm(G)) / target * tol
        return float(jnp.linalg.norm(G) / grad_scale(shapes, theta, X, y, lam, weights))

    theta, rel, it, status = trust_region_newton(
        lambda t: value_grad(shapes, t, X, y, lam, weights), lambda t: dense_hessian(shapes, t, X, y, lam, weights),
        theta0, relative=relative, tol=tol, max_iter=max_iter)
    check_status(status, what, f"after {it} of at most {max_iter} Newton steps (relative gradient {rel:.2e}, tol {tol:g})",
                 "raise max_iter or lam, or loosen tol")
    return theta, rel, it


def check_minimum(shapes: Shapes, theta, X, y, lam, weights, what: str) -> float:
    """The smallest eigenvalue of the exact Hessian of F at theta; a stationary point that is not a
    strict minimum (smallest eigenvalue <= 0) is Status.INDEFINITE, raised as NotConvergedError."""
    min_eig = float(jnp.linalg.eigvalsh(dense_hessian(shapes, theta, X, y, lam, weights))[0])
    check_status(Status.CONVERGED if min_eig > 0 else Status.INDEFINITE, what,
                 f"(the Hessian at its stationary point, which is not a minimum: smallest eigenvalue {min_eig:.2e})",
                 "change the seed or raise lam")
    return min_eig


def lbfgs_warmup(shapes: Shapes, theta0, X, y, lam, weights, max_iter: int):
    """scipy L-BFGS-B from theta0 for at most max_iter iterations; returns (theta, iterations)."""
    from scipy.optimize import minimize

    def fun(t):
        F, G = value_grad(shapes, jnp.asarray(t), X, y, lam, weights)
        return float(F), np.asarray(G, dtype=float)

    res = minimize(fun, np.asarray(theta0, dtype=float), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": 1e-12, "ftol": 1e-15, "maxcor": 20})
    return jnp.asarray(res.x), int(res.nit)


def train(shapes: Shapes, theta0, X, y, lam: float, *, weights=None, tol: float = 1e-10,
          lbfgs_iters: int = 2000, max_iter: int = 200) -> Trained:
    """L-BFGS warm-up, then trust-region Newton to `tol` (module docstring). Checks that the
    exact Hessian at the result is positive definite (an isolated minimum)."""
    X, y = jnp.asarray(X), jnp.asarray(y)
    v = jnp.ones(X.shape[0], X.dtype) if weights is None else jnp.asarray(weights)
    theta, nit = jnp.asarray(theta0), 0
    if lbfgs_iters > 0:
        theta, nit = lbfgs_warmup(shapes, theta, X, y, lam, v, lbfgs_iters)
    theta, rel, it = minimize_newton(shapes, theta, X, y, lam, v, tol=tol, max_iter=max_iter)
    min_eig = check_minimum(shapes, theta, X, y, lam, v, "network training")
    return Trained(np.asarray(theta), rel, it, nit, min_eig)
