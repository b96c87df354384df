"""gaussian: l = (y - eta)^2 / 2, y = s + sigma * eps (w = 1: the theory's closed forms apply)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import Family, compiled_response_table, prox_with_jvp


def loss(y, eta):
    return 0.5 * (y - eta) ** 2


def grad(y, eta):
    return eta - y


def hess(y, eta):
    return jnp.ones_like(eta * y)


def _prox(y, z, c):
    return (z + c * y) / (1.0 + c)


def sample(key, s, sigma):
    return s + sigma * jax.random.normal(key, jnp.shape(s), dtype=jnp.result_type(s))


def response_law(s, sigma, support):
    """Gauss–Hermite quadrature of y = s + sigma * eps with `support` nodes."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(support)
    y = jnp.asarray(s)[..., None] + sigma * jnp.asarray(nodes)
    probs = jnp.broadcast_to(jnp.asarray(weights / weights.sum()), y.shape)
    return y, probs


response_table = compiled_response_table(response_law, lambda sigma, nodes: nodes if sigma > 0 else 1)


def model_problem(gamma, sigma, lam):
    if gamma == 0.0 and sigma == 0.0:
        return ("gaussian family with gamma = 0 and sigma = 0 has y = 0 and no influence at all; "
                "set gamma > 0 or sigma > 0.")
    if sigma == 0.0 and lam == 0.0:
        return ("gaussian family with sigma = 0 and lam = 0 fits y exactly, so every residual and every "
                "influence is 0; set sigma > 0 or lam > 0.")
    return None


FAMILY = Family(
    name="gaussian", label="gaussian (ridge regression)", loss=loss, grad=grad, hess=hess,
    prox=prox_with_jvp(_prox, grad, hess), sample=sample, response_law=response_law,
    response_table=response_table, support="real", curvature=lambda gamma: 1.0,
    uses_sigma=True, quadratic=True, model_problem=model_problem)
