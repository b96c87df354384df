"""gaussian: l = (y - eta)^2 / 2, y = s + sigma * eps (w = 1: the theory's closed forms apply, and
they live here: `ClosedForm`)."""

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


class ClosedForm:
    """The gaussian family's closed forms (w = 1; docs/theory.md §1 and §7), used by the fixed points
    (`theory.fixed_point`, `theory.general`) and the assembly (`theory.prediction`) in place of the
    quadrature of a general family."""

    @staticmethod
    def fixed_point(delta, lam, gamma, sigma):
        """(c, m, r, q) for the isotropic design: c = b(lam) (Marchenko–Pastur), m = gamma^2 (1 - lam c),
        r^2 = delta c^2 [(m - gamma^2)^2/gamma^2 + sigma^2] / [(1 + c)^2 - delta c^2]."""
        from ..traces import mp_b

        c = mp_b(lam, delta)
        m = gamma**2 * (1.0 - lam * c)
        bias2 = (lam * c) ** 2 * gamma**2          # (m - gamma^2)^2 / gamma^2
        r2 = delta * c**2 * (bias2 + sigma**2) / ((1.0 + c) ** 2 - delta * c**2)
        a2 = jnp.where(gamma > 0, m**2 / jnp.where(gamma > 0, gamma**2, 1.0), 0.0)
        return c, m, jnp.sqrt(r2), a2 + r2

    @staticmethod
    def fixed_point_general(s, theta, delta, lam, gamma, sigma):
        """((c, m, r, q), E[g^2]) under a general spectrum s and alignment theta (one scalar root for c)."""
        from ..solvers import bracket_root

        f = lambda c: c - np.mean(s / (lam + delta * s / (1.0 + c)))  # noqa: E731
        c = bracket_root(f, 0.0, 1.0, sign_at_lo=-1)
        a_w, mhat = 1.0 / (1.0 + c), delta / (1.0 + c)
        alpha = 1.0 / (lam + delta * a_w * s)
        m = mhat * gamma**2 * np.mean(theta * s * s * alpha)
        K1 = mhat**2 * gamma**2 * np.mean(theta * s**3 * alpha**2)
        kk = delta * np.mean(s * s * alpha**2) / (1.0 + c) ** 2
        q = (K1 + kk * (gamma**2 + sigma**2 - 2.0 * m)) / (1.0 - kk)
        r = np.sqrt(max(q - (m * m / gamma**2 if gamma > 0 else 0.0), 0.0))
        return (float(c), float(m), float(r), float(q)), (q - 2 * m + gamma**2 + sigma**2) / (1.0 + c) ** 2

    @staticmethod
    def atoms(r, delta, c, nodes):
        """(g, w, weight): g = (z - y)/(1 + c) ~ N(0, r^2/(delta c^2)), w = 1. (F3) gives
        E[g^2] = r^2/(delta c^2); g is exactly Gaussian because z - y is."""
        from ..glm_law import _hermite

        x, wx = _hermite(nodes)
        g = jnp.asarray(x) * r / (jnp.sqrt(delta) * c)
        return g, jnp.ones_like(g), jnp.asarray(wx)

    @staticmethod
    def atoms_of_variance(e_g2, nodes):
        """(g, w, weight) of g ~ N(0, E[g^2]), w = 1 (the general-covariance law)."""
        from ..glm_law import _hermite

        nodes_, wx = _hermite(nodes)
        g = jnp.asarray(nodes_ * np.sqrt(e_g2))
        return g, jnp.ones_like(g), jnp.asarray(wx)


FAMILY = Family(
    name="gaussian", label="gaussian (ridge regression)", loss=loss, grad=grad, hess=hess,
    prox=prox_with_jvp(_prox, grad, hess), sample=sample, response_law=response_law,
    response_table=response_table, support="real", curvature=lambda gamma: 1.0,
    uses_sigma=True, quadratic=True, model_problem=model_problem, closed_form=ClosedForm)
