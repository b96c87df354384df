"""poisson: l = e^eta - y eta, y ~ Poisson(e^s)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from . import Family, prox_loop, prox_with_jvp


def loss(y, eta):
    return jnp.exp(eta) - y * eta


def grad(y, eta):
    return jnp.exp(eta) - y


def hess(y, eta):
    return jnp.exp(eta) + 0.0 * y


def _prox(y, z, c):
    """Root of u + c e^u = b (b = z + c y): Newton from the right, monotone and overflow-free.

    Both candidate starts have f(u) = u + c e^u - b >= 0 and f is convex increasing, so Newton
    decreases monotonically to the root (this is eta = b - W0(c e^b), Lambert W, without overflow).
    """
    y, z, c = jnp.broadcast_arrays(*(jnp.asarray(a, dtype=jnp.result_type(float)) for a in (y, z, c)))
    b = z + c * y
    u0 = jnp.minimum(b, jnp.log1p(jnp.maximum(b, 0.0) / c))

    def body(state):
        u, _, _, _, it = state
        e = c * jnp.exp(u)
        u_new = u - (u + e - b) / (1.0 + e)
        return u_new, None, None, jnp.abs(u_new - u), it + 1

    u, *_ = prox_loop(body, (u0, None, None, jnp.full_like(u0, jnp.inf), 0), 1.0 + jnp.abs(b))
    return u


def sample(key, s, sigma):
    return jax.random.poisson(key, jnp.exp(s), shape=jnp.shape(s)).astype(jnp.result_type(s))


def response_law(s, sigma, support):
    """Exact Poisson(e^s) pmf on y = 0, ..., support - 1 (the caller picks support)."""
    s = jnp.asarray(s)[..., None]
    y = jnp.arange(support, dtype=s.dtype)
    logp = y * s - jnp.exp(s) - gammaln(y + 1.0)
    return jnp.broadcast_to(y, logp.shape), jnp.exp(logp)


def response_table(s, sigma, nodes):
    """Per signal node, the window of y values around e^s carrying all but ~1e-15 of the pmf."""
    from scipy import stats

    mu = np.exp(s)
    lo = stats.poisson.ppf(1e-15, mu)
    width = int((stats.poisson.isf(1e-15, mu) - lo).max()) + 1
    y = lo[:, None] + np.arange(width)[None, :]
    return y, stats.poisson.pmf(y, mu[:, None])


FAMILY = Family(
    name="poisson", label="poisson regression", loss=loss, grad=grad, hess=hess,
    prox=prox_with_jvp(_prox, grad, hess), sample=sample, response_law=response_law,
    response_table=response_table, support="count",
    curvature=lambda gamma: float(np.exp(gamma**2 / 2)),
    signal_cap=1.5)   # counts ~ exp(gamma N(0,1)) up to e^(8 gamma)
