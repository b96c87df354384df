"""Exact leave-one-out of the trained network for every training point, warm-started at theta_hat.

Network LOO of point i is the minimum of F_{-i}(theta) = F(theta) - l(y_i, f(x_i; theta)) reached
from theta_hat (a from-scratch retrain can land in another minimum; `experiment` counts how often),
and its value on a test input x_0 is the change of the test logit

    LOO_i(x_0) = f(x_0; theta_hat) - f(x_0; theta_{-i})     (influence of including point i).

Solver. With Delta = theta - theta_hat and G_i(Delta) = grad F_{-i}(theta_hat + Delta), the chord
iteration preconditioned by the exact leave-one-out Hessian at theta_hat,

    Delta_{t+1} = Delta_t - H_{-i}^{-1} G_i(Delta_t),   H_{-i} = H - grad^2 l_i(theta_hat),

starts with the exact Newton step Delta_1 = H_{-i}^{-1} g_i phi_i (the network-level ALO, kept as
an estimator) and converges linearly at a rate O(||Delta||). H_{-i}^{-1} is applied by a rank-r
Woodbury update of A = H^{-1}: grad^2 l_i = V D V^T with V = [phi_i, U_i] (p x r, r = 2H + 1) and
D = blockdiag(w_i, g_i C_i) (`model.output_hessian_core`), so with B = A V and K = V^T A V,

    H_{-i}^{-1} v = A v + B D (I - K D)^{-1} B^T v.

H_{-i} is positive definite exactly when every eigenvalue of L^T D L (K = L L^T) is below 1
(Haynsworth inertia), which is checked per point. A step costs one full-batch gradient per point
and a p x p product; B costs n p (d + 1) H flops over all points because the columns of U are unit
blocks of theta. Points run in fixed batches (vmap) inside one jit-compiled while loop.

Fallback: for a point whose H_{-i}(theta_hat) is not positive definite (the chord/Newton step
would head for a saddle), or whose chord iteration does not converge in `chord_iters` steps, F_{-i}
is minimized by the dense trust-region Newton of `train.minimize_newton` (`theory.solvers.trust_region_newton`)
from theta_hat, and the Hessian at the result is checked to be positive definite (`train.check_minimum`).

Convergence: ||G_i|| <= max(tol s_i, floor) with s_i = |g_i| ||phi_i|| + 1e-4 rms_j(|g_j| ||phi_j||)
(the size of the removed gradient, as in sims/engine/loo.py) and floor = 16 eps (sum_j |g_j|
||phi_j|| + lam ||theta_hat||), the rounding level of a full-batch gradient.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory.solvers import Status, conjugate_gradient

from .model import Shapes, layout, make_model, make_objective, output_hessian_core
from .train import check_minimum, minimize_newton

ROUNDING_FACTOR = 16.0
PD_MARGIN = 1e-10


class NetworkLoo(NamedTuple):
    values: np.ndarray         # (T, n) f_0(theta_hat) - f_0(theta_{-i})
    newton_step: np.ndarray    # (T, n) the same at the first Newton iterate theta_hat + Delta_1
    not_pd: np.ndarray         # (n,) bool: H_{-i}(theta_hat) not positive definite
    kd_max: np.ndarray         # (n,) largest eigenvalue of L^T D L (>= 1: not positive definite)
    fallback: np.ndarray       # (n,) bool: solved by the dense trust-region Newton
    iters: np.ndarray          # (n,) Newton steps (or trust-region steps of the fallback)
    rel_resid: np.ndarray      # (n,) ||G_i|| / (threshold / tol)
    thetas: dict               # {i: theta_{-i}} for the fallback points
    fallback_min_eig: dict     # {i: smallest Hessian eigenvalue of F_{-i} at its solution}


def woodbury_parts(shapes: Shapes, A, theta, x, phi, g_i, w_i):
    """(B, M, kd_max) with H_{-i}^{-1} v = A v + B M B^T v (module docstring), M = D (I - K D)^{-1}."""
    d, H = shapes
    lay = layout(shapes)
    (w0, w1), (b0, b1), (v0, v1) = lay["W"], lay["b"], lay["v"]
    p = A.shape[0]
    AW = A[:, w0:w1].reshape(p, H, d)
    BU = jnp.concatenate([jnp.einsum("phd,d->ph", AW, x) + A[:, b0:b1], A[:, v0:v1]], axis=1)
    B = jnp.concatenate([(A @ phi)[:, None], BU], axis=1)                    # A V, (p, r)

    def ut(M):   # U^T M for M (p, m)
        return jnp.concatenate([jnp.einsum("hdm,d->hm", M[w0:w1].reshape(H, d, -1), x) + M[b0:b1],
                                M[v0:v1]], axis=0)

    K = jnp.concatenate([(phi @ B)[None, :], ut(B)], axis=0)                # V^T A V
    K = 0.5 * (K + K.T)
    C = output_hessian_core(shapes, theta, x)
    r = K.shape[0]
    D = jnp.zeros((r, r), A.dtype).at[0, 0].set(w_i).at[1:, 1:].set(g_i * C)
    L = jnp.linalg.cholesky(K + 1e-14 * jnp.trace(K) / r * jnp.eye(r, dtype=K.dtype))
    kd_max = jnp.linalg.eigvalsh(L.T @ D @ L)[-1]
    M = jnp.linalg.solve((jnp.eye(r, dtype=K.dtype) - K @ D).T, D.T).T      # D (I - K D)^{-1}
    return B, M, kd_max


@partial(jax.jit, static_argnames=("shapes", "outer_iters", "cg_iters"))
def _newton_batch(shapes, idx, theta, X, y, X0, lam, A, Phi, g, w, s, floor, tol, *, outer_iters: int,
                  cg_iters: int):
    """Newton-CG for the points idx (B,), all lanes in one while loop (module docstring)."""
    F = make_objective(shapes)
    _, f_batch = make_model(shapes)
    grad_F = jax.grad(F)
    n = X.shape[0]
    f0_hat = f_batch(theta, X0)

    def parts(i):
        return woodbury_parts(shapes, A, theta, X[i], Phi[i], g[i], w[i])

    Bm, Mm, kd = jax.vmap(parts)(idx)
    weights = (jnp.arange(n)[None, :] != idx[:, None]).astype(X.dtype)           # (B, n)
    thresh = jnp.maximum(tol * s[idx], floor)
    pd = kd < 1.0 - PD_MARGIN

    def gradient(delta):
        return jax.vmap(lambda dl, v: grad_F(theta + dl, X, y, lam, v))(delta, weights)

    def precond(G):   # H_{-i}(theta_hat)^{-1} G per lane
        return G @ A + jnp.einsum("bpr,br->bp", Bm, jnp.einsum("brs,bs->br", Mm, jnp.einsum("bpr,bp->br", Bm, G)))

    G0 = gradient(jnp.zeros((idx.size, theta.size), X.dtype))
    delta1 = -precond(G0)                                     # the exact Newton step from theta_hat
    newton = f0_hat[None, :] - jax.vmap(lambda dl: f_batch(theta + dl, X0))(delta1)
    G1 = gradient(delta1)
    gn0, gn1 = jnp.linalg.norm(G0, axis=1), jnp.linalg.norm(G1, axis=1)
    # start from the Newton step unless it made the gradient larger (then from theta_hat)
    use1 = jnp.isfinite(gn1) & (gn1 < gn0)
    delta_start = jnp.where(use1[:, None], delta1, 0.0)
    G_start = jnp.where(use1[:, None], G1, G0)
    gn_start = jnp.linalg.norm(G_start, axis=1)
    done0 = ~pd | (gn_start <= thresh)
    bad0 = ~pd

    def pcg(delta, G, active):
        """Preconditioned CG (`theory.solvers.conjugate_gradient`) on H(theta_hat + delta) step = -G
        per active lane, to ||residual|| <= 1e-3 ||G|| in at most cg_iters steps; (step, negative
        curvature met)."""
        def lane(dl, v, B, M, rhs):
            def hvp(vec):
                return jax.jvp(lambda t: grad_F(t, X, y, lam, v), (theta + dl,), (vec,))[1]

            def precond(r):
                return r @ A + B @ (M @ (r @ B))

            step, _, status = conjugate_gradient(hvp, rhs, precond=precond, atol=1e-3 * jnp.linalg.norm(rhs),
                                                 max_iter=cg_iters)
            return step, status == Status.INDEFINITE

        return jax.vmap(lane)(delta, weights, Bm, Mm, jnp.where(active[:, None], -G, 0.0))

    def cond(state):
        _, _, done, _, it, _ = state
        return ~jnp.all(done) & (it < outer_iters)

    def body(state):
        delta, G, done, bad, it, steps = state
        step, negative = pcg(delta, G, ~done)
        gn_old = jnp.linalg.norm(G, axis=1)
        # backtracking on the gradient norm: the largest of t = 1, 1/2, 1/4, 1/8 that decreases it
        new, Gn, gn = delta, G, jnp.full_like(gn_old, jnp.inf)
        for t in (0.125, 0.25, 0.5, 1.0):
            cand = delta + t * step
            Gc = gradient(cand)
            gc = jnp.linalg.norm(Gc, axis=1)
            take = jnp.isfinite(gc) & (gc < gn_old)
            new = jnp.where(take[:, None], cand, new)
            Gn = jnp.where(take[:, None], Gc, Gn)
            gn = jnp.where(take, gc, gn)
        worse = ~jnp.isfinite(gn) | negative
        bad = bad | (~done & worse)
        move = ~done & ~worse
        delta = jnp.where(move[:, None], new, delta)
        G = jnp.where(move[:, None], Gn, G)
        steps = jnp.where(move, steps + 1, steps)
        done = done | bad | (jnp.linalg.norm(G, axis=1) <= thresh)
        return delta, G, done, bad, it + 1, steps

    steps0 = use1.astype(jnp.int32)
    delta, G, _, bad, _, steps = jax.lax.while_loop(cond, body, (delta_start, G_start, done0, bad0, 0, steps0))
    values = f0_hat[None, :] - jax.vmap(lambda dl: f_batch(theta + dl, X0))(delta)
    rel = jnp.where(bad, jnp.inf, jnp.linalg.norm(G, axis=1) / thresh * tol)
    return values, newton, kd, steps, rel


@partial(jax.jit, static_argnames=("shapes",))
def _scales(shapes, Phi, g, theta, lam):
    gn = jnp.abs(g) * jnp.linalg.norm(Phi, axis=1)
    s = gn + 1e-4 * jnp.sqrt(jnp.mean(gn * gn))
    floor = ROUNDING_FACTOR * jnp.finfo(Phi.dtype).eps * (jnp.sum(gn) + lam * jnp.linalg.norm(theta))
    return s, floor


def network_loo(shapes: Shapes, theta, X, y, X0, lam: float, A, Phi, g, w, *, tol: float = 1e-10,
                outer_iters: int = 20, cg_iters: int = 8, newton_iters: int = 100, batch: int = 32,
                progress=None) -> NetworkLoo:
    """Exact network LOO for every training point (module docstring). `A` is the inverse of the
    exact Hessian of F at theta_hat; Phi, g, w the features and logit derivatives there."""
    n = X.shape[0]
    theta, X, y, X0, A, Phi, g, w = (jnp.asarray(a) for a in (theta, X, y, X0, A, Phi, g, w))
    s, floor = _scales(shapes, Phi, g, theta, lam)
    T = X0.shape[0]
    values, newton = np.full((T, n), np.nan), np.full((T, n), np.nan)
    kd, iters, resid = np.zeros(n), np.zeros(n, np.int64), np.full(n, np.inf)
    B = min(batch, n)
    for start in range(0, n, B):
        idx = np.arange(start, min(start + B, n))
        padded = np.concatenate([idx, np.full(B - idx.size, idx[0])])
        v, nw, k, st, rr = _newton_batch(shapes, jnp.asarray(padded), theta, X, y, X0, lam, A, Phi, g, w,
                                         s, floor, tol, outer_iters=outer_iters, cg_iters=cg_iters)
        m = idx.size
        values[:, idx], newton[:, idx] = np.asarray(v)[:m].T, np.asarray(nw)[:m].T
        kd[idx], iters[idx], resid[idx] = np.asarray(k)[:m], np.asarray(st)[:m], np.asarray(rr)[:m]
        if progress is not None:
            progress(m)
    not_pd = ~(kd < 1.0 - PD_MARGIN)
    fallback = not_pd | ~(resid <= tol)
    thetas, min_eigs = {}, {}
    s_np, floor_f = np.asarray(s), float(floor)
    _, f_batch = make_model(shapes)
    for i in np.flatnonzero(fallback):
        weights = jnp.asarray((np.arange(n) != i).astype(float))
        target = max(tol * float(s_np[i]), floor_f)
        th, rel, it = minimize_newton(shapes, theta, X, y, lam, weights, tol=tol, max_iter=newton_iters,
                                      target=target, what=f"network LOO of training point {i}")
        min_eigs[int(i)] = check_minimum(shapes, th, X, y, lam, weights, f"network LOO of training point {i}")
        thetas[int(i)] = np.asarray(th)
        values[:, i] = np.asarray(f_batch(theta, X0) - f_batch(th, X0))
        iters[i], resid[i] = it, rel
    return NetworkLoo(values, newton, not_pd, kd, fallback, iters, resid, thetas, min_eigs)


def refit_point(shapes: Shapes, theta_start, X, y, lam: float, i: int, *, tol: float, max_iter: int = 200,
                target: float | None = None):
    """Minimize F_{-i} by dense trust-region Newton from theta_start (a reference for tests and checks)."""
    n = X.shape[0]
    weights = jnp.asarray((np.arange(n) != i).astype(float))
    return minimize_newton(shapes, jnp.asarray(theta_start), jnp.asarray(X), jnp.asarray(y), lam, weights,
                           tol=tol, max_iter=max_iter, target=target, what=f"refit without point {i}")
