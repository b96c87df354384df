"""A one-hidden-layer tanh perceptron as pure functions of a flat parameter vector.

    f(x; theta) = sum_h v_h tanh(z_h) + c,    z_h = a_h^T x + b_h,

theta = ravel(W (H x d) = rows a_h, b (H), v (H), c) in that order (`jax.flatten_util.ravel_pytree`),
p = H (d + 2) + 1 parameters. The training objective is the ridge-penalized logistic loss of the
output (the logit), in the repository's normalization (a sum over points, not a mean):

    F(theta) = sum_i v_i l(y_i, f(x_i; theta)) + (lam / 2) ||theta||^2,   l(y, f) = log(1 + e^f) - y f,

with sample weights v_i (1 by default; 0 removes a point). Derivatives in the logit:
g_i = sigmoid(f_i) - y_i, w_i = sigmoid(f_i) (1 - sigmoid(f_i)).

The after-kernel feature of a point is phi(x) = grad_theta f(x; theta_hat). The Hessian of one
point's loss is  grad^2 l_i = w_i phi_i phi_i^T + g_i grad^2 f_i,  and for this model grad^2 f_i has
rank at most 2H, with the explicit factorization returned by `output_hessian_factors`:

    grad^2 f(x) = U C U^T,   U = [e_{a_h, b_h} (x, 1)  for h | e_{v_h} for h]   (p x 2H),
    C = [[diag(v_h tanh''(z_h)), diag(tanh'(z_h))], [diag(tanh'(z_h)), 0]].

U has orthonormal-direction columns (each a unit block of theta), which the LOO solver uses to
apply (H - grad^2 l_i)^{-1} by a rank-(2H + 1) Woodbury update (`sims.network.loo`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree


class Shapes(NamedTuple):
    d: int   # input dimension
    H: int   # hidden units

    @property
    def p(self) -> int:
        return self.H * (self.d + 2) + 1


def unravel(shapes: Shapes):
    """The function flat theta -> dict(W, b, v, c)."""
    d, H = shapes
    template = {"W": jnp.zeros((H, d)), "b": jnp.zeros(H), "v": jnp.zeros(H), "c": jnp.zeros(())}
    return ravel_pytree(template)[1]


def layout(shapes: Shapes) -> dict:
    """Index ranges [start, stop) of each block in the flat vector. ravel_pytree orders a dict by
    sorted key (W, b, c, v); tests/test_network.py checks this against ravel_pytree."""
    d, H = shapes
    w1 = H * d
    return {"W": (0, w1), "b": (w1, w1 + H), "c": (w1 + H, w1 + H + 1), "v": (w1 + H + 1, w1 + 2 * H + 1)}


def init_params(key, shapes: Shapes):
    """a_h ~ N(0, I/d), v_h ~ N(0, 1/H), b = 0, c = 0 (flat vector)."""
    d, H = shapes
    k1, k2 = jax.random.split(key)
    params = {"W": jax.random.normal(k1, (H, d)) / np.sqrt(d), "b": jnp.zeros(H),
              "v": jax.random.normal(k2, (H,)) / np.sqrt(H), "c": jnp.zeros(())}
    return ravel_pytree(params)[0]


def make_model(shapes: Shapes):
    """(f, f_batch): f(theta, x) the logit of one point, f_batch(theta, X) of every row."""
    unr = unravel(shapes)

    def f(theta, x):
        q = unr(theta)
        return q["v"] @ jnp.tanh(q["W"] @ x + q["b"]) + q["c"]

    def f_batch(theta, X):
        q = unr(theta)
        return jnp.tanh(X @ q["W"].T + q["b"]) @ q["v"] + q["c"]

    return f, f_batch


def logistic_parts(y, f):
    """(loss, g, w) of l(y, f) = log(1 + e^f) - y f, stable for large |f|."""
    loss = jnp.logaddexp(0.0, f) - y * f
    s = jax.nn.sigmoid(f)
    return loss, s - y, s * (1.0 - s)


def make_objective(shapes: Shapes):
    """F(theta, X, y, lam, weights) of the module docstring."""
    _, f_batch = make_model(shapes)

    def F(theta, X, y, lam, weights):
        loss = logistic_parts(y, f_batch(theta, X))[0]
        return jnp.sum(weights * loss) + 0.5 * lam * theta @ theta

    return F


def features(shapes: Shapes, theta, X):
    """phi_i = grad_theta f(x_i; theta), rows of an (n, p) matrix (the after-kernel features)."""
    f, _ = make_model(shapes)
    return jax.vmap(jax.grad(f), in_axes=(None, 0))(theta, X)


def output_hessian_core(shapes: Shapes, theta, x):
    """C (2H x 2H) with grad^2 f(x) = U C U^T (module docstring); U depends only on x and the
    layout (`dense_u`, or applied blockwise by `sims.network.loo`)."""
    H = shapes.H
    q = unravel(shapes)(theta)
    z = q["W"] @ x + q["b"]
    t = jnp.tanh(z)
    t1 = 1.0 - t * t                 # tanh'
    t2 = -2.0 * t * t1               # tanh''
    C = jnp.block([[jnp.diag(q["v"] * t2), jnp.diag(t1)], [jnp.diag(t1), jnp.zeros((H, H))]])
    return C


def dense_u(shapes: Shapes, x):
    """The dense p x 2H matrix U of the module docstring at input x (for tests and small p)."""
    d, H = shapes
    lay = layout(shapes)
    U = np.zeros((shapes.p, 2 * H))
    w0, b0, v0 = lay["W"][0], lay["b"][0], lay["v"][0]
    for h in range(H):
        U[w0 + h * d: w0 + (h + 1) * d, h] = np.asarray(x)
        U[b0 + h, h] = 1.0
        U[v0 + h, H + h] = 1.0
    return U


def distinct_units(shapes: Shapes, theta, tol: float = 1e-3) -> dict:
    """Hidden units at theta that are neither dead nor copies of one another.

    A unit is dead when ||(a_h, b_h)|| |v_h| (its output scale) is below `tol` times the largest;
    two live units are copies when their input weights (a_h, b_h) are parallel or anti-parallel
    (tanh is odd) to within |cos| > 1 - tol. Returns {"hidden", "dead", "distinct", "max_abs_cos"}.
    """
    q = unravel(shapes)(theta)
    Wt = np.concatenate([np.asarray(q["W"]), np.asarray(q["b"])[:, None]], axis=1)
    norms = np.linalg.norm(Wt, axis=1)
    scale = norms * np.abs(np.asarray(q["v"]))
    live = np.flatnonzero(scale > tol * max(scale.max(), 1e-300))
    U = Wt[live] / norms[live, None]
    cos = np.abs(U @ U.T) - np.eye(live.size)
    reps: list[int] = []
    for j in range(live.size):
        if not any(cos[j, r] > 1.0 - tol for r in reps):
            reps.append(j)
    return {"hidden": shapes.H, "dead": int(shapes.H - live.size), "distinct": len(reps),
            "max_abs_cos": float(cos.max()) if live.size > 1 else 0.0}
