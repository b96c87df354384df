"""probit: l = -y log Phi(eta) - (1 - y) log Phi(-eta), y ~ Bernoulli(Phi(s)).

With the inverse Mills ratio m(t) = phi(t) / Phi(t) (from log_ndtr, stable in both tails):

    l'  = -y m(eta) + (1 - y) m(-eta)
    l'' = y m(eta) (eta + m(eta)) + (1 - y) m(-eta) (m(-eta) - eta)     in (0, 1)
    d l'/dy = -m(eta) - m(-eta)                                         (not canonical: != -1)

The prox root of u + c l'(y, u) = z lies in [z, z + c m(z)] for y = 1 (l' < 0 and m decreasing)
and in [z - c m(-z), z] for y = 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr, ndtr

from . import (Family, binary_response_law, binary_response_table, binary_separability,
               bracketed_newton_prox, prox_with_jvp)

_LOG_SQRT_2PI = 0.9189385332046727


def mills(t):
    """m(t) = phi(t) / Phi(t)."""
    return jnp.exp(-0.5 * t * t - _LOG_SQRT_2PI - log_ndtr(t))


def loss(y, eta):
    return -y * log_ndtr(eta) - (1.0 - y) * log_ndtr(-eta)


def grad(y, eta):
    return -y * mills(eta) + (1.0 - y) * mills(-eta)


def hess(y, eta):
    m1, m0 = mills(eta), mills(-eta)
    return y * m1 * (eta + m1) + (1.0 - y) * m0 * (m0 - eta)


def grad_y(y, eta):
    return -mills(eta) - mills(-eta)


def _bracket(y, z, c):
    return z - (1.0 - y) * c * mills(-z), z + y * c * mills(z)


def sample(key, s, sigma):
    return jax.random.bernoulli(key, ndtr(s)).astype(jnp.result_type(s))


def _ndtr_numpy(x):
    from scipy.special import ndtr as sp_ndtr
    return sp_ndtr(x)


response_law = binary_response_law(ndtr)

FAMILY = Family(
    name="probit", label="probit regression", loss=loss, grad=grad, hess=hess,
    prox=prox_with_jvp(bracketed_newton_prox(grad, hess, _bracket), grad, hess, grad_y),
    sample=sample, response_law=response_law, response_table=binary_response_table(response_law),
    support="binary", curvature=lambda gamma: 0.4, signal_cap=10.0,
    separability=binary_separability(_ndtr_numpy))
