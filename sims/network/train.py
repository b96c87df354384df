"""Second-order training of the perceptron to a tight optimum (float64).

Stage 1 (optional warm-up): scipy L-BFGS-B on F from the initialization, `lbfgs_iters` iterations
at most (cheap steps that get into the basin). Stage 2: Newton with the exact Hessian, globalized
as a Levenberg–Marquardt trust region: the step solves (H + mu I) s = -grad F by Cholesky (mu
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

from theory.errors import NotConvergedError

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


@jax.jit
def _lm_step(Hm, grad, mu):
    """s = -(H + mu I)^{-1} grad (NaN when H + mu I is not positive definite) and the model decrease."""
    L = jnp.linalg.cholesky(Hm + mu * jnp.eye(Hm.shape[0], dtype=Hm.dtype))
    s = -jax.scipy.linalg.cho_solve((L, True), grad)
    pred = -(grad @ s + 0.5 * s @ (Hm @ s))
    return s, pred


def minimize_newton(shapes: Shapes, theta0, X, y, lam, weights, *, tol: float, max_iter: int,
                    target: float | None = None, what: str = "network training"):
    """Trust-region (Levenberg–Marquardt) Newton from theta0 to ||grad F|| <= tol * scale (or to
    ||grad F|| <= target when given). Returns (theta, rel_grad, iterations), rel_grad being
    ||grad F|| / scale, or ||grad F|| / target * tol with a target; raises NotConvergedError at the cap."""
    theta = jnp.asarray(theta0)
    F, G = value_grad(shapes, theta, X, y, lam, weights)

    def relative(theta, G):
        if target is not None:
            return float(jnp.linalg.norm(G)) / target * tol
        return float(jnp.linalg.norm(G) / grad_scale(shapes, theta, X, y, lam, weights))

    rel = relative(theta, G)
    mu, it = 0.0, 0
    Hm = None
    while rel > tol:
        if it >= max_iter:
            raise NotConvergedError(
                f"{what} reached the iteration cap of {max_iter} Newton steps with relative gradient "
                f"{rel:.2e} > tol {tol:g}; raise max_iter or lam, or loosen tol.")
        it += 1
        if Hm is None:
            Hm = dense_hessian(shapes, theta, X, y, lam, weights)
        hscale = float(jnp.max(jnp.abs(jnp.diagonal(Hm))))
        s, pred = _lm_step(Hm, G, mu)
        while not bool(jnp.all(jnp.isfinite(s))):
            mu = max(4.0 * mu, 1e-10 * hscale)
            s, pred = _lm_step(Hm, G, mu)
        F_new, G_new = value_grad(shapes, theta + s, X, y, lam, weights)
        pred = float(pred)
        actual = float(F - F_new)
        rounding = 1e-13 * (abs(float(F)) + 1.0)
        good = np.isfinite(actual) and (actual >= 0.25 * pred or
                                        (pred <= rounding and float(jnp.linalg.norm(G_new)) < float(jnp.linalg.norm(G))))
        if good:
            theta, F, G, Hm = theta + s, F_new, G_new, None
            rel = relative(theta, G)
            if actual >= 0.75 * pred:
                mu = mu / 4.0 if mu > 1e-12 * hscale else 0.0
        else:
            mu = max(4.0 * mu, 1e-6 * hscale)
    return theta, rel, it


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
    min_eig = float(jnp.linalg.eigvalsh(dense_hessian(shapes, theta, X, y, lam, v))[0])
    if not min_eig > 0:
        raise NotConvergedError(
            f"network training reached a stationary point that is not a minimum (smallest Hessian "
            f"eigenvalue {min_eig:.2e}); change the seed or raise lam.")
    return Trained(np.asarray(theta), rel, it, nit, min_eig)
