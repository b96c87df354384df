"""GLM families, defined once and used by both `theory` and `sims` (pure jax.numpy).

Notation of DESIGN.md §2: linear predictor eta = x^T beta, signal s = x^T beta*, loss l(y, eta)
with derivatives in eta, g = l'(y, eta), w = l''(y, eta). All three families are canonical
exponential families, so l'(y, eta) = mean(eta) - y and d l'/dy = -1:

    gaussian  l = (y - eta)^2 / 2            mean(eta) = eta         y = s + sigma * eps
    logistic  l = log(1 + e^eta) - y eta     mean(eta) = sigmoid     y ~ Bernoulli(sigmoid(s))
    poisson   l = e^eta - y eta              mean(eta) = e^eta       y ~ Poisson(e^s)

The proximal map prox_{c l(y, .)}(z) is the root eta of eta + c l'(y, eta) = z (c > 0); its
derivative (implicit function theorem) is d eta = (dz - g dc + c dy) / (1 + c w).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from .errors import InvalidParameterError

_PROX_MAX_ITERS = 100


def _prox_running(state):
    """Continue a prox iteration until every last step is below 4 ulp of the iterate (or the cap)."""
    u, _, _, step, it = state
    return jnp.any(step > 4e-16 * (1.0 + jnp.abs(u))) & (it < _PROX_MAX_ITERS)


@dataclass(frozen=True)
class Family:
    """One GLM family: loss, its first two eta-derivatives, prox, and the response law.

    Attributes are pure jax.numpy functions, broadcasting over their array arguments:
      loss(y, eta), grad(y, eta) = l', hess(y, eta) = l'', prox(y, z, c),
      sample(key, s, sigma) -> y given the signal s = x^T beta*,
      response_law(s, sigma, support) -> (y_values, probs) with a trailing axis enumerating the
        support of y | s (a discrete quadrature for the gaussian noise, exact for the others).
    """

    name: str
    loss: Callable
    grad: Callable
    hess: Callable
    prox: Callable
    sample: Callable
    response_law: Callable
    uses_sigma: bool = False

    def __repr__(self) -> str:
        return f"Family({self.name!r})"


def _prox_with_jvp(solve: Callable, grad: Callable, hess: Callable) -> Callable:
    """Wrap a root solver of eta + c l'(y, eta) = z with its implicit derivative."""

    @jax.custom_jvp
    def prox(y, z, c):
        return solve(y, z, c)

    @prox.defjvp
    def _prox_jvp(primals, tangents):
        y, z, c = primals
        dy, dz, dc = tangents
        eta = prox(y, z, c)
        g, w = grad(y, eta), hess(y, eta)
        deta = (dz - g * dc + c * dy) / (1.0 + c * w)
        return eta, deta

    return prox


# ----------------------------------------------------------------------------------- gaussian
def _gauss_loss(y, eta):
    return 0.5 * (y - eta) ** 2


def _gauss_grad(y, eta):
    return eta - y


def _gauss_hess(y, eta):
    return jnp.ones_like(eta * y)


def _gauss_prox(y, z, c):
    return (z + c * y) / (1.0 + c)


def _gauss_sample(key, s, sigma):
    return s + sigma * jax.random.normal(key, jnp.shape(s), dtype=jnp.result_type(s))


def _gauss_law(s, sigma, support):
    """Gauss–Hermite quadrature of y = s + sigma * eps with `support` nodes."""
    import numpy as np

    nodes, weights = np.polynomial.hermite_e.hermegauss(support)
    y = jnp.asarray(s)[..., None] + sigma * jnp.asarray(nodes)
    probs = jnp.broadcast_to(jnp.asarray(weights / weights.sum()), y.shape)
    return y, probs


# ----------------------------------------------------------------------------------- logistic
def _logit_loss(y, eta):
    return jax.nn.softplus(eta) - y * eta


def _logit_grad(y, eta):
    """sigmoid(eta) - y as (1 - y) sigmoid(eta) - y sigmoid(-eta): equal for every y, and for the
    labels y in {0, 1} free of cancellation (a confidently fitted point keeps its tiny gradient,
    ~e^-|eta|, instead of rounding to 0 for |eta| > 37)."""
    return (1.0 - y) * jax.nn.sigmoid(eta) - y * jax.nn.sigmoid(-eta)


def _logit_hess(y, eta):
    """sigmoid(eta) sigmoid(-eta) (= p (1 - p) without its cancellation for large |eta|)."""
    return jax.nn.sigmoid(eta) * jax.nn.sigmoid(-eta) + 0.0 * y


def _logit_prox_solve(y, z, c):
    """Root of u + c (sigmoid(u) - y) = z on the bracket [z - c(1 - y), z + c y].

    Newton safeguarded by bisection (rtsafe): bisect whenever the Newton point leaves the bracket
    or the step fails to halve the previous one, so the bracket shrinks at least geometrically.
    """
    y, z, c = jnp.broadcast_arrays(*(jnp.asarray(a, dtype=jnp.result_type(float)) for a in (y, z, c)))
    lo, hi = z - c * (1.0 - y), z + c * y

    def body(state):
        u, lo, hi, dx_old, it = state
        p = jax.nn.sigmoid(u)
        f = u + c * (p - y) - z
        lo = jnp.where(f < 0, u, lo)
        hi = jnp.where(f > 0, u, hi)
        newton = u - f / (1.0 + c * p * (1.0 - p))
        bisect = (newton <= lo) | (newton >= hi) | (2.0 * jnp.abs(newton - u) > jnp.abs(dx_old))
        u_new = jnp.where(f == 0, u, jnp.where(bisect, 0.5 * (lo + hi), newton))
        return u_new, lo, hi, jnp.abs(u_new - u), it + 1

    u, *_ = jax.lax.while_loop(_prox_running, body, (0.5 * (lo + hi), lo, hi, hi - lo, 0))
    return u


def _logit_sample(key, s, sigma):
    return jax.random.bernoulli(key, jax.nn.sigmoid(s)).astype(jnp.result_type(s))


def _logit_law(s, sigma, support):
    p1 = jax.nn.sigmoid(jnp.asarray(s))[..., None]
    y = jnp.broadcast_to(jnp.asarray([0.0, 1.0]), p1.shape[:-1] + (2,))
    return y, jnp.concatenate([1.0 - p1, p1], axis=-1)


# ------------------------------------------------------------------------------------ poisson
def _pois_loss(y, eta):
    return jnp.exp(eta) - y * eta


def _pois_grad(y, eta):
    return jnp.exp(eta) - y


def _pois_hess(y, eta):
    return jnp.exp(eta) + 0.0 * y


def _pois_prox_solve(y, z, c):
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

    u, *_ = jax.lax.while_loop(_prox_running, body, (u0, None, None, jnp.full_like(u0, jnp.inf), 0))
    return u


def _pois_sample(key, s, sigma):
    return jax.random.poisson(key, jnp.exp(s), shape=jnp.shape(s)).astype(jnp.result_type(s))


def _pois_law(s, sigma, support):
    """Exact Poisson(e^s) pmf on y = 0, ..., support - 1 (the caller picks support)."""
    s = jnp.asarray(s)[..., None]
    y = jnp.arange(support, dtype=s.dtype)
    logp = y * s - jnp.exp(s) - gammaln(y + 1.0)
    return jnp.broadcast_to(y, logp.shape), jnp.exp(logp)


GAUSSIAN = Family("gaussian", _gauss_loss, _gauss_grad, _gauss_hess,
                  _prox_with_jvp(_gauss_prox, _gauss_grad, _gauss_hess), _gauss_sample, _gauss_law,
                  uses_sigma=True)
LOGISTIC = Family("logistic", _logit_loss, _logit_grad, _logit_hess,
                  _prox_with_jvp(_logit_prox_solve, _logit_grad, _logit_hess), _logit_sample, _logit_law)
POISSON = Family("poisson", _pois_loss, _pois_grad, _pois_hess,
                 _prox_with_jvp(_pois_prox_solve, _pois_grad, _pois_hess), _pois_sample, _pois_law)

FAMILIES = {f.name: f for f in (GAUSSIAN, LOGISTIC, POISSON)}


def get_family(family: str | Family) -> Family:
    """Return the `Family` named `family` (or `family` itself); unknown names raise."""
    if isinstance(family, Family):
        return family
    if isinstance(family, str) and family.lower() in FAMILIES:
        return FAMILIES[family.lower()]
    raise InvalidParameterError(
        f"family must be one of {', '.join(FAMILIES)}, got {family!r}.")
